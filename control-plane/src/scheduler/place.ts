// place(): filter the nodes, score the survivors, pick the best (seeded rng
// breaks exact ties), and record why, so "Pending" always has an answer.
// When nothing fits, a higher-priority request may preempt lower-priority
// instances on one node (preempt()).

import type { PlacementExplain, Resources } from "@grove/api";
import { appKeyOf, matchesSelector, RESOURCE_KEYS } from "./filters";
import { defaultProfile, DEFAULT_PROFILE } from "./profiles";
import { seededRng } from "./rng";
import { shapeKey, ShapeIndex } from "./shape-index";
import {
  breakTie,
  fusedFits,
  fusedFor,
  mixKey,
  nameHash,
  tieDraw,
  nodeTotal,
  scoresOf,
  TIE_EPSILON,
  totalWeightOf,
} from "./rank";
import type {
  Filter,
  FilterReason,
  NodeView,
  PlacedInstance,
  PlacementContext,
  PlacementRequest,
  PlacementResult,
  Profile,
  Rng,
  Sampling,
} from "./types";

export { DEFAULT_PROFILE, defaultProfile };

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

function firstFailure(
  filters: readonly Filter[],
  req: PlacementRequest,
  node: NodeView,
  ctx: PlacementContext,
): { filter: string; reason: FilterReason } | undefined {
  for (const filter of filters) {
    const verdict = filter.check(req, node, ctx);
    if (!verdict.fit) return { filter: filter.name, reason: verdict.reason };
  }
  return undefined;
}

interface Scored {
  node: NodeView;
  total: number;
  scores: Record<string, number>;
}

let totalsBuffer = new Float64Array(1024);

function scoreNodes(
  req: PlacementRequest,
  feasible: readonly NodeView[],
  profile: Profile,
  ctx: PlacementContext,
  rng: Rng,
  sampled: boolean,
): Scored {
  const totalWeight = totalWeightOf(profile);
  const scorers = profile.scorers;
  if (sampled) {
    // Sampled candidates depend on the scan's start anyway: a uniform pick
    // among the ties (reservoir) is enough and cheaper.
    let bestNode: NodeView | undefined;
    let top = -Infinity;
    let ties = 0;
    for (const node of feasible) {
      const total = nodeTotal(req, node, scorers, totalWeight, ctx);
      if (total > top + TIE_EPSILON) {
        bestNode = node;
        top = total;
        ties = 1;
      } else if (total >= top - TIE_EPSILON) {
        ties++;
        if (rng.next() * ties < 1) bestNode = node;
      }
    }
    return { node: bestNode!, total: top, scores: scoresOf(req, bestNode!, profile, ctx, top) };
  }
  // Two passes: the best total, then every node within TIE_EPSILON of it.
  // (WorkingSet.place's cached path computes the same set from its index.)
  const n = feasible.length;
  if (totalsBuffer.length < n) totalsBuffer = new Float64Array(Math.max(n, 2 * totalsBuffer.length));
  const totals = totalsBuffer;
  let top = -Infinity;
  for (let i = 0; i < n; i++) {
    const t = nodeTotal(req, feasible[i]!, scorers, totalWeight, ctx);
    totals[i] = t;
    if (t > top) top = t;
  }
  const tied: NodeView[] = [];
  for (let i = 0; i < n; i++) if (totals[i]! >= top - TIE_EPSILON) tied.push(feasible[i]!);
  const chosen = breakTie(tied, rng);
  return { node: chosen, total: top, scores: scoresOf(req, chosen, profile, ctx, top) };
}

