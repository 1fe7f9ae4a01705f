// Unit tests of the etcd store's pure pieces and of the watch wrapper driven
// by fake etcd3 watchers (no etcd): the resume revision it re-watches from,
// deduplication, and relisting when etcd cancels the watch.

import { EventEmitter } from "node:events";
import type { IWatchResponse } from "etcd3";
import { GroveError } from "@grove/api";
import {
  EtcdWatch,
  prefixRangeEnd,
  toEtcdCompare,
  toStoreEvents,
  type EtcdWatchDeps,
  type WatcherLike,
} from "./etcd-store";
import type { KeyValue, ListResult, StoreEvent } from "./store";

test("prefixRangeEnd is the first key after the prefix", () => {
  expect(prefixRangeEnd("/grove/apps/").toString()).toBe("/grove/apps0");
  expect(prefixRangeEnd("ab").toString()).toBe("ac");
  expect(prefixRangeEnd("").equals(Buffer.from([0]))).toBe(true);
});

test("toEtcdCompare: revision 0 means the key must not exist", () => {
  expect(toEtcdCompare({ key: "/k", modRevision: "0" })).toMatchObject({
    target: "Version",
    result: "Equal",
    version: 0,
  });
  expect(toEtcdCompare({ key: "/k", modRevision: "42" })).toMatchObject({
    target: "Mod",
    result: "Equal",
    mod_revision: "42",
  });
  expect(() => toEtcdCompare({ key: "/k", modRevision: "x" })).toThrow();
});

function kv(key: string, value: unknown, mod: number, version = 1) {
  return {
    key: Buffer.from(key),
    value: Buffer.from(JSON.stringify(value)),
    mod_revision: String(mod),
    create_revision: String(mod - version + 1),
    version: String(version),
    lease: "0",
  };
}

function response(
  events: { type: "Put" | "Delete"; key: string; value?: unknown; mod: number; version?: number; prev?: unknown }[],
  header = 0,
): IWatchResponse {
  return {
    header: { revision: String(header), cluster_id: "1", member_id: "1", raft_term: "1" },
    watch_id: "1",
    created: false,
    canceled: false,
    compact_revision: "0",
    cancel_reason: "",
    fragment: false,
    events: events.map((e) => ({
      type: e.type,
      kv: kv(e.key, e.value ?? null, e.mod, e.version ?? 1),
      prev_kv: e.prev === undefined ? (undefined as never) : kv(e.key, e.prev, e.mod - 1),
    })),
  } as unknown as IWatchResponse;
}

test("toStoreEvents decodes puts (created when version 1) and deletes with the previous value", () => {
  const events = toStoreEvents<{ n: number }>(
    response([
      { type: "Put", key: "/a", value: { n: 1 }, mod: 5 },
      { type: "Put", key: "/a", value: { n: 2 }, mod: 6, version: 2 },
      { type: "Delete", key: "/a", mod: 7, prev: { n: 2 } },
    ]),
  );
  expect(events).toEqual([
    { type: "put", key: "/a", value: { n: 1 }, modRevision: "5", created: true },
    { type: "put", key: "/a", value: { n: 2 }, modRevision: "6", created: false },
    { type: "delete", key: "/a", prevValue: { n: 2 }, modRevision: "7" },
  ]);
});

class FakeWatcher extends EventEmitter implements WatcherLike {
  cancelled = false;
  constructor(readonly startRevision: string) {
    super();
  }
  cancel(): Promise<void> {
    this.cancelled = true;
    return Promise.resolve();
  }
}

interface Harness {
  watch: EtcdWatch<unknown>;
  watchers: FakeWatcher[];
  events: StoreEvent<unknown>[];
  relists: { items: KeyValue<unknown>[]; revision: string }[];
  errors: Error[];
  listResult: () => Promise<ListResult<unknown>>;
  setList(fn: () => Promise<ListResult<unknown>>): void;
}

/**
 * Waits for a condition the watch's timers and promise chains bring about
 * (re-watch after backoff, relist): polls, fails after `timeoutMs` naming what
 * it waited for. No fixed sleeps: a slow machine only makes it take longer.
 */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function startWatch(from: string): Promise<Harness> {
  const h: Partial<Harness> & { watchers: FakeWatcher[] } = { watchers: [], events: [], relists: [], errors: [] };
  let list: () => Promise<ListResult<unknown>> = () => Promise.resolve({ items: [], revision: "0" });
  h.setList = (fn) => (list = fn);
  const deps: EtcdWatchDeps<unknown> = {
    openWatcher: (rev) => {
      const w = new FakeWatcher(rev);
      h.watchers.push(w);
      return w;
    },
    endpoints: ["http://127.0.0.1:1"],
    log: { info() {}, warn() {}, error() {} },
    connectTimeoutMs: 1000,
    backoffBaseMs: 1,
    backoffMaxMs: 1,
    relist: () => list(),
    onClosed() {},
  };
  h.watch = new EtcdWatch<unknown>(
    "/p/",
    from,
    {
      onEvent: (e) => h.events!.push(e),
      onRelist: (items, revision) => h.relists!.push({ items, revision }),
      onError: (err) => h.errors!.push(err),
    },
    deps,
  );
  const started = h.watch.start();
  h.watchers[0]!.emit("connected", response([], 100));
  await started;
  return h as Harness;
}

