// Borg-style cell compaction (Verma et al. 2015, section 5.1): the smallest
// cluster, removing nodes, on which the workload still fits when repacked from
// scratch; repeated over seeds (11 by default) and reported at the 90th
// percentile. Each seed shuffles the order the instances arrive in and breaks
// score ties differently. The workload is the set of instances alive at the
// moment of peak demand (for traces with departures) or all of them.
import type { Resources } from "@grove/api";
import { addResources, zeroResources } from "@grove/common";
import {
  mulberry32,
  placeBatch,
  type PlacementRequest,
  type PlacementSpec,
  type Profile,
} from "@grove/control-plane/scheduler";
import { buildNodes, nodeCount, scaled, type ClusterSpec } from "./cluster";
import { lowerBound, percentile } from "./engine";
import type { WorkItem, Workload } from "./workload";

export interface CompactionResult {
  profile: string;
  seeds: number;
  /** Smallest node count per seed (cluster size + 1 when it never fit). */
  perSeed: number[];
  p90: number;
  lb1: number;
  ratioP90: number;
  /** False when the workload did not fit the whole cluster for some seed. */
  fitsAll: boolean;
}

/** The instances alive at the time of peak demand (sum of cpu and memory shares). */
export function peakSet(w: Workload, node: Resources): WorkItem[] {
  const ends = new Map<string, number>();
  for (const it of w.items) if (it.duration !== undefined) ends.set(it.id, it.time + it.duration);
  for (const d of w.departures) ends.set(d.id, Math.min(ends.get(d.id) ?? Infinity, d.time));
  if (ends.size === 0) return w.items;
  const events: Array<{ t: number; d: number; it: WorkItem }> = [];
  for (const it of w.items) {
    const weight = it.resources.cpuMillis / node.cpuMillis + it.resources.memoryBytes / node.memoryBytes;
    events.push({ t: it.time, d: weight, it });
    const end = ends.get(it.id);
    if (end !== undefined) events.push({ t: end, d: -weight, it });
  }
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let cur = 0;
  let best = 0;
  let bestIndex = -1;
  events.forEach((e, i) => {
    cur += e.d;
    if (cur > best + 1e-12) {
      best = cur;
      bestIndex = i;
    }
  });
  const alive = new Set<WorkItem>();
  for (let i = 0; i <= bestIndex; i++) {
    const e = events[i]!;
    if (e.d > 0) alive.add(e.it);
    else alive.delete(e.it);
  }
  return w.items.filter((it) => alive.has(it));
}

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const rng = mulberry32(seed);
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export function fitsOn(
  cluster: ClusterSpec,
  size: number,
  reqs: readonly PlacementRequest[],
  profile: Profile,
  seed: number,
  zones: number,
): boolean {
  const nodes = buildNodes(scaled(cluster, size), zones);
  return placeBatch(reqs, nodes, profile, mulberry32(seed)).every((r) => r.nodeName !== undefined);
}

export function compact(
  cluster: ClusterSpec,
  items: readonly WorkItem[],
  profile: Profile,
  opts: { seeds?: number; baseSeed?: number; zones?: number; placement?: PlacementSpec } = {},
): CompactionResult {
  const seeds = opts.seeds ?? 11;
  const zones = opts.zones ?? 0;
  const total = nodeCount(cluster);
  const all = buildNodes(cluster, zones);
  const demand = items.reduce((s, it) => addResources(s, it.resources), zeroResources());
  const lb1 = lowerBound(demand, all);
  const perSeed: number[] = [];
  let fitsAll = true;
  for (let s = 0; s < seeds; s++) {
    const seed = (opts.baseSeed ?? 1) * 1000 + s;
    const reqs: PlacementRequest[] = shuffled(items, seed).map((it) => ({
      id: it.id,
      app: it.app,
      namespace: "sim",
      resources: it.resources,
      priority: it.priority,
      ...(opts.placement ? { placement: opts.placement } : {}),
    }));
    if (!fitsOn(cluster, total, reqs, profile, seed, zones)) {
      fitsAll = false;
      perSeed.push(total + 1);
      continue;
    }
    // Binary search for the smallest size that fits (heuristics are not
    // strictly monotone in cluster size; this finds a size that fits with
    // one fewer that does not).
    let lo = Math.max(1, Math.min(lb1, total));
    let hi = total;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (fitsOn(cluster, mid, reqs, profile, seed, zones)) hi = mid;
      else lo = mid + 1;
    }
    perSeed.push(hi);
  }
  const p90 = percentile(perSeed, 90);
  return { profile: profile.name, seeds, perSeed, p90, lb1, ratioP90: lb1 > 0 ? p90 / lb1 : 1, fitsAll };
}
