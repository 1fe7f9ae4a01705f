// The placement library's types. The library is pure: no I/O, no clock, and
// no randomness but the seeded Rng passed in, so the control plane and the
// simulator get the same answer for the same input.

import type { PlacementExplain, Resources } from "@grove/api";

/** One instance to place. */
export interface PlacementRequest {
  /** The instance's id (e.g. namespace/app-3); used only in results and logs. */
  id: string;
  resources: Resources;
  app: string;
  namespace: string;
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

/** A feasibility step: can this request run on this node at all? */
export interface Filter {
  name: string;
  check(req: PlacementRequest, node: NodeView): Verdict;
}

/** A ranking step: how good is this node for the request, 0 (worst) to 1 (best). */
export interface Scorer {
  name: string;
  weight: number;
  score(req: PlacementRequest, node: NodeView): number;
}

export interface Profile {
  name: string;
  filters: readonly Filter[];
  scorers: readonly Scorer[];
}

export interface PlacementResult {
  /** The chosen node; absent when no node fits. */
  nodeName?: string;
  explain: PlacementExplain;
  /** Why nothing fits, e.g. "memory: insufficient on 1 of 1 nodes". */
  reason?: string;
}

/** A source of numbers in [0, 1); only ever used to break score ties. */
export interface Rng {
  next(): number;
}
