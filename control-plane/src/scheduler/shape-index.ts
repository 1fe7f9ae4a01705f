// The shape cache: place()'s filter chain and scorers, remembered per
// request "shape" (resources, host ports, placement rules, and the App when a
// filter or scorer reads it). Requests of one shape get the same verdict and
// total on a node whose state did not change, as in Borg's per-equivalence-
// class score cache, Kubernetes' old equivalence cache and Nomad's
// FeasibilityWrapper (one wrapper in the chain, not a second chain). A
// ShapeIndex keeps, per node, the index of the first filter that rejects it
// (or -1; feasibility.ts's firstFailure decides) and its total (rank.ts), with
// a max-tree over the totals; after a bind or an evict only the changed node
// is evaluated again. place() then reads the best total and the nodes within
// TIE_EPSILON of it off the tree and breaks the tie as it does after a scan.
// Whether a request has a shape is declared by the plugins (`scope`,
// `readsApp`): any filter or scorer of scope "cluster" turns the cache off
// for it. `shape-index.test.ts` checks the cached answer equals the scan's on
// random clusters.
import type { FilterChain } from "./feasibility";
import { appKeyOf } from "./filters";
import { meets } from "./conditions";
import { nodeTotal, rankingOf, sameAmounts, type Ranking } from "./rank";
import type { Filter, NodeView, PlacementContext, PlacementRequest, Profile } from "./types";

const profileIds = new WeakMap<Profile, number>();
let nextProfileId = 0;

/**
 * The equivalence class of a request under a profile (given its applicable
 * filters), or undefined when a filter or scorer looks beyond the node
 * (scope "cluster", e.g. topology spread): such requests are always scanned.
 */
export function shapeKey(req: PlacementRequest, filters: readonly Filter[], profile: Profile): string | undefined {
  let readsApp = false;
  for (const f of filters) {
    if (f.scope !== "node") return undefined;
    if (f.readsApp) readsApp = true;
  }
  for (const s of profile.scorers) {
    if (s.scope !== "node") return undefined;
    if (s.readsApp) readsApp = true;
  }
  let id = profileIds.get(profile);
  if (id === undefined) profileIds.set(profile, (id = nextProfileId++));
  const r = req.resources;
  let key = `${id}|${r.cpuMillis},${r.memoryBytes},${r.pids},${r.diskBytes ?? ""}`;
  if (req.hostPorts && req.hostPorts.length > 0) key += `|p${req.hostPorts.join(",")}`;
  const dyn = req.dynamicHostPorts;
  if (dyn && dyn.count > 0) key += `|d${dyn.count}:${dyn.range.first}-${dyn.range.last}`;
  if (req.placement) key += `|${JSON.stringify(req.placement)}`;
  if (readsApp) key += `|a${appKeyOf(req)}`;
  return key;
}

export class ShapeIndex {
  /** Per node: the index of the first filter that rejects it, -1 when feasible. */
  private readonly reject: Int16Array;
  /** Per filter: how many nodes it rejects (first failure). */
  readonly rejectCounts: Int32Array;
  /** Max-tree over the feasible nodes' totals (-Infinity elsewhere); node i's leaf is size + i. */
  private readonly tree: Float64Array;
  private readonly size: number;
  /** The depth-first walk's stack (at most one pending sibling per level). */
  private readonly stack = new Int32Array(64);
  private readonly ranking: Ranking;
  /** Position in the working set's change log up to which this index is current. */
  seen = 0;

  constructor(
    readonly chain: FilterChain,
    profile: Profile,
    private readonly n: number,
  ) {
    let size = 1;
    while (size < n) size *= 2;
    this.size = size;
    this.reject = new Int16Array(n);
    this.rejectCounts = new Int32Array(chain.filters.length);
    this.tree = new Float64Array(2 * size).fill(-Infinity);
    this.ranking = rankingOf(profile);
  }

  /** Evaluates every node from scratch. */
  build(req: PlacementRequest, nodes: readonly NodeView[], ctx: PlacementContext): void {
    this.rejectCounts.fill(0);
    const { tree, size, ranking, chain } = this;
    const r = req.resources;
    // As place()'s fused scan: the chain's conditions inline when they are the whole chain, and
    // a node of the same amounts as the last one scored gets its total (Ranking.reuse).
    const mask = chain.inlineMask;
    const reuse = ranking.reuse;
    const reuseMask = ranking.reuseMask;
    let last: NodeView | undefined;
    let lastTotal = 0;
    for (let i = 0; i < this.n; i++) {
      const node = nodes[i]!;
      const f = mask !== 0 && meets(mask, r, node) ? -1 : chain.firstFailure(req, node, ctx);
      this.reject[i] = f;
      if (f >= 0) {
        this.rejectCounts[f]!++;
        tree[size + i] = -Infinity;
        continue;
      }
      const met = reuse && (reuseMask === 0 || meets(reuseMask, r, node));
      if (met && last !== undefined && sameAmounts(node, last)) {
        tree[size + i] = lastTotal;
      } else {
        const t = nodeTotal(req, node, ranking, ctx);
        tree[size + i] = t;
        last = met ? node : undefined;
        lastTotal = t;
      }
    }
    for (let k = size - 1; k >= 1; k--) {
      const a = tree[2 * k]!;
      const b = tree[2 * k + 1]!;
      tree[k] = a > b ? a : b;
    }
  }

  /** Evaluates node i again (it changed). */
  update(i: number, req: PlacementRequest, node: NodeView, ctx: PlacementContext): void {
    const old = this.reject[i]!;
    if (old >= 0) this.rejectCounts[old]!--;
    const f = this.chain.firstFailure(req, node, ctx);
    this.reject[i] = f;
    if (f >= 0) this.rejectCounts[f]!++;
    const tree = this.tree;
    let k = this.size + i;
    tree[k] = f >= 0 ? -Infinity : nodeTotal(req, node, this.ranking, ctx);
    for (k >>= 1; k >= 1; k >>= 1) {
      const a = tree[2 * k]!;
      const b = tree[2 * k + 1]!;
      const m = a > b ? a : b;
      if (tree[k] === m) break; // ancestors are unchanged
      tree[k] = m;
    }
  }

  /** The best total (-Infinity when no node fits). */
  best(): number {
    return this.tree[1]!;
  }

  /** Writes the indices of the nodes whose total is at least `threshold` to `out`, ascending; returns how many. */
  atLeast(threshold: number, out: Int32Array): number {
    const { tree, size, stack } = this;
    let count = 0;
    let sp = 0;
    stack[sp++] = 1;
    while (sp > 0) {
      const k = stack[--sp]!;
      if (tree[k]! < threshold) continue;
      if (k >= size) {
        out[count++] = k - size;
        continue;
      }
      stack[sp++] = 2 * k + 1;
      stack[sp++] = 2 * k; // left first: ascending
    }
    return count;
  }
}
