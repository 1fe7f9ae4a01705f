// The event-driven simulation: arrivals and departures over time, each
// arrival placed by the control plane's own placement library and profile.
import { performance } from "node:perf_hooks";
import type { Resources } from "@grove/api";
import {
  mulberry32,
  WorkingSet,
  type NodeView,
  type PlacementRequest,
  type PlacementSpec,
  type Profile,
} from "@grove/control-plane/scheduler";
import { buildNodes, type ClusterSpec } from "./cluster";
import type { WorkItem, Workload } from "./workload";

export interface Sample {
  time: number;
  running: number;
  pending: number;
  nodesUsed: number;
  lb1: number;
  cpu: number;
  memory: number;
}

export interface RunResult {
  profile: string;
  instances: number;
  placed: number;
  /** Left Pending at the end. */
  pending: number;
  preemptions: number;
  /** At the end of the run. */
  nodesUsed: number;
  lb1: number;
  ratio: number;
  /** Highest nodes used at any moment (checked after every event, not only at the samples). */
  peakNodesUsed: number;
  /** Highest LB1 at any moment (of the running instances); not necessarily at the same moment as peakNodesUsed. */
  peakLb1: number;
  /** peakNodesUsed / peakLb1: the open cluster's size against the least any packing needs at its peak. */
  peakRatio: number;
  /**
   * Time-weighted mean of nodesUsed / LB1 over the time something runs (each
   * state weighted by how long it lasted, from the first arrival to the last
   * event); when every event happens at one instant, the ratio at the end.
   */
  meanRatio: number;
  /** Over the nodes in use at the end. */
  utilization: { cpu: number; memory: number };
  /** Free share of the used nodes' capacity that sits on nodes too full in the other resource for the smallest instance. */
  stranded: { cpu: number; memory: number };
  latencyUs: { mean: number; p99: number };
  timeline: Sample[];
}

export interface RunOptions {
  cluster: ClusterSpec;
  workload: Workload;
  profile: Profile;
  seed: number;
  /** Spread a "zone" label over the nodes. */
  zones?: number;
  /** Placement rules given to every instance (e.g. spread over zones). */
  placement?: PlacementSpec;
  /** Target number of timeline samples. */
  samples?: number;
  /** Record placement latency (wall clock; off makes the result fully deterministic). */
  timing?: boolean;
}

type Res = keyof Pick<Resources, "cpuMillis" | "memoryBytes">;

/**
 * LB1 for possibly mixed node shapes: per resource, the fewest nodes (largest
 * first) whose capacity covers the demand; the maximum over resources. For
 * identical nodes this is max over resources of ceil(sum of demand / capacity).
 */
export function lowerBound(demand: Resources, nodes: readonly NodeView[]): number {
  return lowerBoundOf(demand, capacities(nodes));
}

type Capacities = Record<"cpuMillis" | "memoryBytes" | "pids", number[]>;

/** Per resource, the nodes' capacities, largest first (lowerBoundOf's input). */
function capacities(nodes: readonly NodeView[]): Capacities {
  const of = (k: keyof Capacities) => nodes.map((n) => n.allocatable[k]).sort((a, b) => b - a);
  return { cpuMillis: of("cpuMillis"), memoryBytes: of("memoryBytes"), pids: of("pids") };
}

function lowerBoundOf(demand: Resources, all: Capacities): number {
  let lb = 0;
  for (const k of ["cpuMillis", "memoryBytes", "pids"] as const) {
    const need = demand[k];
    if (need <= 0) continue;
    const caps = all[k];
    let sum = 0;
    let count = 0;
    for (const c of caps) {
      if (sum >= need) break;
      sum += c;
      count++;
    }
    if (sum < need) count = caps.length + Math.ceil((need - sum) / Math.max(1, caps[0] ?? 1));
    lb = Math.max(lb, count);
  }
  return lb;
}

