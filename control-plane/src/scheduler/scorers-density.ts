// Scorers added for issue 19 (a default that packs densely on any workload)
// and kube-scheduler's bin-packing configuration for comparison. Formulas,
// sources and the simulator's evidence are in docs/scheduling.md.
import type { NodeView, PlacementRequest, Scorer } from "./types";

function share(used: number, capacity: number): number {
  if (capacity <= 0) return 0;
  const u = used / capacity;
  return u < 0 ? 0 : u > 1 ? 1 : u;
}

/** Utilisation of cpu and memory once the request is added (the same as scorers.ts's cpuAfter/memoryAfter). */
function after(req: PlacementRequest, node: NodeView): [number, number] {
  return [
    share(node.allocated.cpuMillis + req.resources.cpuMillis, node.allocatable.cpuMillis),
    share(node.allocated.memoryBytes + req.resources.memoryBytes, node.allocatable.memoryBytes),
  ];
}

// Kubernetes NodeResourcesBalancedAllocation: 1 - the standard deviation of
// the cpu and memory utilisation fractions after placement (for two
// resources |cpu - memory| / 2). kube-scheduler's bin-packing configuration
// (kubernetes.io "Resource Bin Packing") is NodeResourcesFit with the
// MostAllocated strategy next to this plugin, both weight 1.
export const balancedAllocation: Scorer = {
  name: "balanced-allocation",
  weight: 1,
  score: (req, node) => {
    const [cpu, memory] = after(req, node);
    return 1 - Math.abs(cpu - memory) / 2;
  },
};

/** Weight of the imbalance penalty in alignedFit (balanced fit's BALANCE_WEIGHT). */
export const ALIGNED_BALANCE_WEIGHT = 2;
/** alignedFit's factor for a node with nothing on it (balanced fit's EMPTY_NODE_FACTOR). */
export const ALIGNED_EMPTY_NODE_FACTOR = 0.8;
/**
 * The angle (radians) between the request's cpu:memory direction and the
 * node's allocated one from which alignedFit's imbalance penalty applies in
 * full; below it, in proportion. Chosen on the tuning seeds only.
 */
export const ALIGNED_FULL_PENALTY_ANGLE = (10 * Math.PI) / 180;

// Grove's default since issue 19 ("aligned fit"): balanced fit (L2 best fit,
// a penalty 2|c - m| on uneven free shares c, m after placement, 0.8 on an
// empty node), but the penalty is scaled by how far the request's
// cpu:memory direction is from what the node already holds: in proportion to
// the angle between the two, in full from ALIGNED_FULL_PENALTY_ANGLE on, none
// on an empty node. Uneven free room is worth avoiding when other shapes could
// fill it (balanced fit's gain on mixes drawn independently per resource); it
// is not when the node holds the same shape as the request: identical
// instances then fill one node after the other, as MostAllocated does, where
// balanced fit opened a new node once a node was about two thirds full in one
// resource (2.1 x LB1 at 32 GiB per core). Depends on the request and the node
// only, so the shape cache applies.
export const alignedFit: Scorer = {
  name: "aligned-fit",
  weight: 1,
  score: (req, node) => {
    const [cpu, memory] = after(req, node);
    const c = 1 - cpu;
    const m = 1 - memory;
    const a = node.allocated;
    const cap = node.allocatable;
    const isEmpty = a.cpuMillis === 0 && a.memoryBytes === 0;
    let penalty = 0;
    if (!isEmpty) {
      const held = Math.atan2(share(a.memoryBytes, cap.memoryBytes), share(a.cpuMillis, cap.cpuMillis));
      const wanted = Math.atan2(
        share(req.resources.memoryBytes, cap.memoryBytes),
        share(req.resources.cpuMillis, cap.cpuMillis),
      );
      penalty = Math.min(1, Math.abs(held - wanted) / ALIGNED_FULL_PENALTY_ANGLE) * Math.abs(c - m);
    }
    const W = ALIGNED_BALANCE_WEIGHT;
    const h = (1 - (c * c + m * m) / 2 - W * penalty + W) / (1 + W);
    return isEmpty ? h * ALIGNED_EMPTY_NODE_FACTOR : h;
  },
};

/** The scorers of this file (all depend on the request and the node only). */
export const DENSITY_SCORERS: readonly Scorer[] = [balancedAllocation, alignedFit];
