// The equivalence cache behind WorkingSet.place(): requests of the same
// "shape" (resources, host ports, placement rules, and the App when a filter
// or scorer reads it) get the same verdict and score on a node whose state did
// not change, as in Borg's per-equivalence-class score cache and Kubernetes'
// old equivalence cache. A ShapeIndex keeps, per node, the first filter that
// rejects it (or -1) and its total, with a max-tree over the totals; after a
// bind or an evict only the changed node is evaluated again. The winner is
// then read off the tree: the best total and every node within TIE_EPSILON of
// it, broken by the same seeded key as place(). The answer is place()'s by
// construction; `place.test.ts` checks it on random clusters.
import { antiAffinityFilter, appKeyOf, DEFAULT_FILTERS, spreadFilter } from "./filters";
import { fusedFits, fusedFor, nodeTotal, totalWeightOf } from "./rank";
import { BUILTIN_SCORERS, diego } from "./scorers";
import { DENSITY_SCORERS } from "./scorers-density";
import type { Filter, NodeView, PlacementContext, PlacementRequest, Profile, Scorer } from "./types";

/**
 * Filters whose verdict on a node depends only on the request and that node:
 * every built-in one but topology spread (which counts other nodes).
 */
const NODE_LOCAL_FILTERS: ReadonlySet<Filter> = new Set(DEFAULT_FILTERS.filter((f) => f !== spreadFilter));
/** Scorers whose score depends only on the request and the node: every built-in one. */
const NODE_LOCAL_SCORERS: ReadonlySet<Scorer> = new Set([...BUILTIN_SCORERS, ...DENSITY_SCORERS]);
/** Filters and scorers that read the request's App (its instances on the node). */
const APP_READERS: ReadonlySet<Filter | Scorer> = new Set<Filter | Scorer>([antiAffinityFilter, diego]);

const profileIds = new WeakMap<Profile, number>();
let nextProfileId = 0;

/**
 * The equivalence class of a request under a profile, or undefined when a
 * filter or scorer looks beyond the node (topology spread, unknown plugins):
 * such requests always take the plain path.
 */
export function shapeKey(req: PlacementRequest, filters: readonly Filter[], profile: Profile): string | undefined {
  let readsApp = false;
  for (const f of filters) {
    if (!NODE_LOCAL_FILTERS.has(f)) return undefined;
    if (APP_READERS.has(f)) readsApp = true;
  }
  for (const s of profile.scorers) {
    if (!NODE_LOCAL_SCORERS.has(s)) return undefined;
    if (APP_READERS.has(s)) readsApp = true;
  }
  let id = profileIds.get(profile);
  if (id === undefined) profileIds.set(profile, (id = nextProfileId++));
  const r = req.resources;
  let key = `${id}|${r.cpuMillis},${r.memoryBytes},${r.pids},${r.diskBytes ?? ""}`;
  if (req.hostPorts && req.hostPorts.length > 0) key += `|p${req.hostPorts.join(",")}`;
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
  private readonly fused: boolean;
  private readonly totalWeight: number;
  /** Position in the working set's change log up to which this index is current. */
  seen = 0;

  constructor(
    readonly filters: readonly Filter[],
    private readonly profile: Profile,
    private readonly n: number,
  ) {
    let size = 1;
    while (size < n) size *= 2;
    this.size = size;
    this.reject = new Int16Array(n);
    this.rejectCounts = new Int32Array(filters.length);
    this.tree = new Float64Array(2 * size).fill(-Infinity);
    this.fused = fusedFor(filters);
    this.totalWeight = totalWeightOf(profile);
  }

  /** Evaluates every node from scratch. */
  build(req: PlacementRequest, nodes: readonly NodeView[], ctx: PlacementContext): void {
    this.rejectCounts.fill(0);
    const { tree, size } = this;
    for (let i = 0; i < this.n; i++) {
      const f = this.firstFailure(req, nodes[i]!, ctx);
      this.reject[i] = f;
      if (f >= 0) this.rejectCounts[f]!++;
      tree[size + i] = f >= 0 ? -Infinity : nodeTotal(req, nodes[i]!, this.profile.scorers, this.totalWeight, ctx);
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
    const f = this.firstFailure(req, node, ctx);
    this.reject[i] = f;
    if (f >= 0) this.rejectCounts[f]!++;
    const tree = this.tree;
    let k = this.size + i;
    tree[k] = f >= 0 ? -Infinity : nodeTotal(req, node, this.profile.scorers, this.totalWeight, ctx);
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

  /** Indices of the nodes whose total is at least `threshold`, ascending. */
  atLeast(threshold: number, out: number[]): void {
    const { tree, size, stack } = this;
    let sp = 0;
    stack[sp++] = 1;
    while (sp > 0) {
      const k = stack[--sp]!;
      if (tree[k]! < threshold) continue;
      if (k >= size) {
        out.push(k - size);
        continue;
      }
      stack[sp++] = 2 * k + 1;
      stack[sp++] = 2 * k; // left first: ascending
    }
  }

  private firstFailure(req: PlacementRequest, node: NodeView, ctx: PlacementContext): number {
    if (this.fused && fusedFits(req.resources, node)) return -1;
    const filters = this.filters;
    for (let f = 0; f < filters.length; f++) if (!filters[f]!.check(req, node, ctx).fit) return f;
    return -1;
  }
}