describe("EtcdWatch", () => {
  // Every etcd watcher starts one revision below the resume revision (a watch
  // from the compact revision itself loses events, see watch-resume.ts); the
  // replayed revision is dropped.
  test("re-watches after a disconnect from the last delivered event (resume revision - 1), ignoring header revisions", async () => {
    const h = await startWatch("10");
    expect(h.watchers[0]!.startRevision).toBe("9");
    // Catch-up batch: header says 100, events only go to 12.
    h.watchers[0]!.emit(
      "data",
      response(
        [
          { type: "Put", key: "/p/a", mod: 10 },
          { type: "Put", key: "/p/b", mod: 12 },
        ],
        100,
      ),
    );
    h.watchers[0]!.emit("disconnected", new Error("14 UNAVAILABLE"));
    expect(h.watchers[0]!.cancelled).toBe(true); // detached so etcd3 cannot resume it itself
    await waitFor(() => h.watchers.length === 2, "the re-watch after the disconnect");
    expect(h.watchers).toHaveLength(2);
    expect(h.watchers[1]!.startRevision).toBe("12");
    expect(h.watch.resumeRevision).toBe("13");

    // The new stream replays 12 (a duplicate) and brings 13: only 13 is delivered.
    h.watchers[1]!.emit("connected", response([], 100));
    h.watchers[1]!.emit(
      "data",
      response(
        [
          { type: "Put", key: "/p/b", mod: 12 },
          { type: "Put", key: "/p/c", mod: 13 },
        ],
        100,
      ),
    );
    expect(h.events.map((e) => e.modRevision)).toEqual(["10", "12", "13"]);
    // Late data from the dropped watcher is ignored.
    h.watchers[0]!.emit("data", response([{ type: "Put", key: "/p/z", mod: 50 }]));
    expect(h.events).toHaveLength(3);
    await h.watch.close();
    expect(h.watchers[1]!.cancelled).toBe(true);
  });

  test("keeps retrying while disconnected", async () => {
    const h = await startWatch("5");
    for (let i = 0; i < 3; i++) {
      h.watchers[i]!.emit("disconnected", new Error("ECONNREFUSED"));
      await waitFor(() => h.watchers.length === i + 2, `re-watch ${i + 1}`);
    }
    expect(h.watchers.map((w) => w.startRevision)).toEqual(["4", "4", "4", "4"]);
    await h.watch.close();
  });

  test("relists when etcd cancels the watch (compaction) and resumes at the list revision + 1", async () => {
    const h = await startWatch("3");
    h.watchers[0]!.emit("data", response([{ type: "Put", key: "/p/a", mod: 3 }]));
    h.setList(() => Promise.resolve({ items: [{ key: "/p/a", value: { n: 9 }, modRevision: "20" }], revision: "25" }));
    h.watchers[0]!.emit("error", new Error("Watcher canceled: mvcc: required revision has been compacted"));
    await waitFor(() => h.watchers.length === 2, "the watch after the relist");
    expect(h.relists).toEqual([{ items: [{ key: "/p/a", value: { n: 9 }, modRevision: "20" }], revision: "25" }]);
    expect(h.watchers).toHaveLength(2);
    expect(h.watchers[1]!.startRevision).toBe("25");
    expect(h.watch.resumeRevision).toBe("26");
    h.watchers[1]!.emit(
      "data",
      response([
        { type: "Put", key: "/p/a", mod: 25 },
        { type: "Put", key: "/p/b", mod: 26 },
      ]),
    );
    expect(h.events.map((e) => e.modRevision)).toEqual(["3", "26"]);
    expect(h.errors).toEqual([]);
    await h.watch.close();
  });

  test("retries the relist while etcd is unreachable, gives up on other errors", async () => {
    const h = await startWatch("3");
    let calls = 0;
    h.setList(() => {
      calls++;
      return calls < 3
        ? Promise.reject(new GroveError("StoreUnavailable", "down"))
        : Promise.reject(new GroveError("Internal", "broken"));
    });
    h.watchers[0]!.emit("error", new Error("Watcher canceled"));
    await waitFor(() => h.errors.length > 0, "the relist to give up");
    expect(calls).toBe(3);
    expect(h.errors.map((e) => e.message)).toEqual(["broken"]);
    expect(h.watchers).toHaveLength(1);
  });

  test("start() rejects with StoreUnavailable when etcd never accepts the watch", async () => {
    const watchers: FakeWatcher[] = [];
    const w = new EtcdWatch<unknown>(
      "/p/",
      "1",
      { onEvent() {} },
      {
        openWatcher: (rev) => {
          const fw = new FakeWatcher(rev);
          watchers.push(fw);
          return fw;
        },
        endpoints: ["http://127.0.0.1:1"],
        log: { info() {}, warn() {}, error() {} },
        connectTimeoutMs: 30,
        backoffBaseMs: 1,
        backoffMaxMs: 1,
        relist: () => Promise.resolve({ items: [], revision: "1" }),
        onClosed() {},
      },
    );
    await expect(w.start()).rejects.toMatchObject({ code: "StoreUnavailable" });
    await w.close();
  });
});
