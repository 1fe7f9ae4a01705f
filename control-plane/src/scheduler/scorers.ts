// Ranking. Scores are 0..1; place() combines them as a weighted mean.

import type { Resources } from "@grove/api";
import type { NodeView, PlacementRequest, Scorer } from "./types";

/** Share of one resource in use once the request is added, clamped to 0..1 (0 when the node has none). */
export function utilisationAfter(req: PlacementRequest, node: NodeView, resource: keyof Resources): number {
  const capacity = node.allocatable[resource];
  if (capacity <= 0) return 0;
  const used = (node.allocated[resource] + req.resources[resource]) / capacity;
  return Math.min(1, Math.max(0, used));
}

// Bin-pack (Kubernetes NodeResourcesFit "MostAllocated"): prefer the fullest
// node over cpu and memory, so whole nodes stay free for big instances.
export const binPack: Scorer = {
  name: "bin-pack",
  weight: 1,
  score: (req, node) => (utilisationAfter(req, node, "cpuMillis") + utilisationAfter(req, node, "memoryBytes")) / 2,
};

// Spread ("LeastAllocated"): prefer the emptiest node; for comparing policies in sim/.
export const spread: Scorer = {
  name: "spread",
  weight: 1,
  score: (req, node) => 1 - (utilisationAfter(req, node, "cpuMillis") + utilisationAfter(req, node, "memoryBytes")) / 2,
};
