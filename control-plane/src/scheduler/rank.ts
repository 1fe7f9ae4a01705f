// Ranking primitives shared by place() and the WorkingSet's cached path
// (shape-index.ts): one definition of a node's total and of tie-breaking, so
// both paths pick the same node.
import type { Resources } from "@grove/api";
import { cpuFit, memoryFit, nodeReady, nodeSchedulable, pidsFit, taintsFilter } from "./filters";
import { preferNoSchedule } from "./scorers";
import type { Filter, NodeView, PlacementContext, PlacementRequest, Profile, Rng, Scorer } from "./types";

const FUSED: ReadonlySet<Filter> = new Set([nodeReady, nodeSchedulable, cpuFit, memoryFit, pidsFit, taintsFilter]);

/**
 * Whether the inline check fusedFits() stands for the whole filter chain:
 * only readiness, cordon, cpu/memory/pids fit and taints apply.
 */
export function fusedFor(filters: readonly Filter[]): boolean {
  for (const f of filters) if (!FUSED.has(f)) return false;
  return true;
}

/**
 * The fused filters in one expression: true when every one of them passes
 * (a tainted node is left to the filter chain, which names the taint).
 */
export function fusedFits(r: Resources, node: NodeView): boolean {
  return (
    node.ready &&
    !node.unschedulable &&
    node.allocated.cpuMillis + r.cpuMillis <= node.allocatable.cpuMillis &&
    node.allocated.memoryBytes + r.memoryBytes <= node.allocatable.memoryBytes &&
    node.allocated.pids + r.pids <= node.allocatable.pids &&
    (node.taints === undefined || node.taints.length === 0)
  );
}

/** Scores closer than this count as a tie. */
export const TIE_EPSILON = 1e-12;

const nameHashes = new Map<string, number>();
/** FNV-1a of a node name (cached): ties are broken by name, not input order. */
export function nameHash(name: string): number {
  let h = nameHashes.get(name);
  if (h !== undefined) return h;
  h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h >>>= 0;
  if (nameHashes.size > 1_000_000) nameHashes.clear();
  nameHashes.set(name, h);
  return h;
}

/** murmur3's finalizer over a name's hash and a draw: the tie-break key. */
export function mixKey(hash: number, draw: number): number {
  let h = (hash ^ draw) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A well-mixed 32-bit key for (name, draw). */
export function tieKey(name: string, draw: number): number {
  return mixKey(nameHash(name), draw);
}

/** The one seeded draw a tie-break uses. */
export function tieDraw(rng: Rng): number {
  return Math.floor(rng.next() * 4294967296) >>> 0;
}

export function hasTaints(node: NodeView): boolean {
  return node.taints !== undefined && node.taints.length > 0;
}

/**
 * A node's profile score: the weighted mean of the scorers, each clamped to
 * 0..1, summed in profile order. prefer-no-schedule is 1 on an untainted node
 * without being called (the hot path's shortcut; same value).
 */
export function nodeTotal(
  req: PlacementRequest,
  node: NodeView,
  scorers: readonly Scorer[],
  totalWeight: number,
  ctx: PlacementContext,
): number {
  if (totalWeight <= 0) return 0;
  let weighted = 0;
  const tainted = hasTaints(node);
  for (let k = 0; k < scorers.length; k++) {
    const scorer = scorers[k]!;
    const s = scorer === preferNoSchedule && !tainted ? 1 : scorer.score(req, node, ctx);
    weighted += (s < 0 ? 0 : s > 1 ? 1 : s) * scorer.weight;
  }
  return weighted / totalWeight;
}

export function totalWeightOf(profile: Profile): number {
  let w = 0;
  for (const s of profile.scorers) w += s.weight;
  return w;
}

/**
 * Among tied nodes (total within TIE_EPSILON of the best), the one with the
 * smallest key mixed from its name and one seeded draw (then the smallest
 * name): the input order does not matter and every tied node can win for
 * some seed. The draw is taken only when there is a tie.
 */
export function breakTie(tied: readonly NodeView[], rng: Rng): NodeView {
  let best = tied[0]!;
  if (tied.length === 1) return best;
  const draw = tieDraw(rng);
  let bestKey = tieKey(best.name, draw);
  for (let i = 1; i < tied.length; i++) {
    const node = tied[i]!;
    const key = tieKey(node.name, draw);
    if (key < bestKey || (key === bestKey && node.name < best.name)) {
      best = node;
      bestKey = key;
    }
  }
  return best;
}

/** The winner's per-scorer scores for explain. */
export function scoresOf(
  req: PlacementRequest,
  node: NodeView,
  profile: Profile,
  ctx: PlacementContext,
  total: number,
) {
  const scores: Record<string, number> = {};
  for (const scorer of profile.scorers) {
    const s = scorer.score(req, node, ctx);
    scores[scorer.name] = s < 0 ? 0 : s > 1 ? 1 : s;
  }
  return { ...scores, total };
}
