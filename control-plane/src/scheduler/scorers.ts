// Ranking. Every scorer returns 0 (worst) .. 1 (best); place() combines them
// as a weighted mean over the profile's scorers. Formulas and their sources
// are in docs/scheduling.md.

import { appKeyOf, untolerated, type ResourceKey } from "./filters";
import type { NodeView, PlacementRequest, Scorer } from "./types";

/** Share of one resource in use once the request is added, clamped to 0..1 (0 when the node has none). */
export function utilisationAfter(req: PlacementRequest, node: NodeView, resource: ResourceKey): number {
  const capacity = node.allocatable[resource];
  if (capacity === undefined || capacity <= 0) return 0;
  const used = ((node.allocated[resource] ?? 0) + (req.resources[resource] ?? 0)) / capacity;
  return used < 0 ? 0 : used > 1 ? 1 : used;
}

/** utilisationAfter for cpu and memory with plain property reads (the hot path). */
export function cpuAfter(req: PlacementRequest, node: NodeView): number {
  const cap = node.allocatable.cpuMillis;
  if (cap <= 0) return 0;
  const u = (node.allocated.cpuMillis + req.resources.cpuMillis) / cap;
  return u < 0 ? 0 : u > 1 ? 1 : u;
}
export function memoryAfter(req: PlacementRequest, node: NodeView): number {
  const cap = node.allocatable.memoryBytes;
  if (cap <= 0) return 0;
  const u = (node.allocated.memoryBytes + req.resources.memoryBytes) / cap;
  return u < 0 ? 0 : u > 1 ? 1 : u;
}

/** The request's share of the node's capacity of one resource (0 when the node has none). */
function demandShare(req: PlacementRequest, node: NodeView, resource: ResourceKey): number {
  const capacity = node.allocatable[resource];
  if (capacity === undefined || capacity <= 0) return 0;
  return Math.min(1, (req.resources[resource] ?? 0) / capacity);
}

/** Free share before placement. */
function freeShare(node: NodeView, resource: ResourceKey): number {
  const capacity = node.allocatable[resource];
  if (capacity === undefined || capacity <= 0) return 0;
  return Math.max(0, capacity - (node.allocated[resource] ?? 0)) / capacity;
}

// Kubernetes NodeResourcesFit "MostAllocated": mean utilisation of cpu and
// memory after placement; prefer the fullest node.
export const mostAllocated: Scorer = {
  name: "most-allocated",
  weight: 1,
  scope: "node",
  reads: "resources",
  score: (req, node) => (cpuAfter(req, node) + memoryAfter(req, node)) / 2,
};
/** The walking skeleton's name for MostAllocated. */
export const binPack: Scorer = { ...mostAllocated, name: "bin-pack" };

// Kubernetes "LeastAllocated": prefer the emptiest node.
export const leastAllocated: Scorer = {
  name: "least-allocated",
  weight: 1,
  scope: "node",
  reads: "resources",
  score: (req, node) => 1 - (cpuAfter(req, node) + memoryAfter(req, node)) / 2,
};
/** The walking skeleton's name for LeastAllocated. */
export const spread: Scorer = { ...leastAllocated, name: "spread" };

// Nomad's binpack "BestFit v3" (nomad/structs/funcs.go ScoreFitBinPack):
// 20 - (10^freeCpu + 10^freeMem), free as shares after placement, clamped to
// [0, 18], divided by 18.
export const nomadBestFit: Scorer = {
  name: "nomad-bestfit",
  weight: 1,
  scope: "node",
  reads: "resources",
  score: (req, node) => {
    const freeCpu = 1 - cpuAfter(req, node);
    const freeMem = 1 - memoryAfter(req, node);
    const s = 20 - (Math.pow(10, freeCpu) + Math.pow(10, freeMem));
    return Math.min(18, Math.max(0, s)) / 18;
  },
};

