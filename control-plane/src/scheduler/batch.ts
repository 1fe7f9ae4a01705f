// placeBatch(): a pass's requests placed one after the other on a working
// set, each booked before the next, with a large-first second plan when the
// first leaves instances Pending.

import { seededRng } from "./rng";
import { tieDraw } from "./rank";
import type { NodeView, PlacementRequest, PlacementResult, Profile, Rng } from "./types";
import { WorkingSet } from "./working-set";

/**
 * In placeBatch's second plan, instances that need at least this share of a
 * node (in cpu or memory, of the largest ready node) go first, largest first.
 * Chosen with grove-sim on workload seeds other than the reported ones
 * (docs/scheduling.md, "Batch placement").
 */
export const LARGE_FIRST_SHARE = 1 / 8;

function placeInOrder(
  reqs: readonly PlacementRequest[],
  order: readonly number[],
  nodes: readonly NodeView[],
  profile: Profile,
  rng: Rng,
): { results: PlacementResult[]; left: number } {
  const working = new WorkingSet(nodes);
  const results = new Array<PlacementResult>(reqs.length);
  let left = 0;
  for (const i of order) {
    const req = reqs[i]!;
    const result = working.place(req, profile, rng);
    if (result.nodeName !== undefined) {
      if (result.victims) {
        working.evict(result.nodeName, result.victims);
        left += result.victims.length; // they are Pending again
      }
      working.bind(req, result.nodeName, result.hostPorts);
    } else {
      left++;
    }
    results[i] = result;
  }
  return { results, left };
}

/**
 * The largest-first order of a batch: by priority, then the instances that
 * need at least LARGE_FIRST_SHARE of a node by their dominant share,
 * descending, then the rest in input order. Undefined when it is the input
 * order anyway.
 */
export function largeFirstOrder(
  reqs: readonly PlacementRequest[],
  nodes: readonly NodeView[],
  byPriority: readonly number[],
): number[] | undefined {
  let cpu = 0;
  let memory = 0;
  for (const n of nodes) {
    if (!n.ready || n.unschedulable) continue;
    if (n.allocatable.cpuMillis > cpu) cpu = n.allocatable.cpuMillis;
    if (n.allocatable.memoryBytes > memory) memory = n.allocatable.memoryBytes;
  }
  if (cpu <= 0 || memory <= 0) return undefined;
  const share = reqs.map((r) => {
    const d = Math.max(r.resources.cpuMillis / cpu, r.resources.memoryBytes / memory);
    return d >= LARGE_FIRST_SHARE ? d : 0;
  });
  const rank = new Array<number>(reqs.length);
  byPriority.forEach((i, k) => (rank[i] = k));
  const order = [...byPriority].sort(
    (a, b) => (reqs[b]!.priority ?? 0) - (reqs[a]!.priority ?? 0) || share[b]! - share[a]! || rank[a]! - rank[b]!,
  );
  return order.some((i, k) => i !== byPriority[k]) ? order : undefined;
}

/**
 * Places requests in one pass; each placement is booked on its node (resources,
 * fixed and handed-out host ports, the App's instance count, so spread and anti-affinity hold between
 * the batch's own instances) before the next is placed. Higher priority goes
 * first; equal priorities keep their order. When that leaves instances
 * Pending (unplaced or preempted), a second plan places the large instances
 * first (largeFirstOrder) and is kept if it leaves fewer Pending: a one-step
 * lookahead, as bin-packers retry first-fit-decreasing. Results are in input
 * order. The input nodes are not modified.
 */
export function placeBatch(
  reqs: readonly PlacementRequest[],
  nodes: readonly NodeView[],
  profile: Profile,
  rng: Rng,
): PlacementResult[] {
  const order = reqs.map((_, i) => i);
  if (reqs.some((r) => (r.priority ?? 0) !== 0)) {
    order.sort((a, b) => (reqs[b]!.priority ?? 0) - (reqs[a]!.priority ?? 0) || a - b);
  }
  const first = placeInOrder(reqs, order, nodes, profile, rng);
  if (first.left === 0) return first.results;
  const alt = largeFirstOrder(reqs, nodes, order);
  if (!alt) return first.results;
  const second = placeInOrder(reqs, alt, nodes, profile, seededRng(tieDraw(rng)));
  return second.left < first.left ? second.results : first.results;
}
