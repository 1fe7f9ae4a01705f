import { Keys, type TxnCompare, type TxnOp } from "../store/store";
import { MemoryStore } from "../store/memory-store";
import { commitChunked, PlacementRaceError } from "./commit";

const nodeKey = (n: string) => Keys.object("nodes", undefined, n);
const instKey = (i: number) => Keys.object("instances", "ns", `i-${i}`);

/** A pass: `perNode` instances bound to each node, each guarded, plus each node's own update. */
async function pass(store: MemoryStore, nodes: string[], perNode: number) {
  const compares: TxnCompare[] = [];
  const ops: TxnOp<unknown>[] = [];
  let i = 0;
  for (const n of nodes) {
    for (let k = 0; k < perNode; k++, i++) {
      const cur = await store.get(instKey(i));
      compares.push({ key: instKey(i), modRevision: cur?.modRevision ?? "0" });
      ops.push({ type: "put", key: instKey(i), value: { kind: "Instance", spec: { nodeName: n } } });
    }
  }
  for (const n of nodes) {
    const cur = await store.get(nodeKey(n));
    compares.push({ key: nodeKey(n), modRevision: cur?.modRevision ?? "0" });
    ops.push({ type: "put", key: nodeKey(n), value: { kind: "Node", metadata: { name: n }, status: { perNode } } });
  }
  return { compares, ops };
}

test("splits a large pass into transactions below the op limit, a busy node over several", async () => {
  const store = new MemoryStore();
  const sizes: number[] = [];
  const txn = store.txn.bind(store);
  store.txn = (async (c: TxnCompare[], o: TxnOp<unknown>[]) => {
    sizes.push(o.length);
    return txn(c, o);
  }) as typeof store.txn;
  const { compares, ops } = await pass(store, ["a", "b", "c"], 50);
  const big = await pass(store, ["d"], 0);
  // node d gets 250 instances: more than one transaction can hold.
  for (let k = 0; k < 250; k++) {
    compares.unshift({ key: instKey(1000 + k), modRevision: "0" });
    ops.unshift({ type: "put", key: instKey(1000 + k), value: { kind: "Instance", spec: { nodeName: "d" } } });
  }
  compares.push(...big.compares);
  ops.push(...big.ops);
  const r = await commitChunked(store, compares, ops, 120, 3);
  expect(Math.max(...sizes)).toBeLessThanOrEqual(120);
  expect(r.transactions).toBe(sizes.length);
  for (let k = 0; k < 250; k++) expect(await store.get(instKey(1000 + k))).toBeDefined();
  for (let i = 0; i < 150; i++) expect(await store.get(instKey(i))).toBeDefined();
  expect(BigInt(r.revision)).toBe(BigInt((await store.list(Keys.prefix)).revision));
});

test("a node changed by someone else fails the pass; nothing is bound twice", async () => {
  const store = new MemoryStore();
  await store.txn([], [{ type: "put", key: nodeKey("a"), value: { kind: "Node", metadata: { name: "a" } } }]);
  const { compares, ops } = await pass(store, ["a"], 10);
  // A cordon lands between planning and committing.
  await store.txn(
    [],
    [
      {
        type: "put",
        key: nodeKey("a"),
        value: { kind: "Node", metadata: { name: "a" }, spec: { unschedulable: true } },
      },
    ],
  );
  await expect(commitChunked(store, compares, ops)).rejects.toThrow(PlacementRaceError);
  for (let i = 0; i < 10; i++) expect(await store.get(instKey(i))).toBeUndefined();
});

test("one compare per op is required", async () => {
  await expect(commitChunked(new MemoryStore(), [], [{ type: "delete", key: "x" }])).rejects.toThrow(
    "one compare per op",
  );
});
