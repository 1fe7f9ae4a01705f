// Scorers added for issue 19 (a default that packs densely on any workload)
// and kube-scheduler's bin-packing configuration for comparison. Formulas,
// sources and the simulator's evidence are in docs/scheduling.md.
import type { NodeView, PlacementRequest, Scorer } from "./types";

function share(used: number, capacity: number): number {
  if (capacity <= 0) return 0;
  const u = used / capacity;
  return u < 0 ? 0 : u > 1 ? 1 : u;
}

// Utilisation of cpu and memory once the request is added (the same as
// scorers.ts's cpuAfter/memoryAfter). Two functions, not one returning a
// pair: the scorers run once per node and placement, and a pair per call was
// most of the plain path's garbage.
function cpuAfter(req: PlacementRequest, node: NodeView): number {
  return share(node.allocated.cpuMillis + req.resources.cpuMillis, node.allocatable.cpuMillis);
}
function memoryAfter(req: PlacementRequest, node: NodeView): number {
  return share(node.allocated.memoryBytes + req.resources.memoryBytes, node.allocatable.memoryBytes);
}

// Kubernetes NodeResourcesBalancedAllocation: 1 - the standard deviation of
// the cpu and memory utilisation fractions after placement (for two
// resources |cpu - memory| / 2). kube-scheduler's bin-packing configuration
// (kubernetes.io "Resource Bin Packing") is NodeResourcesFit with the
// MostAllocated strategy next to this plugin, both weight 1.
export const balancedAllocation: Scorer = {
  name: "balanced-allocation",
  scope: "node",
  weight: 1,
  reads: "resources",
  score: (req, node) => {
    return 1 - Math.abs(cpuAfter(req, node) - memoryAfter(req, node)) / 2;
  },
};

// The constants are module-local and exported by another name: inside this
// module an exported const is a property read of `exports` on every use
// (CommonJS output), which the scorer's hot path paid per node.
const W = 2;
const EMPTY = 0.8;
const ANGLE = (20 * Math.PI) / 180;
/** Weight of the imbalance penalty in alignedFit (balanced fit's BALANCE_WEIGHT). */
export const ALIGNED_BALANCE_WEIGHT = W;
/** alignedFit's factor for a node with nothing on it (balanced fit's EMPTY_NODE_FACTOR). */
export const ALIGNED_EMPTY_NODE_FACTOR = EMPTY;
/**
 * A node is aligned with a request when the angle between the request's
 * cpu:memory direction and the node's allocated one (as shares of the node)
 * is below this. Chosen on the tuning seeds only (docs/scheduling.md).
 */
export const ALIGNED_ANGLE = ANGLE;
/** How much fuller aligned nodes rank above each other (and above an empty node). */
const ALIGNED_FILL_WEIGHT = 0.1;

/** Balanced fit's h for free shares c, m after placement. */
function balancedH(c: number, m: number): number {
  return (1 - (c * c + m * m) / 2 - W * Math.abs(c - m) + W) / (1 + W);
}

// Grove's default since issue 19 ("aligned fit"): balanced fit (L2 best fit
// minus 2|c - m| on uneven free shares c, m after placement, times 0.8 on an
// empty node) in all but one decision, opening a new node. A used node that
// is aligned with the request (it holds about the request's cpu:memory
// direction, within ALIGNED_ANGLE) ranks above any empty node of its shape,
// and fuller aligned nodes above emptier ones. Balanced fit opened a new node
// as soon as a node was about two thirds full in one resource: right when
// other shapes will fill the other resource (mixes drawn independently per
// resource), wrong when the node holds what keeps arriving (identical
// instances: 1.5 x LB1 at 16 GiB per core, 2.1 x at 32; memory-heavy mixes).
// With this, identical instances fill one node after the other as
// MostAllocated does. Depends on the request and the node only, so the shape
// cache applies.
export const alignedFit: Scorer = {
  name: "aligned-fit",
  scope: "node",
  weight: 1,
  reads: "resources",
  score: (req, node) => {
    const c = 1 - cpuAfter(req, node);
    const m = 1 - memoryAfter(req, node);
    const h = balancedH(c, m);
    const a = node.allocated;
    if (a.cpuMillis === 0 && a.memoryBytes === 0) return h * EMPTY;
    const cap = node.allocatable;
    const dc = share(req.resources.cpuMillis, cap.cpuMillis);
    const dm = share(req.resources.memoryBytes, cap.memoryBytes);
    // The same request on this node were it empty, and how much fuller this node ends up.
    const ce = 1 - dc;
    const me = 1 - dm;
    const fuller = (ce * ce + me * me - c * c - m * m) / 2;
    const lifted = balancedH(ce, me) * EMPTY + 1e-9 + ALIGNED_FILL_WEIGHT * fuller;
    // Aligned or not, the score is h when the lift does not exceed it: the angles (two atan2,
    // most of a used node's cost) are needed only when it does.
    if (lifted <= h) return h;
    const held = Math.atan2(share(a.memoryBytes, cap.memoryBytes), share(a.cpuMillis, cap.cpuMillis));
    if (Math.abs(held - Math.atan2(dm, dc)) >= ANGLE) return h;
    return Math.max(h, lifted);
  },
};

/** The scorers of this file (all depend on the request and the node only). */
export const DENSITY_SCORERS: readonly Scorer[] = [balancedAllocation, alignedFit];
