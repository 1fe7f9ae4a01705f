// Feasibility: the filter chain. A node is rejected by the first filter it
// fails, in the profile's order; this one chain decides for place()'s scan,
// for the shape cache (which only remembers its answers, shape-index.ts) and
// for preemption (which asks it about a node without its victims).

import { CONDITION_BITS, failedConditions, meets } from "./conditions";
import { appKeyOf, matchesSelector } from "./filters";
import type { Filter, FilterReason, NodeView, PlacementContext, PlacementRequest, Profile, Sampling } from "./types";

/**
 * A request's filter chain: the profile's filters that can reject a node
 * for it, in order. A node is rejected by the first one it fails. The
 * filters' declared conditions (passesWhen) are checked together first: a
 * filter whose condition the node meets passes without being asked, so a
 * node that meets them all is asked only about the filters without one.
 */
/** Chains by profile, then by which of its filters apply (a bit per filter). */
const chains = new WeakMap<Profile, Map<number, FilterChain>>();

export class FilterChain {
  /** The declared conditions, as bits. */
  private readonly mask: number;
  /** Per filter, in order: its declared condition's bit (0: none). */
  private readonly bits: Int32Array;
  /** Whether some filter declares no condition. */
  private readonly undeclared: boolean;

  constructor(readonly filters: readonly Filter[]) {
    this.bits = Int32Array.from(filters, (f) => (f.passesWhen ? CONDITION_BITS[f.passesWhen] : 0));
    this.mask = this.bits.reduce((m, b) => m | b, 0);
    this.undeclared = this.bits.includes(0);
  }

  /**
   * The declared conditions when every filter of the chain declares one, else 0: a node that
   * meets them passes the whole chain (place()'s fused scan checks them inline).
   */
  get inlineMask(): number {
    return this.undeclared ? 0 : this.mask;
  }

  /** The chain of the profile's filters that apply to this request (one per profile and set of filters). */
  static of(profile: Profile, req: PlacementRequest): FilterChain {
    const filters = profile.filters;
    if (filters.length > 30) return new FilterChain(filters.filter((f) => !f.applies || f.applies(req)));
    let key = 0;
    for (let f = 0; f < filters.length; f++) {
      const applies = filters[f]!.applies;
      if (!applies || applies(req)) key |= 1 << f;
    }
    let byKey = chains.get(profile);
    if (!byKey) chains.set(profile, (byKey = new Map()));
    let chain = byKey.get(key);
    if (!chain) byKey.set(key, (chain = new FilterChain(filters.filter((_, f) => (key & (1 << f)) !== 0))));
    return chain;
  }

  /**
   * The index of the first filter that rejects the node, or -1 when it
   * passes them all. With `reasons`, the rejection's reason is counted there.
   * A filter whose declared condition the node meets passes (the condition is
   * sufficient) and is not asked.
   */
  firstFailure(req: PlacementRequest, node: NodeView, ctx: PlacementContext, reasons?: ReasonCounts): number {
    const { filters, bits } = this;
    const failed = this.mask === 0 ? 0 : failedConditions(this.mask, req.resources, node);
    for (let f = 0; f < filters.length; f++) {
      const b = bits[f]!;
      if (b !== 0 && (failed & b) === 0) continue;
      const verdict = filters[f]!.check(req, node, ctx);
      if (!verdict.fit) {
        reasons?.add(verdict.reason);
        return f;
      }
    }
    return -1;
  }

  /**
   * Runs the chain over the nodes from `start` on (wrapping) until `toFind`
   * passed: their indices go to `feasible`, each rejection to `perFilter`
   * (by filter index) and `reasons`. Returns how many passed and how many
   * nodes were looked at. (firstFailure() over a list, in one tight loop.)
   */
  filter(
    req: PlacementRequest,
    nodes: readonly NodeView[],
    ctx: PlacementContext,
    start: number,
    toFind: number,
    feasible: Int32Array,
    perFilter: Int32Array,
    reasons: ReasonCounts,
  ): { found: number; considered: number } {
    const n = nodes.length;
    const { mask, undeclared } = this;
    const r = req.resources;
    let found = 0;
    let k = 0;
    for (; k < n && found < toFind; k++) {
      const i = start + k < n ? start + k : start + k - n;
      const node = nodes[i]!;
      // The common case, without a call: the node meets every declared condition and no other filter applies.
      const f = !undeclared && mask !== 0 && meets(mask, r, node) ? -1 : this.firstFailure(req, node, ctx, reasons);
      if (f >= 0) perFilter[f]!++;
      else feasible[found++] = i;
    }
    return { found, considered: k };
  }
}

