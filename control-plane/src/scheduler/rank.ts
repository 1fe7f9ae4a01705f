// Ranking: a node's total (the weighted mean of the profile's scorers) and
// the one tie-break, used by place() whether it scanned the nodes or read
// them off the shape cache (shape-index.ts), so both pick the same node.
import { CONDITION_BITS, meets } from "./conditions";
import type { NodeView, PlacementContext, PlacementRequest, Profile, Rng, Scorer } from "./types";

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

/** A profile's scorers laid out for the hot loop (rankingOf). */
export interface Ranking {
  readonly scorers: readonly Scorer[];
  readonly weights: Float64Array;
  readonly totalWeight: number;
  /** Per scorer: its constantWhen condition as CONDITION_BITS (0: none) and score. */
  readonly constantMask: Int32Array;
  readonly constantScore: Float64Array;
  /**
   * Whether a node's total can be reused for a node of equal amounts (sameAmounts): every
   * scorer reads only resources (Scorer.reads) or is a constant where the node meets its
   * condition; both nodes must then meet `reuseMask`, every scorer's constantWhen condition.
   */
  readonly reuse: boolean;
  readonly reuseMask: number;
}

const rankings = new WeakMap<Profile, Ranking>();

/** The profile's Ranking (built once per profile object). */
export function rankingOf(profile: Profile): Ranking {
  let r = rankings.get(profile);
  if (r) return r;
  const scorers = profile.scorers;
  let totalWeight = 0;
  for (const s of scorers) totalWeight += s.weight;
  r = {
    scorers,
    weights: Float64Array.from(scorers, (s) => s.weight),
    totalWeight,
    constantMask: Int32Array.from(scorers, (s) => (s.constantWhen ? CONDITION_BITS[s.constantWhen.condition] : 0)),
    constantScore: Float64Array.from(scorers, (s) => s.constantWhen?.score ?? 0),
    reuse: scorers.every((s) => s.reads === "resources" || s.constantWhen !== undefined),
    reuseMask: scorers.reduce((m, s) => m | (s.constantWhen ? CONDITION_BITS[s.constantWhen.condition] : 0), 0),
  };
  rankings.set(profile, r);
  return r;
}

/**
 * A node's profile score: the weighted mean of the scorers, each clamped to
 * 0..1, summed in profile order (a scorer's declared constant where the node
 * meets its condition).
 */
export function nodeTotal(req: PlacementRequest, node: NodeView, ranking: Ranking, ctx: PlacementContext): number {
  const { scorers, weights, totalWeight, constantMask, constantScore } = ranking;
  if (totalWeight <= 0) return 0;
  let weighted = 0;
  for (let k = 0; k < scorers.length; k++) {
    const mask = constantMask[k]!;
    const s = mask !== 0 && meets(mask, req.resources, node) ? constantScore[k]! : scorers[k]!.score(req, node, ctx);
    weighted += (s < 0 ? 0 : s > 1 ? 1 : s) * weights[k]!;
  }
  return weighted / totalWeight;
}

/** Whether two nodes have equal allocatable and allocated amounts (what Scorer.reads "resources" reads). */
export function sameAmounts(a: NodeView, b: NodeView): boolean {
  const x = a.allocated;
  const y = b.allocated;
  const p = a.allocatable;
  const q = b.allocatable;
  return (
    (x === y ||
      (x.cpuMillis === y.cpuMillis &&
        x.memoryBytes === y.memoryBytes &&
        x.pids === y.pids &&
        x.diskBytes === y.diskBytes)) &&
    (p === q ||
      (p.cpuMillis === q.cpuMillis &&
        p.memoryBytes === q.memoryBytes &&
        p.pids === q.pids &&
        p.diskBytes === q.diskBytes))
  );
}

/**
 * nodeTotal() of the nodes at `indices[0..count)` into `totals`, in one
 * loop (the scan's hot loop); returns the best. When the ranking allows
 * (Ranking.reuse), a node of the same amounts as the last one scored gets
 * its total without asking the scorers again: a cluster of one machine shape
 * has long runs of such nodes (every empty one).
 */
