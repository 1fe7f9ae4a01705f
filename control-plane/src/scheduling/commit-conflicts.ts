// When one of a pass's placement transactions fails its guards, find out
// which guard failed and whether the rest of the transaction can still go:
// a binding whose instance changed under the pass (the App controller wrote
// it, the informer was a little behind) is dropped alone and left for the
// next pass; its node's allocation is lowered by what it would have booked.
// Anything else (the node changed, a preemption is part of the transaction)
// means the pass's plan for that node is void, and the pass is retried as a
// whole. etcd does not say which compare failed, so the keys are read again.
import { InstanceReason, type Resources } from "@grove/api";
import { addResources, subtractResources, zeroResources } from "../scheduler";
import type { Store, TxnCompare, TxnOp } from "../store/store";

interface InstanceValue {
  kind?: string;
  spec?: { nodeName?: string; resources?: Resources };
  status?: { reason?: string; allocated?: Resources };
  metadata?: { name?: string };
}

const valueOf = (op: TxnOp<unknown>): InstanceValue | undefined =>
  op.type === "put" ? (op.value as InstanceValue) : undefined;

/** Keys whose compare no longer holds, read one by one (only after a failed transaction). */
export async function staleKeys(store: Store, compares: readonly TxnCompare[]): Promise<Set<string>> {
  const stale = new Set<string>();
  await Promise.all(
    compares.map(async (c) => {
      // Only mod revisions are told apart; any other guard counts as failed.
      if (!("modRevision" in c)) return stale.add(c.key);
      const kv = await store.get(c.key);
      if ((kv?.modRevision ?? "0") !== c.modRevision) stale.add(c.key);
    }),
  );
  return stale;
}

/** A transaction's compares and ops, one compare per op. */
export interface GuardedWrites {
  compares: TxnCompare[];
  ops: TxnOp<unknown>[];
}

/**
 * The transaction without the bindings whose instance is stale, each node's
 * update lowered by what they would have booked (also returned per node key,
 * for the node's later transactions); undefined when a stale key is not a
 * plain binding or the transaction preempts (then only a new plan will do).
 */
export function withoutStaleBindings(
  t: GuardedWrites,
  stale: ReadonlySet<string>,
): { writes: GuardedWrites; dropped: string[]; freed: Map<string, Resources> } | undefined {
  if (t.ops.some((op) => valueOf(op)?.status?.reason === InstanceReason.Preempted)) return undefined;
  const freedByNode = new Map<string, Resources>(); // node name -> resources of its dropped bindings
  const dropped: string[] = [];
  const opOf = new Map(t.ops.map((op) => [op.key, op]));
  for (const key of stale) {
    const op = opOf.get(key);
    const v = op && valueOf(op);
    const node = v?.spec?.nodeName;
    if (v?.kind !== "Instance" || v.status?.reason !== InstanceReason.Scheduled || !node || !v.spec?.resources) {
      return undefined;
    }
    freedByNode.set(node, addResources(freedByNode.get(node) ?? zeroResources(), v.spec.resources));
    dropped.push(key);
  }
  const writes: GuardedWrites = { compares: [], ops: [] };
  const freed = new Map<string, Resources>();
  t.ops.forEach((op, i) => {
    if (stale.has(op.key)) return;
    const v = valueOf(op);
    const name = v?.kind === "Node" ? v.metadata?.name : undefined;
    const less = name !== undefined ? freedByNode.get(name) : undefined;
    writes.compares.push(t.compares[i]!);
    if (!less || op.type !== "put") {
      writes.ops.push(op);
      return;
    }
    freed.set(op.key, less);
    writes.ops.push({ ...op, value: lowerAllocated(op.value, less) });
  });
  return { writes, dropped, freed };
}

/** A node object whose status.allocated is lowered by `by`. */
export function lowerAllocated(node: unknown, by: Resources): unknown {
  const n = node as { status?: { allocated?: Resources } };
  const allocated = n.status?.allocated;
  if (!allocated) return node;
  return { ...n, status: { ...n.status, allocated: subtractResources(allocated, by) } };
}