/**
 * Rejections per reason, in the order the reasons were first seen. Reasons are
 * often shared constants and a scan meets them in runs (every full node: "cpu:
 * insufficient"), so a run is counted before the map is touched.
 */
export class ReasonCounts {
  private readonly counts = new Map<FilterReason, number>();
  private last: FilterReason | undefined;
  private run = 0;

  add(reason: FilterReason): void {
    if (reason === this.last) {
      this.run++;
      return;
    }
    this.flush();
    this.last = reason;
    this.run = 1;
  }

  /** The counts so far. */
  done(): Map<FilterReason, number> {
    this.flush();
    return this.counts;
  }

  private flush(): void {
    const last = this.last;
    if (last === undefined) return;
    this.counts.set(last, (this.counts.get(last) ?? 0) + this.run);
    this.last = undefined;
    this.run = 0;
  }
}

/** The lazily computed cluster facts for one request. */
export function placementContext(req: PlacementRequest, nodes: readonly NodeView[]): PlacementContext {
  const cache = new Map<string, Map<string, number>>();
  return {
    nodes,
    domainCounts(topologyKey: string) {
      let counts = cache.get(topologyKey);
      if (counts) return counts;
      counts = new Map();
      const key = appKeyOf(req);
      for (const n of nodes) {
        const domain = n.labels[topologyKey];
        // A node that is not Ready or cordoned is no domain: its instances are Unknown or
        // being drained, and counting them would keep their replacements out of the others.
        if (domain === undefined || !n.ready || n.unschedulable || !matchesSelector(req, n)) continue;
        counts.set(domain, (counts.get(domain) ?? 0) + (n.appCounts?.get(key) ?? 0));
      }
      cache.set(topologyKey, counts);
      return counts;
    },
  };
}

/**
 * How many feasible nodes to find before scoring, for N nodes.
 * Kubernetes: percentageOfNodesToScore (adaptive 50% - N/125, at least 5%), at
 * least 100 nodes. Nomad: max(2, ceil(log2 N)).
 */
export function feasibleToFind(sampling: Sampling | undefined, n: number): number {
  if (!sampling || n < (sampling.minNodes ?? 100)) return n;
  if (sampling.mode === "log2") return Math.min(n, Math.max(2, Math.ceil(Math.log2(n))));
  let pct = sampling.percentage ?? 0;
  if (pct <= 0) pct = Math.max(5, 50 - n / 125);
  if (pct >= 100) return n;
  return Math.min(n, Math.max(100, Math.floor((n * pct) / 100)));
}

/**
 * "cpu: insufficient on 2 of 3 nodes; node-ready: not ready on 1 of 3 nodes":
 * most rejections first, then in the order the reasons were first seen.
 */
export function describeRejections(reasons: ReadonlyMap<string, number>, nodesConsidered: number): string {
  return [...reasons.entries()]
    .map(([text, count], order) => ({ text, count, order }))
    .sort((a, b) => b.count - a.count || a.order - b.order)
    .map((r) => `${r.text} on ${r.count} of ${nodesConsidered} nodes`)
    .join("; ");
}

/** Per-filter rejection counts by filter name (explain.rejected). */
export function rejectedByName(filters: readonly Filter[], counts: ArrayLike<number>): Record<string, number> {
  const rejected: Record<string, number> = {};
  for (let f = 0; f < filters.length; f++) {
    const count = counts[f]!;
    if (count > 0) rejected[filters[f]!.name] = (rejected[filters[f]!.name] ?? 0) + count;
  }
  return rejected;
}
