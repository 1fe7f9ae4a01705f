// StatusBatcher: the reports of one turn go to etcd in one guarded
// transaction; a stale copy or a failed transaction falls back to one update
// per report; gone or replaced instances write nothing.
import type { Instance, InstanceStatus } from "@grove/api";
import { Informer } from "../controllers/informer";
import { MemoryStore } from "../store/memory-store";
import { Keys, type Store } from "../store/store";
import { StatusBatcher, type RecordOne } from "./status-batch";
import { boundInstance } from "./bound-instance.fixture";

const inst = (name: string, node: string): Instance => boundInstance(name, node, true);

const running = (cur: Instance): InstanceStatus => ({ ...cur.status, state: "Running", reason: "Running", pid: 7 });
const ref = (i: Instance) => ({ uid: i.metadata.uid!, namespace: "default", name: i.metadata.name });
const key = (name: string) => Keys.object("instances", "default", name);

async function setup(n: number) {
  const store = new MemoryStore();
  const items = Array.from({ length: n }, (_, k) => inst(`web-${k}`, `n${k % 7}`));
  await store.txn(
    [],
    items.map((i) => ({ type: "put" as const, key: key(i.metadata.name), value: i })),
  );
  const instances = new Informer<Instance>(store, Keys.collection("instances"));
  await instances.start();
  const alone: string[] = [];
  // As NodeRegistration.recordStatus does it, reduced: read the stored one, fold, update.
  const recordOne: RecordOne = async (_node, r, fold) => {
    alone.push(r.name);
    const kv = await store.get<Instance>(key(r.name));
    if (!kv) return true;
    const next = fold(kv.value);
    if (next) await store.update(key(r.name), { ...kv.value, status: next }, kv.modRevision);
    return false;
  };
  let txns = 0;
  const counting: Store = Object.create(store) as Store;
  counting.txn = (c, o) => {
    txns++;
    return store.txn(c, o);
  };
  const batcher = new StatusBatcher(counting, instances, recordOne);
  return { store, instances, items, batcher, alone, txns: () => txns };
}

test("reports of one turn from many nodes are one transaction, each status stored", async () => {
  const t = await setup(150);
  const gone = await Promise.all(t.items.map((i) => t.batcher.record(i.spec.nodeName!, ref(i), running)));
  expect(gone.every((g) => g === false)).toBe(true);
  expect(t.txns()).toBe(2); // 100 + 50
  expect(t.alone).toEqual([]);
  for (const i of t.items)
    expect((await t.store.get<Instance>(key(i.metadata.name)))?.value.status?.state).toBe("Running");
  await t.instances.stop();
});

test("a report folded from a stale copy is not written over the newer one: it is recorded on its own", async () => {
  const t = await setup(3);
  // web-1 changes in the store; the batcher folds from a copy that is older.
  const stale = t.instances.get("default/web-1")!;
  await t.store.update(
    key("web-1"),
    { ...stale, metadata: { ...stale.metadata, labels: { x: "y" } } },
    stale.metadata.resourceVersion!,
  );
  const get = t.instances.get.bind(t.instances);
  t.instances.get = (k: string) => (k === "default/web-1" ? stale : get(k));
  await Promise.all(t.items.map((i) => t.batcher.record(i.spec.nodeName!, ref(i), running)));
  expect(t.alone).toEqual(["web-1"]);
  const web1 = (await t.store.get<Instance>(key("web-1")))!.value;
  expect(web1.metadata.labels).toEqual({ x: "y" }); // the newer write kept
  expect(web1.status?.state).toBe("Running");
  await t.instances.stop();
});

test("a gone or replaced instance, or a report that changes nothing, writes nothing", async () => {
  const t = await setup(2);
  const [a, b] = t.items as [Instance, Instance];
  expect(await t.batcher.record(a.spec.nodeName!, { ...ref(a), uid: "another" }, running)).toBe(true);
  expect(t.txns()).toBe(0);
  expect(await t.batcher.record("elsewhere", ref(a), running)).toBe(true);
  expect(t.txns()).toBe(0);
  expect(await t.batcher.record(b.spec.nodeName!, ref(b), () => undefined)).toBe(false);
  expect(t.txns()).toBe(0);
  expect(await t.batcher.record(b.spec.nodeName!, ref(b), (cur) => ({ ...cur.status! }))).toBe(false);
  expect(t.txns()).toBe(0);
  await t.instances.stop();
});

test("a transaction that fails is not the streams' end: each report is recorded on its own", async () => {
  const t = await setup(4);
  const failing = new StatusBatcher(
    Object.assign(Object.create(t.store) as Store, { txn: () => Promise.reject(new Error("etcd unavailable")) }),
    t.instances,
    (node, r, fold) => (
      t.alone.push(r.name),
      t.store.get<Instance>(key(r.name)).then(async (kv) => {
        await t.store.update(key(r.name), { ...kv!.value, status: fold(kv!.value)! }, kv!.modRevision);
        return false;
      })
    ),
  );
  await Promise.all(t.items.map((i) => failing.record(i.spec.nodeName!, ref(i), running)));
  expect(t.alone.sort()).toEqual(["web-0", "web-1", "web-2", "web-3"]);
  await t.instances.stop();
});

test("Starting then Running before the watch shows Starting: both batched, the second folded from the first's write", async () => {
  const t = await setup(50);
  // A watch that lags: it shows the instances as they were at the start, and no event.
  const frozen = new Map(t.instances.list().map((i) => [`default/${i.metadata.name}`, i]));
  const lagging = {
    get: (k: string) => frozen.get(k),
    list: () => [...frozen.values()],
    on: () => undefined,
    revision: t.instances.revision,
  };
  let txns = 0;
  const batcher = new StatusBatcher(
    Object.assign(Object.create(t.store) as Store, { txn: (c: never, o: never) => (txns++, t.store.txn(c, o)) }),
    lagging,
    async () => {
      throw new Error("not expected: every report fits its batch");
    },
  );
  const starting = (cur: Instance): InstanceStatus => ({ ...cur.status, state: "Starting", reason: "Starting" });
  await Promise.all(t.items.map((i) => batcher.record(i.spec.nodeName!, ref(i), starting)));
  await Promise.all(t.items.map((i) => batcher.record(i.spec.nodeName!, ref(i), running)));
  expect(txns).toBe(2);
  for (const i of t.items)
    expect((await t.store.get<Instance>(key(i.metadata.name)))?.value.status?.state).toBe("Running");
  await t.instances.stop();
});

test("one stale instance in a batch: it alone is recorded on its own, the others together", async () => {
  const t = await setup(20);
  const stale = t.instances.get("default/web-3")!;
  await t.store.update(
    key("web-3"),
    { ...stale, metadata: { ...stale.metadata, labels: { x: "y" } } },
    stale.metadata.resourceVersion!,
  );
  const get = t.instances.get.bind(t.instances);
  t.instances.get = (k: string) => (k === "default/web-3" ? stale : get(k));
  await Promise.all(t.items.map((i) => t.batcher.record(i.spec.nodeName!, ref(i), running)));
  expect(t.alone).toEqual(["web-3"]);
  expect(t.txns()).toBe(2); // the batch that failed, then the other 19
  for (const i of t.items)
    expect((await t.store.get<Instance>(key(i.metadata.name)))?.value.status?.state).toBe("Running");
  await t.instances.stop();
});
