// Feasibility filters. Each rejects with a named reason so an unplaceable
// instance says why ("memory: insufficient on 12 of 12 nodes").

import type { Resources } from "@grove/api";
import type { Filter, NodeView, PlacementRequest, Verdict } from "./types";

const FIT: Verdict = { fit: true };

// The node's agent is up and reporting.
export const nodeReady: Filter = {
  name: "node-ready",
  check: (_req, node) => (node.ready ? FIT : { fit: false, reason: { subject: "node-ready", message: "not ready" } }),
};

// An operator cordoned the node: keep what runs there, place nothing new.
export const nodeSchedulable: Filter = {
  name: "node-schedulable",
  check: (_req, node) =>
    node.unschedulable ? { fit: false, reason: { subject: "node-schedulable", message: "cordoned" } } : FIT,
};

/** Free amount of one resource on a node (never negative). */
export function free(node: NodeView, resource: keyof Resources): number {
  return Math.max(0, node.allocatable[resource] - node.allocated[resource]);
}

function fitFilter(name: string, subject: string, resource: keyof Resources): Filter {
  return {
    name,
    check: (req: PlacementRequest, node: NodeView): Verdict =>
      node.allocated[resource] + req.resources[resource] <= node.allocatable[resource]
        ? FIT
        : { fit: false, reason: { subject, message: "insufficient" } },
  };
}

// The request fits in what is left of the node's allocatable CPU.
export const cpuFit = fitFilter("cpu-fit", "cpu", "cpuMillis");
// ... memory.
export const memoryFit = fitFilter("memory-fit", "memory", "memoryBytes");
// ... process ids (pids cgroup limit).
export const pidsFit = fitFilter("pids-fit", "pids", "pids");

export const DEFAULT_FILTERS: readonly Filter[] = [nodeReady, nodeSchedulable, cpuFit, memoryFit, pidsFit];