export function place(req: PlacementRequest, nodes: readonly NodeView[], profile: Profile, rng: Rng): PlacementResult {
  const n = nodes.length;
  if (n === 0) return { explain: { nodesConsidered: 0, rejected: {} }, reason: "no nodes registered" };
  const feasible: NodeView[] = [];
  const ctx = placementContext(req, nodes);
  const filters = profile.filters.filter((f) => !f.applies || f.applies(req));
  const nf = filters.length;
  // The common case (only readiness, cpu/memory/pids fit and taints apply):
  // one inlined check per node (taints only on a node that has some); the
  // filter chain runs only to name a rejection.
  const fused = fusedFor(filters);
  const r = req.resources;
  const perFilter = new Array<number>(nf).fill(0);
  const perReason = new Map<FilterReason, number>(); // reasons are often shared constants
  const toFind = feasibleToFind(profile.sampling, n);
  const start = toFind < n ? Math.floor(rng.next() * n) % n : 0;

  // Feasibility: a node is rejected by the first filter it fails. With
  // sampling, stop once enough feasible nodes were found.
  let considered = 0;
  for (let i = 0; i < n && feasible.length < toFind; i++) {
    const node = nodes[start + i < n ? start + i : start + i - n]!;
    considered++;
    if (fused && fusedFits(r, node)) {
      feasible.push(node);
      continue;
    }
    let f = 0;
    for (; f < nf; f++) {
      const verdict = filters[f]!.check(req, node, ctx);
      if (!verdict.fit) {
        perFilter[f]!++;
        perReason.set(verdict.reason, (perReason.get(verdict.reason) ?? 0) + 1);
        break;
      }
    }
    if (f === nf) feasible.push(node);
  }
  const rejected: Record<string, number> = {};
  perFilter.forEach((count, f) => {
    if (count > 0) rejected[filters[f]!.name] = (rejected[filters[f]!.name] ?? 0) + count;
  });
  const reasons = new Map<string, number>(); // "memory: insufficient" -> nodes
  for (const [r, count] of perReason) {
    const text = `${r.subject}: ${r.message}`;
    reasons.set(text, (reasons.get(text) ?? 0) + count);
  }

  const explain: PlacementExplain = { nodesConsidered: considered, rejected };
  if (feasible.length === 0) {
    const pre = preempt(req, nodes, profile, ctx);
    if (!pre) return { explain, reason: describeRejections(reasons, n) };
    explain.chosen = pre.node;
    explain.victims = pre.victims;
    return { nodeName: pre.node, victims: pre.victims, explain };
  }

  const chosen = scoreNodes(req, feasible, profile, ctx, rng, toFind < n);
  explain.scores = chosen.scores;
  explain.chosen = chosen.node.name;
  return { nodeName: chosen.node.name, explain };
}

export function zeroResources(): Resources {
  return { cpuMillis: 0, memoryBytes: 0, pids: 0 };
}

export function subtractResources(a: Resources, b: Resources): Resources {
  const out: Resources = {
    cpuMillis: a.cpuMillis - b.cpuMillis,
    memoryBytes: a.memoryBytes - b.memoryBytes,
    pids: a.pids - b.pids,
  };
  if (a.diskBytes !== undefined || b.diskBytes !== undefined) out.diskBytes = (a.diskBytes ?? 0) - (b.diskBytes ?? 0);
  return out;
}

export function addResources(a: Resources, b: Resources): Resources {
  const out: Resources = {
    cpuMillis: a.cpuMillis + b.cpuMillis,
    memoryBytes: a.memoryBytes + b.memoryBytes,
    pids: a.pids + b.pids,
  };
  if (a.diskBytes !== undefined || b.diskBytes !== undefined) out.diskBytes = (a.diskBytes ?? 0) + (b.diskBytes ?? 0);
  return out;
}

/** The node as it would be without these instances. */
export function withoutInstances(node: NodeView, victims: readonly PlacedInstance[]): NodeView {
  if (victims.length === 0) return node;
  const gone = new Set(victims.map((v) => v.id));
  let allocated = node.allocated;
  const appCounts = new Map(node.appCounts ?? []);
  let ports: Set<number> | undefined;
  for (const v of victims) {
    allocated = subtractResources(allocated, v.resources);
    appCounts.set(v.appKey, Math.max(0, (appCounts.get(v.appKey) ?? 0) - 1));
    if (v.hostPorts && node.usedHostPorts) {
      ports ??= new Set(node.usedHostPorts);
      for (const p of v.hostPorts) ports.delete(p);
    }
  }
  return {
    ...node,
    allocated,
    appCounts,
    instances: (node.instances ?? []).filter((i) => !gone.has(i.id)),
    ...(ports ? { usedHostPorts: ports } : {}),
  };
}

function size(node: NodeView, r: Resources): number {
  let s = 0;
  for (const k of RESOURCE_KEYS) {
    const cap = node.allocatable[k];
    if (cap && cap > 0) s += (r[k] ?? 0) / cap;
  }
  return s;
}