// Tetris dot-product alignment: demand . free capacity (both as shares of the
// node), mean over cpu and memory; prefer the node whose free room is shaped
// like the request.
export const dotProduct: Scorer = {
  name: "dot-product",
  weight: 1,
  scope: "node",
  reads: "resources",
  score: (req, node) =>
    (demandShare(req, node, "cpuMillis") * freeShare(node, "cpuMillis") +
      demandShare(req, node, "memoryBytes") * freeShare(node, "memoryBytes")) /
    2,
};

// L2-norm best fit (Panigrahy et al.): minimise the squared norm of what is
// left over after placement, ||free - demand||^2 over cpu and memory shares.
export const l2Norm: Scorer = {
  name: "l2-norm",
  weight: 1,
  scope: "node",
  reads: "resources",
  score: (req, node) => {
    const c = 1 - cpuAfter(req, node);
    const m = 1 - memoryAfter(req, node);
    return 1 - (c * c + m * m) / 2;
  },
};

// Diego's auctioneer: cost = mean fraction used after placement over memory,
// disk (when the node reports it) and pids (standing in for the container
// count), plus 1000 per instance of the same App already on the node; lowest
// wins. Mapped to 0..1 so a node with fewer same-App instances always ranks
// first: score = (1 - u / (2 + s)) / (1 + s) lies in [1/(2+s), 1/(1+s)].
export const diego: Scorer = {
  name: "diego",
  weight: 1,
  scope: "node",
  readsApp: true,
  score: (req, node) => {
    const parts = [memoryAfter(req, node), utilisationAfter(req, node, "pids")];
    if (node.allocatable.diskBytes !== undefined) parts.push(utilisationAfter(req, node, "diskBytes"));
    const u = parts.reduce((a, b) => a + b, 0) / parts.length;
    const s = node.appCounts?.get(appKeyOf(req)) ?? 0;
    return (1 - u / (2 + s)) / (1 + s);
  },
};

// Taints with effect PreferNoSchedule: 0 when the node has one the request
// does not tolerate, else 1. Profiles weight it heavily so such nodes are used
// only when nothing else fits.
export const preferNoSchedule: Scorer = {
  name: "prefer-no-schedule",
  weight: 10,
  scope: "node",
  constantWhen: { condition: "untainted", score: 1 },
  score: (req, node) => (node.taints && untolerated(req, node, "PreferNoSchedule").length > 0 ? 0 : 1),
};

// Module-local, exported by another name (as in scorers-density.ts: a use of an exported const is a read of `exports`).
const W = 2;
const EMPTY = 0.8;
/** Weight of the imbalance penalty in balancedFit. */
export const BALANCE_WEIGHT = W;
/** balancedFit's factor for a node with nothing on it. */
export const EMPTY_NODE_FACTOR = EMPTY;

// Grove's default ("balanced fit"), chosen with the simulator (docs/scheduling.md):
// L2-norm best fit minus a penalty for leaving cpu and memory unevenly free
// (free room of one resource without the other is stranded capacity, which
// Borg's hybrid score minimises), and a discount for opening an empty node.
// With free shares c, m after placement:
//   h = (1 - (c^2 + m^2)/2 - 2|c - m| + 2) / 3, times 0.8 on an empty node.
export const balancedFit: Scorer = {
  name: "balanced-fit",
  weight: 1,
  scope: "node",
  reads: "resources",
  score: (req, node) => {
    const c = 1 - cpuAfter(req, node);
    const m = 1 - memoryAfter(req, node);
    const h = (1 - (c * c + m * m) / 2 - W * Math.abs(c - m) + W) / (1 + W);
    return node.allocated.cpuMillis === 0 && node.allocated.memoryBytes === 0 ? h * EMPTY : h;
  },
};

/** Every scorer above. */
export const BUILTIN_SCORERS: readonly Scorer[] = [
  mostAllocated,
  binPack,
  leastAllocated,
  spread,
  nomadBestFit,
  dotProduct,
  l2Norm,
  diego,
  preferNoSchedule,
  balancedFit,
];
