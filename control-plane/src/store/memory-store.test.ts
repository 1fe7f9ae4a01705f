import { GroveError } from "@grove/api";
import { MemoryStore } from "./memory-store";
import type { KeyValue, StoreEvent } from "./store";

/** Lets queued watch deliveries (microtasks) run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(GroveError);
  await expect(p).rejects.toMatchObject({ code });
}

describe("MemoryStore", () => {
  it("counts one global revision and gives each key its mod revision", async () => {
    const s = new MemoryStore();
    expect(s.revision).toBe("1");
    const r1 = await s.create("/a", { n: 1 });
    const r2 = await s.create("/b", { n: 2 });
    expect([r1, r2]).toEqual(["2", "3"]);
    const r3 = await s.update("/a", { n: 10 }, r1);
    expect(r3).toBe("4");
    expect(await s.get("/a")).toEqual({ key: "/a", value: { n: 10 }, modRevision: "4" });
    expect(await s.get("/b")).toEqual({ key: "/b", value: { n: 2 }, modRevision: "3" });
    expect(await s.get("/missing")).toBeUndefined();
  });

  it("stores copies: mutating what was written or read does not change the store", async () => {
    const s = new MemoryStore();
    const v = { list: [1] };
    await s.create("/k", v);
    v.list.push(2);
    const got = await s.get<{ list: number[] }>("/k");
    got!.value.list.push(3);
    expect((await s.get("/k"))!.value).toEqual({ list: [1] });
  });

  it("rejects create of an existing key, stale updates and writes to missing keys", async () => {
    const s = new MemoryStore();
    const r = await s.create("/k", 1);
    await expectCode(s.create("/k", 2), "AlreadyExists");
    await s.update("/k", 2, r);
    await expectCode(s.update("/k", 3, r), "Conflict");
    await expectCode(s.update("/nope", 3, "2"), "NotFound");
    await expectCode(s.delete("/nope"), "NotFound");
    await expectCode(s.delete("/k", r), "Conflict");
    expect((await s.get("/k"))!.value).toBe(2);
    await s.delete("/k");
    expect(await s.get("/k")).toBeUndefined();
  });

  it("lists a prefix sorted by key at the current revision", async () => {
    const s = new MemoryStore();
    await s.create("/p/b", "b");
    await s.create("/q/a", "x");
    await s.create("/p/a", "a");
    const res = await s.list<string>("/p/");
    expect(res.revision).toBe("4");
    expect(res.items.map((i) => [i.key, i.value, i.modRevision])).toEqual([
      ["/p/a", "a", "4"],
      ["/p/b", "b", "2"],
    ]);
  });

  it("applies a transaction atomically at one revision, or not at all", async () => {
    const s = new MemoryStore();
    const ra = await s.create("/a", 1);
    const failed = await s.txn(
      [
        { key: "/a", modRevision: ra },
        { key: "/b", modRevision: "2" },
      ],
      [{ type: "put", key: "/c", value: 3 }],
    );
    expect(failed).toEqual({ succeeded: false, revision: "2" });
    expect(await s.get("/c")).toBeUndefined();

    const ok = await s.txn(
      [
        { key: "/a", modRevision: ra },
        { key: "/b", modRevision: "0" },
      ],
      [
        { type: "put", key: "/b", value: 2 },
        { type: "delete", key: "/a" },
      ],
    );
    expect(ok).toEqual({ succeeded: true, revision: "3" });
    expect(await s.get("/a")).toBeUndefined();
    expect((await s.get("/b"))!.modRevision).toBe("3");
  });

  it("watches from a revision: replays history, then follows live changes in order", async () => {
    const s = new MemoryStore();
    await s.create("/w/a", 1); // 2
    const r = await s.create("/w/b", 2); // 3
    await s.create("/other", 0); // 4
    const events: StoreEvent<number>[] = [];
    const w = await s.watch<number>("/w/", r, { onEvent: (e) => events.push(e) });
    await s.update("/w/a", 11, "2"); // 5
    await s.delete("/w/b"); // 6
    await flush();
    expect(events).toEqual([
      { type: "put", key: "/w/b", value: 2, modRevision: "3", created: true },
      { type: "put", key: "/w/a", value: 11, modRevision: "5", created: false },
      { type: "delete", key: "/w/b", prevValue: 2, modRevision: "6" },
    ]);
    expect(w.resumeRevision).toBe("7");
    await w.close();
    await s.create("/w/c", 3);
    await flush();
    expect(events).toHaveLength(3);
  });

  it("relists a watch that starts at a compacted revision", async () => {
    const s = new MemoryStore();
    await s.create("/w/a", 1); // 2
    await s.create("/w/b", 2); // 3
    await s.delete("/w/a"); // 4
    s.compact(3);
    expect(s.compactedRevision).toBe("3");
    const relists: Array<[KeyValue<number>[], string]> = [];
    const events: StoreEvent<number>[] = [];
    const w = await s.watch<number>("/w/", "2", {
      onEvent: (e) => events.push(e),
      onRelist: (items, rev) => relists.push([items, rev]),
    });
    await s.create("/w/c", 3); // 5
    await flush();
    expect(relists).toEqual([[[{ key: "/w/b", value: 2, modRevision: "3" }], "4"]]);
    expect(events.map((e) => [e.type, e.key, e.modRevision])).toEqual([["put", "/w/c", "5"]]);
    expect(w.resumeRevision).toBe("6");

    // Starting just above the compacted revision still replays.
    const later: StoreEvent<number>[] = [];
    await s.watch<number>("/w/", "4", { onEvent: (e) => later.push(e) });
    await flush();
    expect(later.map((e) => e.modRevision)).toEqual(["4", "5"]);
  });

  it("reports Gone to a watch without onRelist when its revision was compacted", async () => {
    const s = new MemoryStore();
    await s.create("/w/a", 1);
    await s.create("/w/b", 1);
    s.compact(s.revision);
    const errors: Error[] = [];
    await s.watch("/w/", "2", { onEvent: () => undefined, onError: (e) => errors.push(e) });
    await flush();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "Gone" });
  });

  it("keeps a bounded history and compacts what overflows", async () => {
    const s = new MemoryStore({ historyLimit: 3 });
    for (let i = 0; i < 6; i++) await s.create(`/k/${i}`, i); // revisions 2..7
    expect(s.compactedRevision).toBe("4");
    const relisted: string[] = [];
    await s.watch("/k/", "3", { onEvent: () => undefined, onRelist: (_items, rev) => relisted.push(rev) });
    const replayed: string[] = [];
    await s.watch("/k/", "5", { onEvent: (e) => replayed.push(e.modRevision) });
    await flush();
    expect(relisted).toEqual(["7"]);
    expect(replayed).toEqual(["5", "6", "7"]);
  });

  it("delivers every op of a transaction, all at the transaction's revision", async () => {
    const s = new MemoryStore();
    const events: StoreEvent<number>[] = [];
    await s.watch<number>("/", "2", { onEvent: (e) => events.push(e) });
    await s.txn(
      [],
      [
        { type: "put", key: "/x", value: 1 },
        { type: "put", key: "/y", value: 2 },
      ],
    );
    await flush();
    expect(events.map((e) => [e.key, e.modRevision])).toEqual([
      ["/x", "2"],
      ["/y", "2"],
    ]);
  });

  it("delivers asynchronously so a handler may write to the store", async () => {
    const s = new MemoryStore();
    const seen: string[] = [];
    await s.watch<number>("/c/", "2", {
      onEvent: (e) => {
        seen.push(e.key);
        if (e.key === "/c/a") void s.create("/c/b", 2);
      },
    });
    const created = s.create("/c/a", 1);
    expect(seen).toEqual([]);
    await created;
    await flush();
    expect(seen).toEqual(["/c/a", "/c/b"]);
  });

  it("fails every operation with StoreUnavailable while unavailable, and after close", async () => {
    const s = new MemoryStore();
    s.setAvailable(false);
    await expectCode(s.ping(), "StoreUnavailable");
    await expectCode(s.get("/a"), "StoreUnavailable");
    await expectCode(s.create("/a", 1), "StoreUnavailable");
    s.setAvailable(true);
    await s.ping();
    await s.close();
    await expectCode(s.list("/"), "StoreUnavailable");
  });
});

describe("MemoryStore.listPage", () => {
  const key = (i: number) => `/p/${String(i).padStart(3, "0")}`;
  async function fill(s: MemoryStore, n: number): Promise<void> {
    for (let i = 0; i < n; i++) await s.create(key(i), { i });
  }
  /** Follows nextKey at the first page's revision, as the HTTP continue token does. */
  async function pages(s: MemoryStore, limit: number, between?: () => Promise<void>) {
    const first = await s.listPage<{ i: number }>("/p/", { limit });
    const all = [...first.items];
    const counts = [first.items.length];
    let next = first.nextKey;
    while (next !== undefined) {
      await between?.();
      const page = await s.listPage<{ i: number }>("/p/", { limit, startKey: next, revision: first.revision });
      expect(page.revision).toBe(first.revision);
      all.push(...page.items);
      counts.push(page.items.length);
      next = page.nextKey;
    }
    return { revision: first.revision, all, counts };
  }

  it("pages in key order with nextKey and remaining, and the last page has no nextKey", async () => {
    const s = new MemoryStore();
    await s.create("/other", 1);
    await fill(s, 25);
    const first = await s.listPage("/p/", { limit: 10 });
    expect(first.items.map((kv) => kv.key)).toEqual([...Array(10).keys()].map(key));
    expect(first.remaining).toBe(15);
    expect(first.nextKey).toBe(`${key(9)}\u0000`);
    const { all, counts } = await pages(s, 10);
    expect(counts).toEqual([10, 10, 5]);
    expect(all.map((kv) => kv.value.i)).toEqual([...Array(25).keys()]);
    const whole = await s.listPage("/p/");
    expect(whole.items).toHaveLength(25);
    expect(whole.nextKey).toBeUndefined();
    expect(whole.remaining).toBe(0);
    expect((await s.listPage("/p/", { limit: 25 })).nextKey).toBeUndefined();
  });

  it("reads later pages at the first page's revision: writes in between do not show or tear the list", async () => {
    const s = new MemoryStore();
    await fill(s, 30);
    let step = 0;
    const { revision, all } = await pages(s, 7, async () => {
      step++;
      await s.create(`/p/${String(step).padStart(3, "0")}a`, { i: -1 }); // sorts inside the pages still to come
      const last = (await s.get<{ i: number }>(key(29)))!;
      await s.update(key(29), { i: 1000 + step }, last.modRevision);
      await s.delete(key(20 + step));
    });
    expect(all.map((kv) => kv.key)).toEqual([...Array(30).keys()].map(key));
    expect(all.every((kv) => kv.value.i >= 0 && kv.value.i < 30)).toBe(true);
    expect(Number(revision)).toBeLessThan(Number(s.revision));
    // The current list sees the writes.
    const now = await s.list<{ i: number }>("/p/");
    expect(now.items.find((kv) => kv.key === key(29))!.value.i).toBe(1000 + step);
    expect(now.items).toHaveLength(30);
  });

  it("a compacted revision is Gone; list() itself always reads the current revision", async () => {
    const s = new MemoryStore();
    await fill(s, 10);
    const first = await s.listPage("/p/", { limit: 4 });
    await s.update(key(0), { i: 0 }, first.items[0]!.modRevision);
    s.compact(s.revision);
    await expectCode(s.listPage("/p/", { limit: 4, startKey: first.nextKey, revision: first.revision }), "Gone");
    await expectCode(s.listPage("/p/", { revision: String(Number(s.revision) + 5) }), "Gone");
    expect((await s.list("/p/")).items).toHaveLength(10);
    // The history limit compacts too.
    const small = new MemoryStore({ historyLimit: 5 });
    await small.create("/p/a", 1);
    const old = small.revision;
    for (let i = 0; i < 10; i++) await small.create(`/p/b${i}`, i);
    await expectCode(small.listPage("/p/", { revision: old }), "Gone");
  });

  it("refuses a bad limit, a start key outside the prefix and a malformed revision", async () => {
    const s = new MemoryStore();
    await expectCode(s.listPage("/p/", { limit: 0 }), "BadRequest");
    await expectCode(s.listPage("/p/", { limit: 1.5 }), "BadRequest");
    await expectCode(s.listPage("/p/", { startKey: "/q/a" }), "BadRequest");
    await expectCode(s.listPage("/p/", { revision: "abc" }), "BadRequest");
  });
});
