// Resizing a bound instance in place, on the scheduling side: whether its new
// size fits on its node (the scheduler library's fit check over the
// snapshot's allocations), the status it shows meanwhile, and the write,
// guarded by the node's and the instance's revisions, that gives it the new
// size and rewrites the node's status.allocated as a binding does, so a
// resize and a binding (or two resizes) cannot over-commit a node.
import { InstanceReason, type Instance, type InstanceStatus, type Node, type Resources } from "@grove/api";
import { formatLimits, sameLimits } from "@grove/common";
import { Keys, type TxnCompare, type TxnOp } from "../store/store";
import { zeroResources } from "../scheduler";
import { resizeFit } from "../scheduler/fit";
import { allocations } from "../scheduler/snapshot";

/**
 * Whether a bound instance can grow (or shrink) from `from` to `to` on its
 * node, given what the node has allocated (`allocated` includes `from`): the
 * scheduler library's resizeFit. On success, the node's allocation afterwards.
 */
export function resizeFits(
  node: Node,
  allocated: Resources,
  from: Resources,
  to: Resources,
): { fits: true; allocated: Resources } | { fits: false; reason: string } {
  const fit = resizeFit(node.status?.allocatable ?? zeroResources(), allocated, from, to);
  if (fit.fits) return fit;
  return { fits: false, reason: fit.reasons.map((r) => `${r.subject}: ${r.message}`).join(", ") };
}

/**
 * An instance's status as a resize in place from `from` to `to` begins: a
 * running one is Resizing until its agent reports the new limits applied.
 * When the container already has `to` (the App went back to the size a
 * refused or unfinished resize started from) its agent has nothing to do
 * and says nothing, so a Resizing or ResizeFailed left from before is cleared here.
 */
export function resizeStatus(status: InstanceStatus, from: Resources, to: Resources): InstanceStatus {
  if (status.state !== "Running" && status.state !== "Starting") return status;
  const applied = status.appliedResources ?? from;
  if (!sameLimits(applied, to)) {
    return {
      ...status,
      reason: InstanceReason.Resizing,
      message: `resizing in place from ${formatLimits(applied)} to ${formatLimits(to)}`,
    };
  }
  if (status.reason !== InstanceReason.Resizing && status.reason !== InstanceReason.ResizeFailed) return status;
  const { message: _m, ...rest } = status;
  return { ...rest, reason: status.state };
}

/** Strips the server-filled resourceVersion before an object is written. */
function stored<T extends { metadata: { resourceVersion?: string } }>(obj: T): T {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return { ...obj, metadata } as T;
}

export interface ResizeWrite {
  compares: TxnCompare[];
  ops: TxnOp<unknown>[];
}

/**
 * The transaction that resizes `inst` in place to `to` (with its new
 * template `labels`): the instance under its revision and, when it is
 * bound, its node's allocation under the node's revision. `node` is the
 * instance's node from the cache, `instances` every instance (for the
 * node's allocation). A string says why it cannot be done.
 */
export function resizeWrite(
  inst: Instance,
  to: Resources,
  labels: Record<string, string>,
  node: Node | undefined,
  instances: readonly Instance[],
): ResizeWrite | string {
  const from = inst.spec.resources;
  const key = Keys.object("instances", inst.metadata.namespace, inst.metadata.name);
  const next: Instance = {
    ...inst,
    metadata: { ...inst.metadata, labels: { ...inst.metadata.labels, ...labels } },
    spec: { ...inst.spec, resources: to },
    ...(inst.status ? { status: resizeStatus(inst.status, from, to) } : {}),
  };
  const compares: TxnCompare[] = [{ key, modRevision: inst.metadata.resourceVersion ?? "0" }];
  const ops: TxnOp<unknown>[] = [{ type: "put", key, value: stored(next) }];
  const nodeName = inst.spec.nodeName;
  if (!nodeName) return { compares, ops };
  if (!node) return `its node ${nodeName} is gone`;
  const allocated = allocations(instances).get(nodeName) ?? zeroResources();
  const fit = resizeFits(node, allocated, from, to);
  if (!fit.fits) return `${formatLimits(to)} does not fit on node ${nodeName} (${fit.reason})`;
  const nodeKey = Keys.object("nodes", undefined, nodeName);
  compares.push({ key: nodeKey, modRevision: node.metadata.resourceVersion ?? "0" });
  ops.push({
    type: "put",
    key: nodeKey,
    value: stored({ ...node, status: { ...node.status, allocated: fit.allocated } }),
  });
  return { compares, ops };
}
