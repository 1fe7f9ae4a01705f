// EtcdWatch's freshness, driven by fake etcd3 watchers (no etcd): stale while
// its stream is lost and while etcd is known down; after etcd answers again
// it relists (dropping the watcher it had) and is fresh once the watcher
// opened after the list is connected.
import { EventEmitter } from "node:events";
import { EtcdWatch, type EtcdWatchDeps, type WatcherLike } from "./etcd-watch";
import type { ListResult } from "./store";

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

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function start() {
  const watchers: FakeWatcher[] = [];
  const seen: string[] = [];
  let healthy = true;
  let lists = 0;
  const deps: EtcdWatchDeps<unknown> = {
    openWatcher: (rev) => {
      const w = new FakeWatcher(rev);
      watchers.push(w);
      return w;
    },
    endpoints: ["http://127.0.0.1:1"],
    log: { info() {}, warn() {}, error() {} },
    connectTimeoutMs: 1000,
    backoffBaseMs: 1,
    backoffMaxMs: 1,
    relist: (): Promise<ListResult<unknown>> => {
      lists++;
      return Promise.resolve({ items: [], revision: "50" });
    },
    onClosed() {},
    healthy: () => healthy,
  };
  const watch = new EtcdWatch<unknown>(
    "/p/",
    "10",
    {
      onEvent: () => undefined,
      onRelist: (_items, rev) => seen.push(`relist@${rev}`),
      onStale: (reason) => seen.push(`stale: ${reason}`),
      onFresh: () => seen.push("fresh"),
    },
    deps,
  );
  const started = watch.start();
  watchers[0]!.emit("connected", {});
  await started;
  return {
    watch,
    watchers,
    seen,
    setHealthy: (v: boolean) => (healthy = v),
    get lists() {
      return lists;
    },
  };
}

test("a lost stream is stale until its re-watch is connected", async () => {
  const h = await start();
  expect(h.seen).toEqual([]);
  h.watchers[0]!.emit("disconnected", new Error("14 UNAVAILABLE"));
  expect(h.seen).toEqual(["stale: the watch stream was lost: 14 UNAVAILABLE"]);
  await waitFor(() => h.watchers.length === 2, "the re-watch");
  h.watchers[1]!.emit("connected", {});
  expect(h.seen.at(-1)).toBe("fresh");
  expect(h.lists).toBe(0); // resumed, not relisted
  await h.watch.close();
});

test("etcd down: stale; up again: relists, dropping its watcher, and is fresh once the new watcher connects", async () => {
  const h = await start();
  h.setHealthy(false);
  h.watch.storeHealthChanged(false);
  expect(h.seen).toEqual(["stale: etcd is down"]);
  // The old stream reconnecting while etcd is known down does not make it fresh.
  h.watchers[0]!.emit("connected", {});
  expect(h.seen).toEqual(["stale: etcd is down"]);

  h.setHealthy(true);
  h.watch.storeHealthChanged(true);
  await waitFor(() => h.watchers.length === 2, "the watcher after the relist");
  expect(h.watchers[0]!.cancelled).toBe(true);
  expect(h.lists).toBe(1);
  expect(h.seen).toEqual(["stale: etcd is down", "relist@50"]);
  // From the list's revision + 1 (one below, as every watcher starts: watch-resume.ts).
  expect(h.watchers[1]!.startRevision).toBe("50");
  h.watchers[1]!.emit("connected", {});
  expect(h.seen.at(-1)).toBe("fresh");
  await h.watch.close();
});

test("etcd up again without having been down: nothing to relist", async () => {
  const h = await start();
  h.watch.storeHealthChanged(true);
  expect(h.lists).toBe(0);
  expect(h.seen).toEqual([]);
  await h.watch.close();
});

test("a watcher etcd never confirms while etcd answers: stale, the stream is reset, fresh once the new watcher is", async () => {
  const h = await start();
  const resets: string[] = [];
  (h.watch as unknown as { deps: EtcdWatchDeps<unknown> }).deps.resetStream = (reason) => {
    resets.push(reason);
    // As etcd3 does on a reset: every watcher of the stream is told it was disconnected.
    h.watchers.at(-1)!.emit("disconnected", new Error("watch stream reset"));
  };
  // The stream is lost; the re-watch is sent but etcd never confirms it.
  h.watchers[0]!.emit("disconnected", new Error("14 UNAVAILABLE"));
  await waitFor(() => h.watchers.length === 2, "the re-watch");
  await waitFor(() => resets.length === 1, "the stream reset after connectTimeoutMs", 3000);
  expect(resets[0]).toBe("etcd did not confirm the watch on /p/ within 1000 ms");
  await waitFor(() => h.watchers.length === 3, "a watcher on the new stream");
  h.watchers[2]!.emit("connected", {});
  expect(h.seen.at(-1)).toBe("fresh");
  await h.watch.close();
});

test("while etcd is known down an unconfirmed watcher waits: no reset", async () => {
  const h = await start();
  let resets = 0;
  (h.watch as unknown as { deps: EtcdWatchDeps<unknown> }).deps.resetStream = () => resets++;
  h.setHealthy(false);
  h.watchers[0]!.emit("disconnected", new Error("14 UNAVAILABLE"));
  await waitFor(() => h.watchers.length === 2, "the re-watch");
  await new Promise((r) => setTimeout(r, 2500));
  expect(resets).toBe(0);
  h.setHealthy(true);
  await waitFor(() => resets === 1, "the reset once etcd answers", 3000);
  await h.watch.close();
});
