// Committing a scheduling pass: its bindings, evictions and node
// allocations go to etcd in transactions small enough for etcd's
// --max-txn-ops (128 by default), each guarded by the revisions of the nodes
// and instances the pass planned on, so two passes (or a pass and a resize)
// can never book the same capacity twice.
import { InstanceReason, type Instance } from "@grove/api";
import type { Resources } from "@grove/api";
import { Keys, type Store, type TxnCompare, type TxnOp } from "../store/store";
import { addResources, zeroResources } from "../scheduler";
import { lowerAllocated, staleKeys, withoutStaleBindings } from "./commit-conflicts";

/** etcd's default --max-txn-ops is 128; stay below it. */
export const MAX_TXN_OPS = 120;

/** How often one transaction is sent again without the bindings whose instance changed under the pass. */
const MAX_CONFLICT_RETRIES = 3;

/**
 * The write that evicts a preempted instance: it ends as Failed with reason
 * Preempted (its App controller replaces it under its restart policy and the
 * agent stops it, since ended instances leave the node's desired set).
 */
export function preemptionOps(
  victimIds: readonly string[],
  byId: (id: string) => Instance | undefined,
  by: string,
  now: string,
): { compares: TxnCompare[]; ops: TxnOp<unknown>[] } {
  const compares: TxnCompare[] = [];
  const ops: TxnOp<unknown>[] = [];
  for (const id of victimIds) {
    const v = byId(id);
    if (!v) throw new Error(`preemption victim ${id} vanished; retrying`);
    const key = Keys.object("instances", v.metadata.namespace, v.metadata.name);
    const { resourceVersion: _rv, ...metadata } = v.metadata;
    compares.push({ key, modRevision: v.metadata.resourceVersion ?? "0" });
    ops.push({
      type: "put",
      key,
      value: {
        ...v,
        metadata,
        status: {
          ...v.status,
          state: "Failed",
          reason: InstanceReason.Preempted,
          message: `preempted by higher-priority ${by}`,
          finishedAt: now,
        },
      },
    });
  }
  return { compares, ops };
}

interface Group {
  node?: string;
  compares: TxnCompare[];
  ops: TxnOp<unknown>[];
}

function nodeOfOp(op: TxnOp<unknown>): string | undefined {
  if (op.type !== "put") return undefined;
  const v = op.value as { kind?: string; metadata?: { name?: string }; spec?: { nodeName?: string } };
  if (v.kind === "Node") return v.metadata?.name;
  return v.spec?.nodeName;
}

/** A placement transaction's guard failed: another writer changed a node or instance first. */
export class PlacementRaceError extends Error {
  constructor() {
    super("placement transaction lost a race with another writer; retrying");
    this.name = "PlacementRaceError";
  }
}

export interface CommitResult {
  transactions: number;
  /** Revision of the last successful transaction. */
  revision: string;
  /** A node the last transaction wrote (wait for it to know the informers saw everything). */
  lastNode?: string;
  /** An instance (namespace/name) the last transaction wrote. */
  lastInstance?: string;
  /** Keys of the instances whose binding was dropped: they changed under the pass (the next one places them). */
  conflicted: string[];
}

/**
 * Commits a pass's writes as several transactions. `compares[i]` guards
 * `ops[i]` (one compare per op, as the scheduler loop builds them). Writes are
 * grouped by node (bindings and evictions on a node go with the node's own
 * update and its revision guard); groups are packed into transactions of at
 * most MAX_TXN_OPS operations. A node split over several transactions is
 * guarded by the revision its previous transaction produced. Up to
 * `concurrency` transactions run at once. A transaction that fails its guards
 * only because some of its instances changed under the pass is sent again
 * without those bindings (commit-conflicts.ts; they are returned in
 * `conflicted`, for the next pass). Any other failed guard (a node changed,
 * a preemption's victim) makes the call throw PlacementRaceError once the
 * ones in flight ended; those that succeeded stay committed (each is
 * consistent on its own) and the caller plans again. A store that fences
 * (FencedStore) throws its own error when the leader fence failed: then
 * nothing more is written. `onCommitted` is told each transaction that
 * succeeded, as soon as it did, with the revision etcd gave it and the writes
 * it made (as sent: without dropped bindings, node allocations lowered), even
 * when the call throws afterwards: the scheduler assumes them
 * (scheduling/assumed.ts).
 */
