// place(): the placement pipeline. Filter the nodes (the filter chain,
// feasibility.ts), score the survivors (rank.ts), pick the best (one seeded
// tie-break breaks exact ties), hand out the request's dynamic host ports on
// it (ports.ts), and record why, so "Pending" always has an answer. When
// nothing fits, a higher-priority request may preempt lower-priority
// instances on one node (preempt.ts).
//
// There is one algorithm. A working set (working-set.ts) passes its shape
// cache in: it remembers, per request shape, what the chain and the scorers
// answered for each node (shape-index.ts), so the scan is replaced by reading
// the best total and its ties off the cache; the tie-break, ports, explain
// and rng draws are the same.

import type { PlacementExplain } from "@grove/api";
import { describeRejections, feasibleToFind, FilterChain, placementContext, rejectedByName } from "./feasibility";
import { assignHostPorts } from "./ports";
import { withoutIds, preempt } from "./preempt";
import { defaultProfile, DEFAULT_PROFILE } from "./profiles";
import { meets } from "./conditions";
import { breakTie, rankingOf, ReusedTotal, scoresOf, TIE_EPSILON, totalsOf, type Ranking } from "./rank";
import type { ShapeIndex } from "./shape-index";
import type {
  FilterReason,
  NodeView,
  PlacementContext,
  PlacementRequest,
  PlacementResult,
  Profile,
  Rng,
} from "./types";

export { DEFAULT_PROFILE, defaultProfile };
export { describeRejections, feasibleToFind, placementContext } from "./feasibility";

/** A cache of the chain's and the scorers' answers per request shape (WorkingSet). */
export interface ShapeCache {
  /**
   * The index of this request's shape, current for every node, or undefined
   * when the request has no shape (a plugin of scope "cluster") or the cache
   * declines (a shape seen for the first time): place() then scans.
   */
  lookup(req: PlacementRequest, chain: FilterChain, profile: Profile, ctx: PlacementContext): ShapeIndex | undefined;
  /** The nodes' name hashes by index, for the tie-break. */
  nameHashes(): Uint32Array;
}

/** What a scan of the nodes found. */
interface Scan {
  considered: number;
  /** Per applicable filter: nodes it rejected first. */
  perFilter: Int32Array;
  reasons: Map<FilterReason, number>;
  top: number;
}

// Reused by every call (placement is synchronous and never re-entered).
const tiedBuffer: number[] = [];
let totalsBuffer = new Float64Array(1024);
let feasibleBuffer = new Int32Array(1024);

/**
 * Runs the chain on the nodes from `start` on (wrapping), stopping once
 * `toFind` feasible nodes were found (candidate sampling), scores the
 * feasible ones and pushes the indices within TIE_EPSILON of the best to `tied`.
 */
function scan(
  req: PlacementRequest,
  nodes: readonly NodeView[],
  chain: FilterChain,
  profile: Profile,
  ctx: PlacementContext,
  toFind: number,
  start: number,
  tied: number[],
): Scan {
  const n = nodes.length;
  if (totalsBuffer.length < n) {
    const size = Math.max(n, 2 * totalsBuffer.length);
    totalsBuffer = new Float64Array(size);
    feasibleBuffer = new Int32Array(size);
  }
  const totals = totalsBuffer;
  const feasible = feasibleBuffer;
  const ranking = rankingOf(profile);
  const perFilter = new Int32Array(chain.filters.length);
  const reasons = new Map<FilterReason, number>();
  let found: number;
  let considered: number;
  let top: number;
  const mask = chain.inlineMask;
  if (mask !== 0 && ranking.reuse) {
    ({ found, considered, top } = filterAndScore(
      req,
      nodes,
      chain,
      ranking,
      ctx,
      mask,
      toFind,
      start,
      perFilter,
      reasons,
    ));
  } else {
    ({ found, considered } = chain.filter(req, nodes, ctx, start, toFind, feasible, perFilter, reasons));
    // Scored in a second loop: two small hot loops optimise better than one.
    top = totalsOf(req, nodes, feasible, found, ranking, ctx, totals);
  }
  const threshold = top - TIE_EPSILON;
  for (let k = 0; k < found; k++) if (totals[k]! >= threshold) tied.push(feasible[k]!);
  return { considered, perFilter, reasons, top };
}

/**
 * chain.filter() and totalsOf() in one pass over the nodes, for the common
 * case: every filter declares its condition (`mask`, checked inline) and the
 * ranking may reuse the total of a node of equal amounts (Ranking.reuse).
 * Each node is then read once, and a run of equal nodes (a cluster of one
 * machine shape, every empty node) costs little more than the conditions.
 * Fills feasibleBuffer and totalsBuffer as the two loops do.
 */