/** A min-heap of (time, id) departures. */
class DepartureHeap {
  private readonly a: Array<{ time: number; seq: number; id: string }> = [];
  private seq = 0;
  get size(): number {
    return this.a.length;
  }
  peek(): number {
    return this.a[0]?.time ?? Infinity;
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i]!;
    const y = this.a[j]!;
    return x.time < y.time || (x.time === y.time && x.seq < y.seq);
  }
  push(time: number, id: string): void {
    this.a.push({ time, seq: this.seq++, id });
    let i = this.a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [this.a[i], this.a[p]] = [this.a[p]!, this.a[i]!];
      i = p;
    }
  }
  pop(): { time: number; id: string } {
    const top = this.a[0]!;
    const last = this.a.pop()!;
    if (this.a.length > 0) {
      this.a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.a.length && this.less(l, m)) m = l;
        if (r < this.a.length && this.less(r, m)) m = r;
        if (m === i) break;
        [this.a[i], this.a[m]] = [this.a[m]!, this.a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export { percentile };

export function run(o: RunOptions): RunResult {
  const rng = mulberry32(o.seed);
  const initial = buildNodes(o.cluster, o.zones ?? 0);
  const ws = new WorkingSet(initial);
  const items = [...o.workload.items].sort((a, b) => a.time - b.time);
  const byId = new Map<string, WorkItem>(items.map((i) => [i.id, i]));
  const departures = new DepartureHeap();
  for (const d of o.workload.departures) departures.push(d.time, d.id);
  const where = new Map<string, string>(); // id -> node
  const pending: WorkItem[] = [];
  const gone = new Set<string>();
  const nodeUse = new Map<string, number>(); // node -> instances on it
  const running: Resources = { cpuMillis: 0, memoryBytes: 0, pids: 0 };
  const latencies: number[] = [];
  let placedEver = 0;
  let preemptions = 0;
  const minReq = { cpuMillis: Infinity, memoryBytes: Infinity };
  for (const it of items) {
    minReq.cpuMillis = Math.min(minReq.cpuMillis, it.resources.cpuMillis);
    minReq.memoryBytes = Math.min(minReq.memoryBytes, it.resources.memoryBytes);
  }

  const request = (it: WorkItem): PlacementRequest => ({
    id: it.id,
    app: it.app,
    namespace: "sim",
    resources: it.resources,
    priority: it.priority,
    ...(o.placement ? { placement: o.placement } : {}),
  });
  const adjust = (r: Resources, sign: 1 | -1) => {
    running.cpuMillis += sign * r.cpuMillis;
    running.memoryBytes += sign * r.memoryBytes;
    running.pids += sign * r.pids;
  };
  const unbind = (id: string) => {
    const node = where.get(id);
    if (node === undefined) return;
    ws.evict(node, [id]);
    where.delete(id);
    adjust(byId.get(id)!.resources, -1);
    const c = (nodeUse.get(node) ?? 1) - 1;
    if (c === 0) nodeUse.delete(node);
    else nodeUse.set(node, c);
  };
  /** Tries to place one item; true when it runs now. */
  const tryPlace = (it: WorkItem): boolean => {
    const t0 = o.timing === false ? 0 : performance.now();
    const r = ws.place(request(it), o.profile, rng);
    if (o.timing !== false) latencies.push((performance.now() - t0) * 1000);
    if (r.nodeName === undefined) return false;
    for (const v of r.victims ?? []) {
      unbind(v);
      preemptions++;
      const victim = byId.get(v)!;
      pending.push(victim);
    }
    ws.bind(request(it), r.nodeName);
    where.set(it.id, r.nodeName);
    nodeUse.set(r.nodeName, (nodeUse.get(r.nodeName) ?? 0) + 1);
    adjust(it.resources, 1);
    placedEver++;
    return true;
  };
  const retryPending = () => {
    if (pending.length === 0) return;
    pending.sort((a, b) => b.priority - a.priority);
    const still: WorkItem[] = [];
    for (const it of pending.splice(0)) {
      if (gone.has(it.id)) continue;
      if (!tryPlace(it)) still.push(it);
    }
    pending.push(...still);
  };

  const timeline: Sample[] = [];
  const totalEvents = items.length * 2;
  const every = Math.max(1, Math.floor(totalEvents / (o.samples ?? 400)));
  let events = 0;
  let peakNodesUsed = 0;
  let peakLb1 = 0;
  const caps = capacities(initial);
  // The time-weighted mean ratio: the state after each event lasts until the next event's time.
  let weighted = 0;
  let weight = 0;
  let state: { time: number; ratio: number } | undefined;
  const observe = (time: number) => {
    const lb1 = lowerBoundOf(running, caps);
    if (nodeUse.size > peakNodesUsed) peakNodesUsed = nodeUse.size;
    if (lb1 > peakLb1) peakLb1 = lb1;
    if (state && time > state.time) {
      weighted += state.ratio * (time - state.time);
      weight += time - state.time;
    }
    state = lb1 > 0 ? { time, ratio: nodeUse.size / lb1 } : undefined;
  };
  const sample = (time: number) => {
    const used = [...nodeUse.keys()].map((n) => ws.get(n)!);
    const cap = used.reduce((s, n) => ({ c: s.c + n.allocatable.cpuMillis, m: s.m + n.allocatable.memoryBytes }), {
      c: 0,
      m: 0,
    });
    const lb1 = lowerBoundOf(running, caps);
    timeline.push({
      time,
      running: where.size,
      pending: pending.length,
      nodesUsed: used.length,
      lb1,
      cpu: cap.c ? running.cpuMillis / cap.c : 0,
      memory: cap.m ? running.memoryBytes / cap.m : 0,
    });
  };

  let i = 0;
  while (i < items.length || departures.size > 0) {
    const nextArrival = items[i]?.time ?? Infinity;
    let time: number;
    if (departures.peek() <= nextArrival) {
      // Departures first at equal times: they make room.
      time = departures.peek();
      let freed = false;
      while (departures.peek() === time) {
        const d = departures.pop();
        if (gone.has(d.id)) continue;
        gone.add(d.id);
        if (where.has(d.id)) {
          unbind(d.id);
          freed = true;
        }
      }
      if (freed) retryPending();
    } else {
      const it = items[i++]!;
      time = it.time;
      if (it.duration !== undefined) departures.push(it.time + it.duration, it.id);
      if (!tryPlace(it)) pending.push(it);
    }
    observe(time);
    if (++events % every === 0) sample(time);
  }
  // Without departures (or after the last event) the end state is the last sample.
  const endTime = timeline.length ? timeline[timeline.length - 1]!.time : 0;
  sample(endTime);

  const usedNodes = [...nodeUse.keys()].map((n) => ws.get(n)!);
  const capOf = (k: Res) => usedNodes.reduce((s, n) => s + n.allocatable[k], 0);
  const allocOf = (k: Res) => usedNodes.reduce((s, n) => s + n.allocated[k], 0);
  const stranded = { cpu: 0, memory: 0 };
  for (const n of usedNodes) {
    const fc = n.allocatable.cpuMillis - n.allocated.cpuMillis;
    const fm = n.allocatable.memoryBytes - n.allocated.memoryBytes;
    if (fc < minReq.cpuMillis) stranded.memory += fm;
    if (fm < minReq.memoryBytes) stranded.cpu += fc;
  }
  const last = timeline[timeline.length - 1]!;
  return {
    profile: o.profile.name,
    instances: items.length,
    placed: placedEver,
    pending: pending.filter((p) => !gone.has(p.id)).length,
    preemptions,
    nodesUsed: last.nodesUsed,
    lb1: last.lb1,
    ratio: last.lb1 > 0 ? last.nodesUsed / last.lb1 : 1,
    peakNodesUsed,
    peakLb1,
    peakRatio: peakLb1 > 0 ? peakNodesUsed / peakLb1 : 1,
    meanRatio: weight > 0 ? weighted / weight : last.lb1 > 0 ? last.nodesUsed / last.lb1 : 1,
    utilization: {
      cpu: capOf("cpuMillis") ? allocOf("cpuMillis") / capOf("cpuMillis") : 0,
      memory: capOf("memoryBytes") ? allocOf("memoryBytes") / capOf("memoryBytes") : 0,
    },
    stranded: {
      cpu: capOf("cpuMillis") ? stranded.cpu / capOf("cpuMillis") : 0,
      memory: capOf("memoryBytes") ? stranded.memory / capOf("memoryBytes") : 0,
    },
    latencyUs: {
      mean: latencies.length ? latencies.reduce((a, b) => a + b, 0) / latencies.length : 0,
      p99: percentile(latencies, 99),
    },
    timeline,
  };
}

/**
 * The highest LB1 of the instances running at the same time, over the
 * workload's timeline (arrivals plus durations and departure rows; departures
 * first at equal times, as run() replays them), on nodes of one shape.
 */
export function peakDemandLb1(w: Workload, node: Resources): number {
  const ends = new Map<string, number>();
  for (const it of w.items) if (it.duration !== undefined) ends.set(it.id, it.time + it.duration);
  for (const d of w.departures) ends.set(d.id, Math.min(ends.get(d.id) ?? Infinity, d.time));
  const events: Array<{ t: number; sign: 1 | -1; r: Resources }> = [];
  for (const it of w.items) {
    events.push({ t: it.time, sign: 1, r: it.resources });
    const end = ends.get(it.id);
    if (end !== undefined && end >= it.time) events.push({ t: end, sign: -1, r: it.resources });
  }
  events.sort((a, b) => a.t - b.t || a.sign - b.sign);
  const cur: Resources = { cpuMillis: 0, memoryBytes: 0, pids: 0 };
  const caps: Capacities = { cpuMillis: [node.cpuMillis], memoryBytes: [node.memoryBytes], pids: [node.pids] };
  let peak = 0;
  for (const e of events) {
    cur.cpuMillis += e.sign * e.r.cpuMillis;
    cur.memoryBytes += e.sign * e.r.memoryBytes;
    cur.pids += e.sign * e.r.pids;
    peak = Math.max(peak, lowerBoundOf(cur, caps));
  }
  return peak;
}

/**
 * The open cluster's size when none is given: 1.5 x the peak demand's LB1
 * (peakDemandLb1) plus 2 nodes, so no profile runs out of nodes.
 */
export function openClusterSize(w: Workload, node: Resources): number {
  return Math.ceil(peakDemandLb1(w, node) * 1.5) + 2;
}
