// The placement library's types. The library is pure: no I/O, no clock, and
// no randomness but the seeded Rng passed in, so the control plane and the
// simulator get the same answer for the same input.

import type { PlacementExplain, Resources } from "@grove/api";

/** A label constraint: `key op values` ("zone in (a, b)", "gpu exists"). */
export interface LabelConstraint {
  key: string;
  op: "=" | "!=" | "in" | "notin" | "exists" | "notexists";
  values?: string[];
}

/** A node taint: only instances that tolerate it are placed on the node. */
export interface Taint {
  key: string;
  value?: string;
  /** NoSchedule: never place; PreferNoSchedule: place only when nothing else fits (scored down). */
  effect: "NoSchedule" | "PreferNoSchedule";
}

/** Tolerates taints with this key (and value, when given; any value with op "exists"). */
export interface Toleration {
  key: string;
  op?: "=" | "exists";
  value?: string;
  effect?: Taint["effect"];
}

/** Where an instance may go and how its App's instances spread. */
export interface PlacementSpec {
  /** Exact label matches, like Kubernetes' nodeSelector. */
  nodeSelector?: Record<string, string>;
  constraints?: LabelConstraint[];
  tolerations?: Toleration[];
  /** Instances of the same App across the values of a node label differ by at most maxSkew. */
  spread?: { topologyKey: string; maxSkew: number };
  /** At most one instance of the same App per node. */
  antiAffinity?: boolean;
}

/** A range of host ports, both ends included. */
export interface HostPortRange {
  first: number;
  last: number;
}

/** One instance to place. */
export interface PlacementRequest {
  /** The instance's id (e.g. namespace/app-3); used only in results and logs. */
  id: string;
  resources: Resources;
  app: string;
  namespace: string;
  /** Host ports the instance binds on its node; two instances never share one. */
  hostPorts?: number[];
  /**
   * Host ports placement hands out on the chosen node: the lowest `count`
   * free ports of `range` (PlacementResult.hostPorts). A node without that
   * many free is rejected like one whose fixed port is taken.
   */
  dynamicHostPorts?: { count: number; range: HostPortRange };
  /** Higher runs first and may preempt lower (default 0). */
  priority?: number;
  placement?: PlacementSpec;
}

/** An instance already bound to a node, as preemption and anti-affinity see it. */
export interface PlacedInstance {
  id: string;
  /** "namespace/app" */
  appKey: string;
  priority: number;
  resources: Resources;
  hostPorts?: number[];
}

/** What placement needs to know about a node. */
export interface NodeView {
  name: string;
  ready: boolean;
  /** Cordoned: no new instances are placed here. */
  unschedulable: boolean;
  allocatable: Resources;
  /** Sum of the resources of the instances already bound to the node. */
  allocated: Resources;
  labels: Record<string, string>;
  /** Host ports already bound on the node. */
  usedHostPorts?: ReadonlySet<number>;
  taints?: readonly Taint[];
  /** Instances per "namespace/app" bound to the node (anti-affinity, spread, Diego's same-App penalty). */
  appCounts?: ReadonlyMap<string, number>;
  /** The instances bound to the node, for preemption. */
  instances?: readonly PlacedInstance[];
}

/**
 * Why a filter rejected a node. `subject` and `message` make the human reason
 * "<subject>: <message> on N of M nodes", e.g. "memory: insufficient".
 */
export interface FilterReason {
  subject: string;
  message: string;
}

export type Verdict = { fit: true } | { fit: false; reason: FilterReason };

/**
 * Cluster-wide facts a filter or scorer may need for one request (topology
 * spread counts). Computed lazily, once per request.
 */
export interface PlacementContext {
  readonly nodes: readonly NodeView[];
  /** Instances of the request's App per value of a topology label, over nodes that pass the request's selector. */
  domainCounts(topologyKey: string): ReadonlyMap<string, number>;
}

/**
 * What a filter's verdict or a scorer's score reads besides the request:
 * - "node": the node it is asked about and nothing else, so the answer holds
 *   for every request of the same shape until that node changes and
 *   WorkingSet.place may cache it (shape-index.ts);
 * - "cluster": other nodes too (through the PlacementContext); never cached.
 */
export type PluginScope = "node" | "cluster";

/**
 * A test on a node's plain fields that the hot loops evaluate inline, for
 * all the filters (passesWhen) or scorers (constantWhen) that declare one
 * at once, instead of calling each per node (conditions.ts): "ready",
 * "schedulable" (not cordoned), "untainted", and "<resource>-fits"
 * (allocated + requested <= allocatable).
 */
export type NodeCondition = "ready" | "schedulable" | "untainted" | "cpu-fits" | "memory-fits" | "pids-fits";

/** A feasibility step: can this request run on this node at all? */
export interface Filter {
  name: string;
  scope: PluginScope;
  /** Reads the request's App (its instances on the node): the App is then part of the request's shape. */
  readsApp?: boolean;
  /**
   * A condition under which check() passes (sufficient, not necessary:
   * when it fails, check() decides and names the reason). Only a speed-up.
   */
  passesWhen?: NodeCondition;
  check(req: PlacementRequest, node: NodeView, ctx?: PlacementContext): Verdict;
  /** False when the filter cannot reject any node for this request (it is then skipped). */
  applies?(req: PlacementRequest): boolean;
}

/** A ranking step: how good is this node for the request, 0 (worst) to 1 (best). */
export interface Scorer {
  name: string;
  weight: number;
  scope: PluginScope;
  /** Reads the request's App (its instances on the node): the App is then part of the request's shape. */
  readsApp?: boolean;
  /** The score of every node that meets `condition`: score() is not called there. Only a speed-up. */
  constantWhen?: { condition: NodeCondition; score: number };
  /**
   * "resources": score() reads nothing of the node but its allocatable and allocated amounts
   * (cpuMillis, memoryBytes, pids, diskBytes), so two nodes whose amounts are equal (===) get
   * the same score, and a scan scores a run of such nodes once (rank.ts totalsOf). Only a speed-up.
   */
  reads?: "resources";
  score(req: PlacementRequest, node: NodeView, ctx?: PlacementContext): number;
}

/**
 * Candidate sampling for large clusters: stop filtering once enough feasible
 * nodes were found, starting from a rotating offset.
 * - "percentage": Kubernetes' percentageOfNodesToScore (adaptive when `percentage` is 0).
 * - "log2": Nomad's max(2, ceil(log2 N)) candidates.
 * Off below `minNodes` nodes.
 */
export interface Sampling {
  mode: "percentage" | "log2";
  percentage?: number;
  minNodes?: number;
}

export interface Profile {
  name: string;
  filters: readonly Filter[];
  scorers: readonly Scorer[];
  sampling?: Sampling;
}

export interface PlacementResult {
  /** The chosen node; absent when no node fits. */
  nodeName?: string;
  explain: PlacementExplain;
  /** Why nothing fits, e.g. "memory: insufficient on 1 of 1 nodes". */
  reason?: string;
  /** Instances to evict from nodeName to make room (preemption). */
  victims?: string[];
  /** The host ports handed out on nodeName for the request's dynamicHostPorts, in order. */
  hostPorts?: number[];
}

/** A source of numbers in [0, 1); only ever used to break score ties. */
export interface Rng {
  next(): number;
}