export async function commitChunked(
  store: Store,
  compares: readonly TxnCompare[],
  ops: readonly TxnOp<unknown>[],
  maxOps = MAX_TXN_OPS,
  concurrency = 4,
  onCommitted?: (revision: string, ops: readonly TxnOp<unknown>[]) => void,
): Promise<CommitResult> {
  if (compares.length !== ops.length) throw new Error("commitChunked: one compare per op expected");
  const groups = new Map<string, Group>();
  const nodeKeyOf = new Map<string, number>(); // node name -> index of its own update
  ops.forEach((op, i) => {
    const node = nodeOfOp(op) ?? "";
    let g = groups.get(node);
    if (!g) groups.set(node, (g = { node, compares: [], ops: [] }));
    const v = op.type === "put" ? (op.value as { kind?: string }) : undefined;
    if (v?.kind === "Node") nodeKeyOf.set(node, g.ops.length);
    g.compares.push(compares[i]!);
    g.ops.push(op);
  });

  // Pack the groups into transactions first.
  interface Txn {
    compares: TxnCompare[];
    ops: TxnOp<unknown>[];
    nodes: string[];
  }
  const txns: Txn[] = [];
  let cur: Txn = { compares: [], ops: [], nodes: [] };
  const flush = () => {
    if (cur.ops.length > 0) txns.push(cur);
    cur = { compares: [], ops: [], nodes: [] };
  };
  for (const g of groups.values()) {
    const nodeIdx = g.node !== undefined ? nodeKeyOf.get(g.node) : undefined;
    const nodeCompare = nodeIdx !== undefined ? g.compares[nodeIdx]! : undefined;
    const nodeOp = nodeIdx !== undefined ? g.ops[nodeIdx]! : undefined;
    const rest = g.ops.map((op, i) => ({ op, c: g.compares[i]! })).filter((_, i) => i !== nodeIdx);
    // Every transaction that writes to a node also carries the node's guarded update.
    const per = maxOps - (nodeOp ? 1 : 0);
    for (let start = 0; start < Math.max(1, rest.length); start += per) {
      const slice = rest.slice(start, start + per);
      const size = slice.length + (nodeOp ? 1 : 0);
      if (cur.ops.length + size > maxOps) flush();
      for (const { op, c } of slice) {
        cur.compares.push(c);
        cur.ops.push(op);
      }
      if (nodeOp && nodeCompare) {
        cur.compares.push(nodeCompare);
        cur.ops.push(nodeOp);
        cur.nodes.push(nodeOp.key);
      }
      if (slice.length === per) flush();
    }
  }
  flush();

  // Then run up to `concurrency` at once; a transaction that shares a node
  // with an earlier one waits for it and is guarded by the revision it produced.
  const written = new Map<string, string>(); // node key -> revision our transaction gave it
  const done: Array<Promise<void>> = [];
  const lastFor = new Map<string, number>(); // node key -> index of the last txn writing it
  let best = { revision: 0n, lastNode: undefined as string | undefined, lastInstance: undefined as string | undefined };
  let failed: Error | undefined;
  const conflicted: string[] = [];
  const freed = new Map<string, Resources>(); // node key -> what its dropped bindings no longer book
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < txns.length; i++) {
    const t = txns[i]!;
    const deps = [...new Set(t.nodes.map((k) => lastFor.get(k)).filter((x): x is number => x !== undefined))];
    for (const k of t.nodes) lastFor.set(k, i);
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    if (failed) break;
    const run = (async () => {
      await Promise.all(deps.map((d) => done[d]));
      if (failed) return;
      // A node whose earlier transaction dropped bindings books less in this one too.
      let cur = {
        compares: t.compares,
        ops: t.ops.map((op) => (freed.has(op.key) && op.type === "put" ? lowerOp(op, freed.get(op.key)!) : op)),
      };
      let r = { succeeded: false, revision: "0" };
      for (let attempt = 0; ; attempt++) {
        const cmp = cur.compares.map((c) =>
          written.has(c.key) ? { key: c.key, modRevision: written.get(c.key)! } : c,
        );
        r = await store.txn(cmp, cur.ops);
        if (r.succeeded || attempt >= MAX_CONFLICT_RETRIES) break;
        const split = withoutStaleBindings({ compares: cmp, ops: cur.ops }, await staleKeys(store, cmp));
        if (!split || split.dropped.length === 0) break;
        conflicted.push(...split.dropped);
        for (const [k, by] of split.freed) freed.set(k, addResources(freed.get(k) ?? zeroResources(), by));
        cur = split.writes;
      }
      if (!r.succeeded) {
        failed ??= new PlacementRaceError();
        return;
      }
      for (const k of t.nodes) written.set(k, r.revision);
      onCommitted?.(r.revision, cur.ops);
      const rev = BigInt(r.revision);
      if (rev > best.revision) {
        const v = cur.ops.find((op) => op.type === "put" && (op.value as { kind?: string }).kind === "Node");
        const inst = cur.ops.find((op) => op.type === "put" && (op.value as { kind?: string }).kind === "Instance");
        const im = inst
          ? (inst as { value: { metadata: { name: string; namespace?: string } } }).value.metadata
          : undefined;
        best = {
          revision: rev,
          lastNode: v ? (v as { value: { metadata: { name: string } } }).value.metadata.name : best.lastNode,
          lastInstance: im ? (im.namespace ? `${im.namespace}/${im.name}` : im.name) : best.lastInstance,
        };
      }
    })().catch((err: unknown) => {
      failed ??= err instanceof Error ? err : new Error(String(err));
    });
    done[i] = run;
    inFlight.add(run);
    void run.finally(() => inFlight.delete(run));
  }
  await Promise.all(done);
  if (failed) throw failed;
  return {
    transactions: txns.length,
    conflicted,
    revision: best.revision.toString(),
    ...(best.lastNode !== undefined ? { lastNode: best.lastNode } : {}),
    ...(best.lastInstance !== undefined ? { lastInstance: best.lastInstance } : {}),
  };
}

/** A node update lowered by what dropped bindings would have booked on it (all of them so far). */
function lowerOp(op: TxnOp<unknown> & { type: "put" }, by: Resources): TxnOp<unknown> {
  return { ...op, value: lowerAllocated(op.value, by) };
}