export function totalsOf(
  req: PlacementRequest,
  nodes: readonly NodeView[],
  indices: Int32Array,
  count: number,
  ranking: Ranking,
  ctx: PlacementContext,
  totals: Float64Array,
): number {
  let top = -Infinity;
  if (!ranking.reuse) {
    for (let k = 0; k < count; k++) {
      const t = nodeTotal(req, nodes[indices[k]!]!, ranking, ctx);
      totals[k] = t;
      if (t > top) top = t;
    }
    return top;
  }
  const mask = ranking.reuseMask;
  const r = req.resources;
  const memo = new ReusedTotal(req, ranking, ctx);
  for (let k = 0; k < count; k++) {
    const node = nodes[indices[k]!]!;
    const t = memo.total(node, mask === 0 || meets(mask, r, node));
    totals[k] = t;
    if (t > top) top = t;
  }
  return top;
}

/**
 * The reuse step of a scan (Ranking.reuse): the last node scored that met
 * every scorer's condition (`met`), and its total, which a node of the same
 * amounts that meets them too gets without asking the scorers again.
 */
export class ReusedTotal {
  private last: NodeView | undefined;
  private lastTotal = 0;
  constructor(
    private readonly req: PlacementRequest,
    private readonly ranking: Ranking,
    private readonly ctx: PlacementContext,
  ) {}

  total(node: NodeView, met: boolean): number {
    if (met && this.last !== undefined && sameAmounts(node, this.last)) return this.lastTotal;
    const t = nodeTotal(this.req, node, this.ranking, this.ctx);
    this.last = met ? node : undefined;
    this.lastTotal = t;
    return t;
  }
}

/** Name hashes by node index, per nodes array that breakTie() was given without a working set's. */
const hashesOf = new WeakMap<readonly NodeView[], { names: Array<string | undefined>; hashes: Uint32Array }>();

/**
 * The nodes' name hashes by index, for a caller that keeps none (the plain
 * place()): remembered per array with the name each was computed from, so an
 * index whose node was replaced or renamed is hashed again. Only a speed-up
 * (a cluster where every empty node ties makes the tie-break hash thousands
 * of names): the hash is nameHash()'s.
 */
function hashesFor(tied: ArrayLike<number>, count: number, nodes: readonly NodeView[]): Uint32Array {
  let memo = hashesOf.get(nodes);
  if (memo === undefined || memo.hashes.length !== nodes.length) {
    memo = {
      names: new Array<string | undefined>(nodes.length).fill(undefined),
      hashes: new Uint32Array(nodes.length),
    };
    hashesOf.set(nodes, memo);
  }
  const { names, hashes } = memo;
  for (let t = 0; t < count; t++) {
    const i = tied[t]!;
    const name = nodes[i]!.name;
    if (names[i] !== name) {
      names[i] = name;
      hashes[i] = nameHash(name);
    }
  }
  return hashes;
}

/**
 * Among tied nodes (indices into `nodes` whose total is within TIE_EPSILON of
 * the best), the one with the smallest key mixed from its name and one seeded
 * draw (then the smallest name): the input order does not matter and every
 * tied node can win for some seed. The draw is taken only when there is a
 * tie. `hashes` are the nodes' name hashes by index when the caller keeps
 * them (the working set), else they are remembered per nodes array (hashesFor).
 * `count`: how many of `tied` (from the start) tie.
 */
export function breakTie(
  tied: ArrayLike<number>,
  nodes: readonly NodeView[],
  rng: Rng,
  hashes?: Uint32Array,
  count = tied.length,
): number {
  let best = tied[0]!;
  if (count === 1) return best;
  const draw = tieDraw(rng);
  const h = hashes ?? hashesFor(tied, count, nodes);
  let bestKey = mixKey(h[best]!, draw);
  for (let t = 1; t < count; t++) {
    const i = tied[t]!;
    const key = mixKey(h[i]!, draw);
    if (key < bestKey || (key === bestKey && nodes[i]!.name < nodes[best]!.name)) {
      best = i;
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
