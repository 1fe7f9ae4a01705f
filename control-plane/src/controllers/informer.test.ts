// Informer.waitFor: a controller that just wrote an object waits until its
// informer shows the write, woken by the watch event rather than by polling.
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Informer } from "./informer";

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec: { n: number };
}

const key = (name: string) => Keys.object("instances", "ns", name);
const obj = (name: string, n: number): Obj => ({ metadata: { name, namespace: "ns" }, spec: { n } });

async function started(store: MemoryStore): Promise<Informer<Obj>> {
  const informer = new Informer<Obj>(store, Keys.collection("instances"));
  await informer.start();
  return informer;
}

/** The revision the store's next write gets. */
const next = (informer: Informer<Obj>) => (BigInt(informer.revision) + 1n).toString();

test("resolves once the cache shows the written revision, and not before", async () => {
  const store = new MemoryStore();
  const informer = await started(store);
  const rev = next(informer);
  let done = false;
  const waiting = informer.waitFor("ns/a", rev, 60_000).then(() => (done = true));
  await new Promise((r) => setTimeout(r, 50));
  expect(done).toBe(false);
  const r = await store.txn([], [{ type: "put", key: key("a"), value: obj("a", 1) }]);
  expect(r.revision).toBe(rev);
  await waiting;
  expect(informer.get("ns/a")?.metadata.resourceVersion).toBe(rev);
  await informer.stop();
});

test("is woken by the event itself: one timer (its timeout), no polling", async () => {
  const store = new MemoryStore();
  const informer = await started(store);
  const realSetTimeout = global.setTimeout;
  const timers = jest.spyOn(global, "setTimeout");
  try {
    const t0 = performance.now();
    const waiting = informer.waitFor("ns/a", next(informer), 60_000);
    // Long enough for a poller to have looked several times (our own timer is not counted).
    await new Promise<void>((r) => realSetTimeout(r, 50));
    await store.txn([], [{ type: "put", key: key("a"), value: obj("a", 1) }]);
    await waiting;
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(timers).toHaveBeenCalledTimes(1);
  } finally {
    timers.mockRestore();
  }
  await informer.stop();
});

test("resolves for an object deleted since the revision", async () => {
  const store = new MemoryStore();
  const informer = await started(store);
  const r = await store.txn([], [{ type: "put", key: key("a"), value: obj("a", 1) }]);
  await store.delete(key("a"));
  await informer.waitFor("ns/a", r.revision, 60_000);
  expect(informer.get("ns/a")).toBeUndefined();
  expect(BigInt(informer.revision)).toBeGreaterThan(BigInt(r.revision));
  await informer.stop();
});

test("an older copy does not satisfy it; it gives up after its timeout", async () => {
  const store = new MemoryStore();
  const informer = await started(store);
  const r = await store.txn([], [{ type: "put", key: key("a"), value: obj("a", 1) }]);
  await informer.waitFor("ns/a", r.revision);
  const t0 = performance.now();
  await informer.waitFor("ns/a", (BigInt(r.revision) + 5n).toString(), 200);
  expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
  await informer.stop();
});

test("stopping the informer lets its waiters go", async () => {
  const store = new MemoryStore();
  const informer = await started(store);
  const t0 = performance.now();
  const waiting = informer.waitFor("ns/never", "1000", 60_000);
  await informer.stop();
  await waiting;
  expect(performance.now() - t0).toBeLessThan(30_000);
});
