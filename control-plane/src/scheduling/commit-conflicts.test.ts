// A pass's bindings committed in batches: an instance that changed under the
// pass costs only its own binding (the rest of its transaction goes, its node
// books the rest), a changed node still voids the node's plan, and a replica
// fenced out of leadership writes nothing.
import { InstanceReason } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { FencedStore, isFencedOut, type LeaderFence } from "../store/fenced-store";
import { Keys, type Store, type TxnCompare, type TxnOp } from "../store/store";
import { commitChunked, PlacementRaceError } from "./commit";

const POD = { cpuMillis: 100, memoryBytes: 500, pids: 1 };
const nodeKey = (n: string) => Keys.object("nodes", undefined, n);
const instKey = (i: number) => Keys.object("instances", "ns", `i-${i}`);
const node = (name: string, pods: number) => ({
  kind: "Node",
  metadata: { name },
  status: { allocated: { cpuMillis: 100 * pods, memoryBytes: 500 * pods, pids: pods } },
});

/** Node `name` and `count` pending instances i-<first>... in the store. */
async function seed(store: Store, name: string, first: number, count: number): Promise<void> {
  await store.txn([], [{ type: "put", key: nodeKey(name), value: node(name, 0) }]);
  for (let i = first; i < first + count; i++) {
    await store.txn([], [{ type: "put", key: instKey(i), value: { kind: "Instance", spec: { resources: POD } } }]);
  }
}

/** The pass a scheduler makes: every instance bound to `name` (guarded by its revision), and the node's update. */
async function bindAll(store: Store, name: string, first: number, count: number) {
  const compares: TxnCompare[] = [];
  const ops: TxnOp<unknown>[] = [];
  for (let i = first; i < first + count; i++) {
    const cur = await store.get(instKey(i));
    compares.push({ key: instKey(i), modRevision: cur!.modRevision });
    ops.push({
      type: "put",
      key: instKey(i),
      value: {
        kind: "Instance",
        spec: { nodeName: name, resources: POD },
        status: { state: "Pending", reason: InstanceReason.Scheduled },
      },
    });
  }
  const n = await store.get(nodeKey(name));
  compares.push({ key: nodeKey(name), modRevision: n!.modRevision });
  ops.push({ type: "put", key: nodeKey(name), value: node(name, count) });
  return { compares, ops };
}

/** Counts the transactions that reach the store. */
function counting(store: MemoryStore): { txns: () => number } {
  let n = 0;
  const txn = store.txn.bind(store);
  store.txn = ((c: TxnCompare[], o: TxnOp<unknown>[]) => {
    n++;
    return txn(c, o);
  }) as typeof store.txn;
  return { txns: () => n };
}

const boundTo = async (store: Store, i: number) =>
  ((await store.get(instKey(i)))?.value as { spec?: { nodeName?: string } } | undefined)?.spec?.nodeName;

test("an instance changed under the pass: only its binding is dropped, the rest of the batch commits", async () => {
  const store = new MemoryStore();
  await seed(store, "a", 0, 5);
  const pass = await bindAll(store, "a", 0, 5);
  // The App controller rewrites instance 2 between planning and committing.
  await store.txn([], [{ type: "put", key: instKey(2), value: { kind: "Instance", spec: { resources: POD } } }]);
  const r = await commitChunked(store, pass.compares, pass.ops);
  expect(r.conflicted).toEqual([instKey(2)]);
  for (const i of [0, 1, 3, 4]) expect(await boundTo(store, i)).toBe("a");
  expect(await boundTo(store, 2)).toBeUndefined();
  // The node books the four that went, not five.
  expect((await store.get(nodeKey("a")))?.value).toEqual(node("a", 4));
});

test("a node split over several transactions books less in the later ones too", async () => {
  const store = new MemoryStore();
  await seed(store, "a", 0, 30);
  const pass = await bindAll(store, "a", 0, 30);
  await store.txn([], [{ type: "put", key: instKey(3), value: { kind: "Instance", spec: { resources: POD } } }]);
  const c = counting(store);
  // 10 operations per transaction: the node's 30 bindings go in four, each with the node's update.
  const r = await commitChunked(store, pass.compares, pass.ops, 10, 1);
  expect(r.conflicted).toEqual([instKey(3)]);
  expect(r.transactions).toBe(4);
  expect(c.txns()).toBe(5); // the first one once more, without instance 3
  expect((await store.get(nodeKey("a")))?.value).toEqual(node("a", 29));
  for (let i = 0; i < 30; i++) expect(await boundTo(store, i)).toBe(i === 3 ? undefined : "a");
});

test("other nodes' transactions are not held back by one instance's conflict", async () => {
  const store = new MemoryStore();
  await seed(store, "a", 0, 3);
  await seed(store, "b", 3, 3);
  const pa = await bindAll(store, "a", 0, 3);
  const pb = await bindAll(store, "b", 3, 3);
  await store.txn([], [{ type: "put", key: instKey(4), value: { kind: "Instance", spec: { resources: POD } } }]);
  const r = await commitChunked(store, [...pa.compares, ...pb.compares], [...pa.ops, ...pb.ops], 4);
  expect(r.conflicted).toEqual([instKey(4)]);
  expect((await store.get(nodeKey("a")))?.value).toEqual(node("a", 3));
  expect((await store.get(nodeKey("b")))?.value).toEqual(node("b", 2));
});

test("a node changed under the pass still voids its plan: nothing of it is written", async () => {
  const store = new MemoryStore();
  await seed(store, "a", 0, 3);
  const pass = await bindAll(store, "a", 0, 3);
  await store.txn([], [{ type: "put", key: nodeKey("a"), value: { ...node("a", 0), spec: { unschedulable: true } } }]);
  await store.txn([], [{ type: "put", key: instKey(1), value: { kind: "Instance", spec: { resources: POD } } }]);
  await expect(commitChunked(store, pass.compares, pass.ops)).rejects.toThrow(PlacementRaceError);
  for (let i = 0; i < 3; i++) expect(await boundTo(store, i)).toBeUndefined();
});

test("a replica fenced out of leadership writes nothing, conflict or not", async () => {
  const store = new MemoryStore();
  const leader = "election/grove-controllers/1";
  const epoch = await store.create(leader, "replica-a");
  const fence: LeaderFence = { key: leader, epoch, holds: () => true };
  const fenced = new FencedStore(store, fence);
  await seed(store, "a", 0, 4);
  const pass = await bindAll(store, "a", 0, 4);
  await store.txn([], [{ type: "put", key: instKey(0), value: { kind: "Instance", spec: { resources: POD } } }]);
  // The lease expired and another replica leads (its key has a later create revision).
  await store.delete(leader);
  await store.create(leader, "replica-b");
  const before = (await store.list(Keys.prefix)).revision;
  const err = await commitChunked(fenced, pass.compares, pass.ops).catch((e: unknown) => e);
  expect(isFencedOut(err)).toBe(true);
  expect((await store.list(Keys.prefix)).revision).toBe(before);
  for (let i = 0; i < 4; i++) expect(await boundTo(store, i)).toBeUndefined();
});
