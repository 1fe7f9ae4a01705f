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
import {
  describeRejections,
  feasibleToFind,
  FilterChain,
  placementContext,
  ReasonCounts,
  rejectedByName,
} from "./feasibility";
import { assignHostPorts } from "./ports";
import { withoutIds, preempt } from "./preempt";
import { defaultProfile, DEFAULT_PROFILE } from "./profiles";
import { meets } from "./conditions";
import { breakTie, nodeTotal, rankingOf, sameAmounts, scoresOf, TIE_EPSILON, totalsOf, type Ranking } from "./rank";
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
  /** How many nodes tie for the best (at the start of `tied`). */
  ties: number;
  /** Per applicable filter: nodes it rejected first. */
  perFilter: Int32Array;
  reasons: Map<FilterReason, number>;
  top: number;
}

// Reused by every call (placement is synchronous and never re-entered).
let tiedBuffer = new Int32Array(1024);
let totalsBuffer = new Float64Array(1024);
let feasibleBuffer = new Int32Array(1024);

/**
 * Runs the chain on the nodes from `start` on (wrapping), stopping once
 * `toFind` feasible nodes were found (candidate sampling), scores the
 * feasible ones and writes the indices within TIE_EPSILON of the best to `tied`.
 */
function scan(
  req: PlacementRequest,
  nodes: readonly NodeView[],
  chain: FilterChain,
  profile: Profile,
  ctx: PlacementContext,
  toFind: number,
  start: number,
  tied: Int32Array,
): Scan {
  const ranking = rankingOf(profile);
  const perFilter = new Int32Array(chain.filters.length);
  const reasons = new ReasonCounts();
  const mask = chain.inlineMask;
  if (mask !== 0 && ranking.reuse) {
    const { considered, top, ties } = filterAndScore(
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
      tied,
    );
    return { considered, ties, perFilter, reasons: reasons.done(), top };
  }
  const totals = totalsBuffer;
  const feasible = feasibleBuffer;
  const { found, considered } = chain.filter(req, nodes, ctx, start, toFind, feasible, perFilter, reasons);
  // Scored in a second loop: two small hot loops optimise better than one.
  const top = totalsOf(req, nodes, feasible, found, ranking, ctx, totals);
  const threshold = top - TIE_EPSILON;
  let ties = 0;
  for (let k = 0; k < found; k++) if (totals[k]! >= threshold) tied[ties++] = feasible[k]!;
  return { considered, ties, perFilter, reasons: reasons.done(), top };
}

/**
 * chain.filter(), totalsOf() and the collection of the ties in one pass over
 * the nodes, for the common case: every filter declares its condition
 * (`mask`, checked inline) and the ranking may reuse the total of a node of
 * equal amounts (Ranking.reuse). Each node is then read once, and a run of
 * equal nodes (a cluster of one machine shape, every empty node) costs little
 * more than the conditions. Writes to `tied` what scan()'s second loop
 * would: the feasible nodes whose total is within TIE_EPSILON of the best,
 * in the order they were looked at. The best only grows, so the threshold
 * (best - TIE_EPSILON) only rises: a node below it now stays below, and a
 * node kept is dropped again (with the totals kept beside the ties) when a
 * better total raises it above its own.
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
  reasons: ReasonCounts,
  tied: Int32Array,
): { considered: number; top: number; ties: number } {
  const n = nodes.length;
  const r = req.resources;
  const tiedTotals = totalsBuffer;
  const reuseMask = ranking.reuseMask;
  // The scorers' conditions are often among the chain's (untainted): then a node that passes meets them too.
  const metWhenPassed = reuseMask === 0 || (reuseMask & ~mask) === 0;
  // ReusedTotal, inline: the last node scored that met every scorer's condition, and its total.
  let last: NodeView | undefined;
  let lastTotal = 0;
  let top = -Infinity;
  let threshold = -Infinity;
  let ties = 0;
  let found = 0;
  let k = 0;
  for (; k < n && found < toFind; k++) {
    const i = start + k < n ? start + k : start + k - n;
    const node = nodes[i]!;
    let met: boolean;
    if (meets(mask, r, node)) {
      met = metWhenPassed || meets(reuseMask, r, node);
    } else {
      // The conditions are sufficient, not necessary: the filters decide.
      const f = chain.firstFailure(req, node, ctx, reasons);
      if (f >= 0) {
        perFilter[f]!++;
        continue;
      }
      met = reuseMask === 0 || meets(reuseMask, r, node);
    }
    found++;
    let t: number;
    if (met && last !== undefined && sameAmounts(node, last)) {
      t = lastTotal;
    } else {
      t = nodeTotal(req, node, ranking, ctx);
      last = met ? node : undefined;
      lastTotal = t;
    }
    if (!(t >= threshold)) continue;
    if (t > top) {
      const below = top < t - TIE_EPSILON; // every node kept so far falls below the new threshold
      top = t;
      threshold = t - TIE_EPSILON;
      if (below) {
        ties = 0;
      } else {
        let kept = 0;
        for (let j = 0; j < ties; j++) {
          if (tiedTotals[j]! >= threshold) {
            tiedTotals[kept] = tiedTotals[j]!;
            tied[kept++] = tied[j]!;
          }
        }
        ties = kept;
      }
    }
    tiedTotals[ties] = t;
    tied[ties++] = i;
  }
  return { considered: k, top, ties };
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
  if (tiedBuffer.length < n) {
    const size = Math.max(n, 2 * tiedBuffer.length);
    tiedBuffer = new Int32Array(size);
    totalsBuffer = new Float64Array(size);
    feasibleBuffer = new Int32Array(size);
  }
  const tied = tiedBuffer;
  let ties: number;
  let top: number;
  let explain: PlacementExplain;
  // A sampled scan depends on where it starts; only a full one is cached.
  const index = cache && toFind === n ? cache.lookup(req, chain, profile, ctx) : undefined;
  if (index && index.best() > -Infinity) {
    top = index.best();
    ties = index.atLeast(top - TIE_EPSILON, tied);
    explain = { nodesConsidered: n, rejected: rejectedByName(chain.filters, index.rejectCounts) };
  } else {
    // (When the cache says nothing fits, the scan names the reasons.)
    const start = toFind < n ? Math.floor(rng.next() * n) % n : 0;
    const s = scan(req, nodes, chain, profile, ctx, toFind, start, tied);
    top = s.top;
    explain = { nodesConsidered: s.considered, rejected: rejectedByName(chain.filters, s.perFilter) };
    ties = s.ties;
    if (ties === 0) return unfit(req, nodes, profile, ctx, explain, s.reasons);
  }
  const chosen = nodes[breakTie(tied, nodes, rng, cache?.nameHashes(), ties)]!;
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
