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

/** One instance to place. */
export interface PlacementRequest {
  /** The instance's id (e.g. namespace/app-3); used only in results and logs. */
  id: string;
  resources: Resources;
  app: string;
  namespace: string;
  /** Host ports the instance binds on its node; two instances never share one. */
  hostPorts?: number[];
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

/** A feasibility step: can this request run on this node at all? */
export interface Filter {
  name: string;
  check(req: PlacementRequest, node: NodeView, ctx?: PlacementContext): Verdict;
  /** False when the filter cannot reject any node for this request (it is then skipped). */
  applies?(req: PlacementRequest): boolean;
}

/** A ranking step: how good is this node for the request, 0 (worst) to 1 (best). */
export interface Scorer {
  name: string;
  weight: number;
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
}

/** A source of numbers in [0, 1); only ever used to break score ties. */
export interface Rng {
  next(): number;
}
