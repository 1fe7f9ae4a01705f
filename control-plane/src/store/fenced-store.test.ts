import { GroveError } from "@grove/api";
import { MemoryStore } from "./memory-store";
import { FencedStore, fenceCounters, isFencedOut, type LeaderFence } from "./fenced-store";

const LEADER_KEY = "election/grove-controllers/1";

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(GroveError);
  await expect(p).rejects.toMatchObject({ code });
}

/** A store with a leader key, and a fenced view holding it (its epoch = the key's create revision). */
async function setup() {
  const store = new MemoryStore();
  const epoch = await store.create(LEADER_KEY, "replica-a");
  let holds = true;
  const fence: LeaderFence = { key: LEADER_KEY, epoch, holds: () => holds };
  const rejected: string[] = [];
  const fenced = new FencedStore(store, fence, (err) => rejected.push(err.where));
  return { store, fenced, rejected, stopHolding: () => (holds = false) };
}

/** The leader key expires and another replica's key is created (later create revision). */
async function anotherLeader(store: MemoryStore): Promise<void> {
  await store.delete(LEADER_KEY);
  await store.create(LEADER_KEY, "replica-b");
}

describe("FencedStore", () => {
  it("writes like the inner store while the leader key is the one it was elected with", async () => {
    const { store, fenced } = await setup();
    const r1 = await fenced.create("/grove/x", { n: 1 });
    const r2 = await fenced.update("/grove/x", { n: 2 }, r1);
    expect((await store.get("/grove/x"))?.value).toEqual({ n: 2 });
    const t = await fenced.txn([{ key: "/grove/x", modRevision: r2 }], [{ type: "put", key: "/grove/y", value: 1 }]);
    expect(t.succeeded).toBe(true);
    await fenced.delete("/grove/y");
    await fenced.delete("/grove/x", r2);
    expect(await store.get("/grove/x")).toBeUndefined();
  });

  it("keeps NotFound, Conflict, AlreadyExists and failed compares of the caller's own", async () => {
    const { fenced } = await setup();
    const r1 = await fenced.create("/grove/x", 1);
    await expectCode(fenced.create("/grove/x", 2), "AlreadyExists");
    await expectCode(fenced.update("/grove/x", 2, "999"), "Conflict");
    await expectCode(fenced.update("/grove/missing", 2, r1), "NotFound");
    await expectCode(fenced.delete("/grove/missing"), "NotFound");
    await expectCode(fenced.delete("/grove/x", "999"), "Conflict");
    const t = await fenced.txn([{ key: "/grove/x", modRevision: "999" }], [{ type: "put", key: "/grove/y", value: 1 }]);
    expect(t.succeeded).toBe(false);
  });

  it("once another replica leads, every kind of write is rejected by the store and changes nothing", async () => {
    const { store, fenced, rejected } = await setup();
    const r1 = await fenced.create("/grove/x", { n: 1 });
    await anotherLeader(store);
    const before = fenceCounters.rejectedByEtcd;
    const writes = [
      fenced.create("/grove/new", 1),
      fenced.update("/grove/x", { n: 2 }, r1),
      fenced.delete("/grove/x"),
      fenced.delete("/grove/x", r1),
      fenced.txn([], [{ type: "put", key: "/grove/z", value: 1 }]),
    ];
    for (const w of writes) {
      const err = await w.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isFencedOut(err)).toBe(true);
      expect(err).toMatchObject({ code: "Conflict", where: "etcd" });
    }
    expect(fenceCounters.rejectedByEtcd - before).toBe(5);
    expect(rejected).toEqual(["etcd", "etcd", "etcd", "etcd", "etcd"]);
    expect(await store.get("/grove/new")).toBeUndefined();
    expect(await store.get("/grove/z")).toBeUndefined();
    expect(await store.get("/grove/x")).toMatchObject({ value: { n: 1 }, modRevision: r1 });
  });

  it("a lost leader key alone (lease expired, no new leader yet) fences too", async () => {
    const { store, fenced } = await setup();
    await store.delete(LEADER_KEY);
    await expect(fenced.create("/grove/x", 1)).rejects.toMatchObject({ where: "etcd" });
    expect(await store.get("/grove/x")).toBeUndefined();
  });

  it("refuses locally, without writing, once this replica stopped acting as leader", async () => {
    const { store, fenced, stopHolding } = await setup();
    stopHolding();
    const rev = store.revision;
    await expect(fenced.create("/grove/x", 1)).rejects.toMatchObject({ where: "local", code: "Conflict" });
    await expect(fenced.txn([], [{ type: "delete", key: "/grove/a" }])).rejects.toMatchObject({ where: "local" });
    expect(store.revision).toBe(rev);
  });

  it("reads go to the inner store even when fenced out", async () => {
    const { store, fenced, stopHolding } = await setup();
    await store.create("/grove/r", 7);
    stopHolding();
    expect((await fenced.get("/grove/r"))?.value).toBe(7);
    expect((await fenced.list("/grove/")).items.map((kv) => kv.key)).toEqual(["/grove/r"]);
  });
});
