// Node conditions (types.ts NodeCondition): tests on a node's plain fields
// that filters (passesWhen) and scorers (constantWhen) declare, so the hot
// loops evaluate them for several plugins in one expression instead of
// calling each plugin per node.

import type { Resources } from "@grove/api";
import type { NodeCondition, NodeView } from "./types";

export const CONDITION_BITS: Readonly<Record<NodeCondition, number>> = {
  ready: 1,
  schedulable: 2,
  "cpu-fits": 4,
  "memory-fits": 8,
  "pids-fits": 16,
  untainted: 32,
};

const ALL_CONDITIONS = 63;
const UNTAINTED = 32;

function untainted(node: NodeView): boolean {
  return node.taints === undefined || node.taints.length === 0;
}

function meetsAll(r: Resources, node: NodeView): boolean {
  return (
    node.ready &&
    !node.unschedulable &&
    node.allocated.cpuMillis + r.cpuMillis <= node.allocatable.cpuMillis &&
    node.allocated.memoryBytes + r.memoryBytes <= node.allocatable.memoryBytes &&
    node.allocated.pids + r.pids <= node.allocatable.pids &&
    untainted(node)
  );
}

function meetsMasked(mask: number, r: Resources, node: NodeView): boolean {
  return (
    ((mask & 1) === 0 || node.ready) &&
    ((mask & 2) === 0 || !node.unschedulable) &&
    ((mask & 4) === 0 || node.allocated.cpuMillis + r.cpuMillis <= node.allocatable.cpuMillis) &&
    ((mask & 8) === 0 || node.allocated.memoryBytes + r.memoryBytes <= node.allocatable.memoryBytes) &&
    ((mask & 16) === 0 || node.allocated.pids + r.pids <= node.allocatable.pids) &&
    ((mask & 32) === 0 || untainted(node))
  );
}

/** Whether a node meets every condition in `mask` (CONDITION_BITS) for a request of `r`. */
export function meets(mask: number, r: Resources, node: NodeView): boolean {
  // The default profile's two masks (its chain declares every condition,
  // prefer-no-schedule "untainted") get their own small functions: this one
  // stays small enough for the hot loops to inline.
  if (mask === UNTAINTED) return untainted(node);
  if (mask === ALL_CONDITIONS) return meetsAll(r, node);
  return meetsMasked(mask, r, node);
}

/**
 * The conditions in `mask` that a node does not meet, as bits: a filter whose
 * declared condition is not among them passes without being asked.
 */
export function failedConditions(mask: number, r: Resources, node: NodeView): number {
  let failed = 0;
  if ((mask & 1) !== 0 && !node.ready) failed |= 1;
  if ((mask & 2) !== 0 && node.unschedulable) failed |= 2;
  if ((mask & 4) !== 0 && !(node.allocated.cpuMillis + r.cpuMillis <= node.allocatable.cpuMillis)) failed |= 4;
  if ((mask & 8) !== 0 && !(node.allocated.memoryBytes + r.memoryBytes <= node.allocatable.memoryBytes)) failed |= 8;
  if ((mask & 16) !== 0 && !(node.allocated.pids + r.pids <= node.allocatable.pids)) failed |= 16;
  if ((mask & 32) !== 0 && !untainted(node)) failed |= 32;
  return failed;
}
