// kube-scheduler's bin-packing configuration as a comparison profile for the
// simulator (issue 18): NodeResourcesFit with the MostAllocated scoring
// strategy (resources cpu and memory, weight 1 each) and
// NodeResourcesBalancedAllocation, each plugin at its default weight 1, scored
// the way kube-scheduler scores them (pkg/scheduler/framework/plugins/
// noderesources: most_allocated.go, balanced_allocation.go):
//  - MostAllocated, per resource: requested * 100 / allocatable in int64
//    arithmetic (truncated), requested = what the node has + the pod's
//    request, capped at allocatable; the plugin's score is
//    sum(score_r * w_r) / sum(w_r), again truncated;
//  - BalancedAllocation: the fractions requested / allocatable (capped at 1)
//    of cpu and memory, std = |f_cpu - f_mem| / 2, score int64((1 - std) * 100);
//  - the node's total is the sum of plugin score x plugin weight (0..200);
//    the highest total wins and equal totals are a uniform random pick
//    (kube-scheduler's selectHost; here the library's seeded tie-break, which
//    sees the same ties because every total is one of 201 values).
// The truncation matters: nodes within 1 % of each other tie, where Grove's
// float `kube-binpack` profile would rank them.
// Left out, and why: kube-scheduler's other default score plugins score
// equally on every node of these simulated clusters (TaintToleration,
// NodeAffinity, InterPodAffinity: no taints or affinities; ImageLocality: no
// images), except PodTopologySpread, whose system default constraints
// (ScheduleAnyway, hostname maxSkew 3, zone maxSkew 5, weight 2) apply to pods
// of a Service or ReplicaSet and would pull an App's replicas apart: without
// them kube-scheduler packs tighter than it would by default, so the figure
// against it is the harder one for Grove. percentageOfNodesToScore is not
// applied either (every feasible node is scored; kube-scheduler scores at
// least 100 feasible nodes, all of them in clusters under 100 nodes).
import {
  DEFAULT_FILTERS,
  PROFILE_NAMES,
  preferNoSchedule,
  profileByName,
  type NodeView,
  type PlacementRequest,
  type Profile,
  type Sampling,
  type Scorer,
} from "@grove/control-plane/scheduler";

export const K8S_MAX_NODE_SCORE = 100;
/** Plugin weights of the profile (kube-scheduler's defaults for both plugins). */
export const K8S_BINPACK_WEIGHTS = { NodeResourcesFit: 1, NodeResourcesBalancedAllocation: 1 } as const;
/** NodeResourcesFit's resource weights in the bin-packing configuration. */
export const K8S_MOST_ALLOCATED_RESOURCE_WEIGHTS = { cpu: 1, memory: 1 } as const;

/** kube-scheduler's mostRequestedScore: int64 arithmetic, requested capped at capacity. */
export function k8sMostRequestedScore(requested: number, capacity: number): number {
  if (capacity <= 0) return 0;
  const r = Math.min(requested, capacity);
  return Math.floor((r * K8S_MAX_NODE_SCORE) / capacity);
}

/** NodeResourcesFit (MostAllocated) on the node with the request added: 0..100, an integer. */
export function k8sMostAllocatedScore(req: PlacementRequest, node: NodeView): number {
  const w = K8S_MOST_ALLOCATED_RESOURCE_WEIGHTS;
  const cpu = k8sMostRequestedScore(node.allocated.cpuMillis + req.resources.cpuMillis, node.allocatable.cpuMillis);
  const mem = k8sMostRequestedScore(
    node.allocated.memoryBytes + req.resources.memoryBytes,
    node.allocatable.memoryBytes,
  );
  return Math.floor((cpu * w.cpu + mem * w.memory) / (w.cpu + w.memory));
}

/** NodeResourcesBalancedAllocation on the node with the request added: 0..100, an integer. */
export function k8sBalancedAllocationScore(req: PlacementRequest, node: NodeView): number {
  const fractions: number[] = [];
  const add = (requested: number, allocatable: number) => {
    if (allocatable === 0) return; // kube-scheduler skips a resource the node does not have
    fractions.push(Math.min(1, requested / allocatable));
  };
  add(node.allocated.cpuMillis + req.resources.cpuMillis, node.allocatable.cpuMillis);
  add(node.allocated.memoryBytes + req.resources.memoryBytes, node.allocatable.memoryBytes);
  const std = fractions.length === 2 ? Math.abs((fractions[0]! - fractions[1]!) / 2) : 0;
  return Math.trunc((1 - std) * K8S_MAX_NODE_SCORE);
}

/** The node's kube-scheduler total, 0..200 (plugin score x plugin weight, summed). */
export function k8sBinpackTotal(req: PlacementRequest, node: NodeView): number {
  return (
    k8sMostAllocatedScore(req, node) * K8S_BINPACK_WEIGHTS.NodeResourcesFit +
    k8sBalancedAllocationScore(req, node) * K8S_BINPACK_WEIGHTS.NodeResourcesBalancedAllocation
  );
}

const K8S_TOTAL_MAX =
  K8S_MAX_NODE_SCORE * (K8S_BINPACK_WEIGHTS.NodeResourcesFit + K8S_BINPACK_WEIGHTS.NodeResourcesBalancedAllocation);

/** The total scaled to the library's 0..1; order and ties are kube-scheduler's. */
export const k8sBinpackScorer: Scorer = {
  name: "k8s-binpack",
  weight: 1,
  scope: "node",
  reads: "resources",
  score: (req, node) => k8sBinpackTotal(req, node) / K8S_TOTAL_MAX,
};

/** The comparison profile: Grove's filters (resource fit as kube-scheduler's Filter), kube-scheduler's scores. */
export const K8S_BINPACK_PROFILE: Profile = {
  name: "k8s-binpack",
  filters: DEFAULT_FILTERS,
  // prefer-no-schedule is constant (1) on the simulator's untainted nodes: it changes no order.
  scorers: [k8sBinpackScorer, preferNoSchedule],
};

/** Profiles only the simulator knows (comparison anchors, not for the control plane). */
export const SIM_PROFILES: Readonly<Record<string, Profile>> = { "k8s-binpack": K8S_BINPACK_PROFILE };
export const SIM_PROFILE_NAMES: readonly string[] = [...PROFILE_NAMES, ...Object.keys(SIM_PROFILES)];

/** A library profile by name, or one of the simulator's comparison profiles. */
export function simProfileByName(name: string, sampling?: Sampling | "off"): Profile {
  const own = SIM_PROFILES[name];
  if (!own) return profileByName(name, sampling);
  if (sampling === undefined || sampling === "off") return own;
  return { ...own, sampling };
}