function filterAndScore(
  req: PlacementRequest,
  nodes: readonly NodeView[],
  chain: FilterChain,
  ranking: Ranking,
  ctx: PlacementContext,
  mask: number,
  toFind: number,
  start: number,
  perFilter: Int32Array,
  reasons: Map<FilterReason, number>,
): { found: number; considered: number; top: number } {
  const n = nodes.length;
  const r = req.resources;
  const feasible = feasibleBuffer;
  const totals = totalsBuffer;
  const reuseMask = ranking.reuseMask;
  const memo = new ReusedTotal(req, ranking, ctx);
  let top = -Infinity;
  let found = 0;
  let k = 0;
  for (; k < n && found < toFind; k++) {
    const i = start + k < n ? start + k : start + k - n;
    const node = nodes[i]!;
    let met = reuseMask === 0;
    if (meets(mask, r, node)) {
      // The scorers' conditions are often among the chain's (untainted): then they are met too.
      met ||= (reuseMask & ~mask) === 0 || meets(reuseMask, r, node);
    } else {
      // The conditions are sufficient, not necessary: the filters decide.
      const f = chain.firstFailure(req, node, ctx, reasons);
      if (f >= 0) {
        perFilter[f]!++;
        continue;
      }
      met ||= meets(reuseMask, r, node);
    }
    const t = memo.total(node, met);
    feasible[found] = i;
    totals[found++] = t;
    if (t > top) top = t;
  }
  return { found, considered: k, top };
}

/** Places one request on the nodes (which are not modified). */
export function place(req: PlacementRequest, nodes: readonly NodeView[], profile: Profile, rng: Rng): PlacementResult {
  return placeWith(req, nodes, profile, rng);
}

/** place(), reading the nodes' verdicts and totals from `cache` when it has them. */
export function placeWith(
  req: PlacementRequest,
  nodes: readonly NodeView[],
  profile: Profile,
  rng: Rng,
  cache?: ShapeCache,
): PlacementResult {
  const n = nodes.length;
  if (n === 0) return { explain: { nodesConsidered: 0, rejected: {} }, reason: "no nodes registered" };
  const chain = FilterChain.of(profile, req);
  const ctx = placementContext(req, nodes);
  const toFind = feasibleToFind(profile.sampling, n);
  const tied = tiedBuffer;
  tied.length = 0;
  let top: number;
  let explain: PlacementExplain;
  // A sampled scan depends on where it starts; only a full one is cached.
  const index = cache && toFind === n ? cache.lookup(req, chain, profile, ctx) : undefined;
  if (index && index.best() > -Infinity) {
    top = index.best();
    index.atLeast(top - TIE_EPSILON, tied);
    explain = { nodesConsidered: n, rejected: rejectedByName(chain.filters, index.rejectCounts) };
  } else {
    // (When the cache says nothing fits, the scan names the reasons.)
    const start = toFind < n ? Math.floor(rng.next() * n) % n : 0;
    const s = scan(req, nodes, chain, profile, ctx, toFind, start, tied);
    top = s.top;
    explain = { nodesConsidered: s.considered, rejected: rejectedByName(chain.filters, s.perFilter) };
    if (tied.length === 0) return unfit(req, nodes, profile, ctx, explain, s.reasons);
  }
  const chosen = nodes[breakTie(tied, nodes, rng, cache?.nameHashes())]!;
  explain.scores = scoresOf(req, chosen, profile, ctx, top);
  explain.chosen = chosen.name;
  const hostPorts = assignHostPorts(req, chosen);
  return { nodeName: chosen.name, explain, ...(hostPorts ? { hostPorts } : {}) };
}

/** No node passes the chain: preempt, or say why ("memory: insufficient on 3 of 3 nodes"). */
function unfit(
  req: PlacementRequest,
  nodes: readonly NodeView[],
  profile: Profile,
  ctx: PlacementContext,
  explain: PlacementExplain,
  perReason: ReadonlyMap<FilterReason, number>,
): PlacementResult {
  const pre = preempt(req, nodes, profile, ctx);
  if (!pre) {
    const reasons = new Map<string, number>(); // "memory: insufficient" -> nodes
    for (const [r, count] of perReason) {
      const text = `${r.subject}: ${r.message}`;
      reasons.set(text, (reasons.get(text) ?? 0) + count);
    }
    return { explain, reason: describeRejections(reasons, nodes.length) };
  }
  explain.chosen = pre.node;
  explain.victims = pre.victims;
  const node = nodes.find((v) => v.name === pre.node)!;
  const hostPorts = assignHostPorts(req, withoutIds(node, pre.victims));
  return { nodeName: pre.node, victims: pre.victims, explain, ...(hostPorts ? { hostPorts } : {}) };
}