/**
 * Preemption: the smallest set of strictly lower-priority instances on one
 * node whose eviction lets the request pass every filter. Victims are taken
 * lowest priority first (largest first within a priority), then any victim
 * the request still fits without is spared (Kubernetes' "reprieve"). Among
 * nodes: fewest victims, then the lowest highest-victim priority, then name.
 */
export function preempt(
  req: PlacementRequest,
  nodes: readonly NodeView[],
  profile: Profile,
  ctx: PlacementContext,
): { node: string; victims: string[] } | undefined {
  const prio = req.priority ?? 0;
  let best: { node: string; victims: PlacedInstance[]; maxPrio: number } | undefined;
  for (const node of nodes) {
    const lower = (node.instances ?? []).filter((i) => i.priority < prio);
    if (lower.length === 0) continue;
    if (firstFailure(profile.filters, req, withoutInstances(node, lower), ctx)) continue;
    const order = [...lower].sort(
      (a, b) =>
        a.priority - b.priority ||
        size(node, b.resources) - size(node, a.resources) ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    let victims: PlacedInstance[] = [];
    for (const v of order) {
      if (!firstFailure(profile.filters, req, withoutInstances(node, victims), ctx)) break;
      victims.push(v);
    }
    // Reprieve: spare the most important victims the request fits without.
    for (const v of [...victims].sort((a, b) => b.priority - a.priority)) {
      const rest = victims.filter((x) => x !== v);
      if (!firstFailure(profile.filters, req, withoutInstances(node, rest), ctx)) victims = rest;
    }
    const maxPrio = Math.max(...victims.map((v) => v.priority));
    if (
      !best ||
      victims.length < best.victims.length ||
      (victims.length === best.victims.length && maxPrio < best.maxPrio)
    ) {
      best = { node: node.name, victims, maxPrio };
    }
  }
  return best && { node: best.node, victims: best.victims.map((v) => v.id).sort() };
}

/** Most shape indexes a working set keeps (about 2^19 node entries in all, 16..128). */
function shapeCap(n: number): number {
  return Math.max(16, Math.min(128, Math.floor(2 ** 19 / Math.max(1, n))));
}

/**
 * A mutable working copy of the nodes for a batch; copies a node's maps the
 * first time it changes. Change the nodes only through bind() and evict():
 * place() caches verdicts and scores per request shape and re-evaluates only
 * the nodes those two touched.
 */
export class WorkingSet {
  readonly nodes: NodeView[];
  private readonly index = new Map<string, number>();
  private readonly owned = new Set<number>();
  /** Indices of changed nodes, in order; log[0] is change number logBase. */
  private log: number[] = [];
  private logBase = 0;
  /** Shape indexes, least recently used first. */
  private readonly shapes = new Map<string, ShapeIndex>();
  /** Shapes seen once (an index is built on the second request of a shape). */
  private readonly sightings = new Set<string>();
  private readonly tied: number[] = [];

  constructor(nodes: readonly NodeView[]) {
    // One object shape for every node keeps the hot loop's property reads monomorphic.
    this.nodes = nodes.map((n) => ({
      name: n.name,
      ready: n.ready,
      unschedulable: n.unschedulable,
      allocatable: n.allocatable,
      allocated: n.allocated,
      labels: n.labels,
      usedHostPorts: n.usedHostPorts,
      taints: n.taints,
      appCounts: n.appCounts,
      instances: n.instances,
    }));
    this.nodes.forEach((n, i) => this.index.set(n.name, i));
  }

  /**
   * place() on these nodes, with the same answer (node, explain, rng draws),
   * faster for repeated request shapes: without sampling and when every
   * applicable filter and scorer looks only at the request and the node, the
   * verdicts and scores are cached per shape (shape-index.ts).
   */
  place(req: PlacementRequest, profile: Profile, rng: Rng): PlacementResult {
    const nodes = this.nodes;
    const n = nodes.length;
    if (n === 0 || feasibleToFind(profile.sampling, n) < n) return place(req, nodes, profile, rng);
    const filters = profile.filters.filter((f) => !f.applies || f.applies(req));
    const key = shapeKey(req, filters, profile);
    if (key === undefined) return place(req, nodes, profile, rng);
    const ctx = placementContext(req, nodes);
    let shape = this.shapes.get(key);
    const end = this.logBase + this.log.length;
    if (shape === undefined) {
      if (!this.sightings.has(key)) {
        if (this.sightings.size >= 4096) this.sightings.clear();
        this.sightings.add(key);
        return place(req, nodes, profile, rng);
      }
      this.sightings.delete(key);
      if (this.shapes.size >= shapeCap(n)) this.shapes.delete(this.shapes.keys().next().value!);
      shape = new ShapeIndex(filters, profile, n);
      shape.build(req, nodes, ctx);
    } else {
      this.shapes.delete(key); // re-inserted below: most recently used last
      if (shape.seen < this.logBase || end - shape.seen > n / 2) {
        shape.build(req, nodes, ctx);
      } else {
        for (let p = shape.seen; p < end; p++) {
          const i = this.log[p - this.logBase]!;
          shape.update(i, req, nodes[i]!, ctx);
        }
      }
    }
    shape.seen = end;
    this.shapes.set(key, shape);

    const top = shape.best();
    // Nothing fits: place() names the reasons and looks for preemption.
    if (top === -Infinity) return place(req, nodes, profile, rng);
    const tied = this.tied;
    tied.length = 0;
    shape.atLeast(top - TIE_EPSILON, tied);
    // breakTie() over the tied nodes, with the names' hashes cached per index.
    let best = tied[0]!;
    if (tied.length > 1) {
      const hashes = this.nameHashes();
      const draw = tieDraw(rng);
      let bestKey = mixKey(hashes[best]!, draw);
      for (let t = 1; t < tied.length; t++) {
        const i = tied[t]!;
        const k = mixKey(hashes[i]!, draw);
        if (k < bestKey || (k === bestKey && nodes[i]!.name < nodes[best]!.name)) {
          best = i;
          bestKey = k;
        }
      }
    }
    const chosen = nodes[best]!;
    const rejected: Record<string, number> = {};
    shape.rejectCounts.forEach((count, f) => {
      if (count > 0) rejected[filters[f]!.name] = (rejected[filters[f]!.name] ?? 0) + count;
    });
    const explain: PlacementExplain = { nodesConsidered: n, rejected };
    explain.scores = scoresOf(req, chosen, profile, ctx, top);
    explain.chosen = chosen.name;
    return { nodeName: chosen.name, explain };
  }

  private hashes: Uint32Array | undefined;
  private nameHashes(): Uint32Array {
    if (!this.hashes) this.hashes = Uint32Array.from(this.nodes, (node) => nameHash(node.name));
    return this.hashes;
  }

  private changed(i: number): void {
    this.log.push(i);
    if (this.log.length > 4 * this.nodes.length + 1024) {
      // Indexes further behind than this rebuild anyway.
      this.logBase += this.log.length;
      this.log = [];
    }
  }

  get(name: string): NodeView | undefined {
    const i = this.index.get(name);
    return i === undefined ? undefined : this.nodes[i];
  }

  private own(name: string): NodeView & { appCounts: Map<string, number> } {
    const i = this.index.get(name)!;
    let node = this.nodes[i]!;
    if (!this.owned.has(i)) {
      node = {
        name: node.name,
        ready: node.ready,
        unschedulable: node.unschedulable,
        allocatable: node.allocatable,
        allocated: { ...node.allocated },
        labels: node.labels,
        usedHostPorts: node.usedHostPorts ? new Set(node.usedHostPorts) : undefined,
        taints: node.taints,
        appCounts: new Map(node.appCounts ?? []),
        instances: [...(node.instances ?? [])],
      };
      this.nodes[i] = node;
      this.owned.add(i);
    }
    return node as NodeView & { appCounts: Map<string, number> };
  }

  /** Books a placed request on its node. */
  bind(req: PlacementRequest, nodeName: string): void {
    const node = this.own(nodeName);
    this.changed(this.index.get(nodeName)!);
    node.allocated = addResources(node.allocated, req.resources);
    const key = appKeyOf(req);
    node.appCounts.set(key, (node.appCounts.get(key) ?? 0) + 1);
    if (req.hostPorts && req.hostPorts.length > 0) {
      const ports = new Set(node.usedHostPorts ?? []);
      for (const p of req.hostPorts) ports.add(p);
      node.usedHostPorts = ports;
    }
    const placed: PlacedInstance = {
      id: req.id,
      appKey: key,
      priority: req.priority ?? 0,
      resources: req.resources,
      ...(req.hostPorts ? { hostPorts: req.hostPorts } : {}),
    };
    (node.instances as PlacedInstance[]).push(placed);
  }

  /** Removes preempted instances from their node. */
  evict(nodeName: string, ids: readonly string[]): void {
    const node = this.get(nodeName);
    if (!node) return;
    const gone = (node.instances ?? []).filter((i) => ids.includes(i.id));
    const i = this.index.get(nodeName)!;
    this.nodes[i] = withoutInstances(this.own(nodeName), gone);
    this.changed(i);
  }
}

/**
 * In placeBatch's second plan, instances that need at least this share of a
 * node (in cpu or memory, of the largest ready node) go first, largest first.
 * Chosen with grove-sim on workload seeds other than the reported ones
 * (docs/scheduling.md, "Batch placement").
 */
export const LARGE_FIRST_SHARE = 1 / 8;

function placeInOrder(
  reqs: readonly PlacementRequest[],
  order: readonly number[],
  nodes: readonly NodeView[],
  profile: Profile,
  rng: Rng,
): { results: PlacementResult[]; left: number } {
  const working = new WorkingSet(nodes);
  const results = new Array<PlacementResult>(reqs.length);
  let left = 0;
  for (const i of order) {
    const req = reqs[i]!;
    const result = working.place(req, profile, rng);
    if (result.nodeName !== undefined) {
      if (result.victims) {
        working.evict(result.nodeName, result.victims);
        left += result.victims.length; // they are Pending again
      }
      working.bind(req, result.nodeName);
    } else {
      left++;
    }
    results[i] = result;
  }
  return { results, left };
}

/**
 * The largest-first order of a batch: by priority, then the instances that
 * need at least LARGE_FIRST_SHARE of a node by their dominant share,
 * descending, then the rest in input order. Undefined when it is the input
 * order anyway.
 */
export function largeFirstOrder(
  reqs: readonly PlacementRequest[],
  nodes: readonly NodeView[],
  byPriority: readonly number[],
): number[] | undefined {
  let cpu = 0;
  let memory = 0;
  for (const n of nodes) {
    if (!n.ready || n.unschedulable) continue;
    if (n.allocatable.cpuMillis > cpu) cpu = n.allocatable.cpuMillis;
    if (n.allocatable.memoryBytes > memory) memory = n.allocatable.memoryBytes;
  }
  if (cpu <= 0 || memory <= 0) return undefined;
  const share = reqs.map((r) => {
    const d = Math.max(r.resources.cpuMillis / cpu, r.resources.memoryBytes / memory);
    return d >= LARGE_FIRST_SHARE ? d : 0;
  });
  const rank = new Array<number>(reqs.length);
  byPriority.forEach((i, k) => (rank[i] = k));
  const order = [...byPriority].sort(
    (a, b) => (reqs[b]!.priority ?? 0) - (reqs[a]!.priority ?? 0) || share[b]! - share[a]! || rank[a]! - rank[b]!,
  );
  return order.some((i, k) => i !== byPriority[k]) ? order : undefined;
}

/**
 * Places requests in one pass; each placement is booked on its node (resources,
 * ports, the App's instance count, so spread and anti-affinity hold between
 * the batch's own instances) before the next is placed. Higher priority goes
 * first; equal priorities keep their order. When that leaves instances
 * Pending (unplaced or preempted), a second plan places the large instances
 * first (largeFirstOrder) and is kept if it leaves fewer Pending: a one-step
 * lookahead, as bin-packers retry first-fit-decreasing. Results are in input
 * order. The input nodes are not modified.
 */
export function placeBatch(
  reqs: readonly PlacementRequest[],
  nodes: readonly NodeView[],
  profile: Profile,
  rng: Rng,
): PlacementResult[] {
  const order = reqs.map((_, i) => i);
  if (reqs.some((r) => (r.priority ?? 0) !== 0)) {
    order.sort((a, b) => (reqs[b]!.priority ?? 0) - (reqs[a]!.priority ?? 0) || a - b);
  }
  const first = placeInOrder(reqs, order, nodes, profile, rng);
  if (first.left === 0) return first.results;
  const alt = largeFirstOrder(reqs, nodes, order);
  if (!alt) return first.results;
  const second = placeInOrder(reqs, alt, nodes, profile, seededRng(tieDraw(rng)));
  return second.left < first.left ? second.results : first.results;
}
