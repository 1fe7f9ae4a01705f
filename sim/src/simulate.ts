// A first density simulation: place a synthetic workload on a homogeneous
// cluster with the control plane's own placement library and report how many
// nodes it used against the lower bound LB1 = max over resources of
// ceil(total demand / node capacity). Arrivals only; departures, traces and
// compaction come with the simulator issue.
import type { Resources } from "@grove/api";
import {
  defaultProfile,
  placeBatch,
  seededRng,
  type NodeView,
  type PlacementRequest,
  type Profile,
  type Rng,
} from "@grove/control-plane/scheduler";

export interface ClusterShape {
  nodes: number;
  node: Resources;
}

export type WorkloadKind = "uniform" | "mixed";

export interface SimulationInput {
  cluster: ClusterShape;
  workload: WorkloadKind;
  count: number;
  seed: number;
  profile?: Profile;
}

export interface SimulationReport {
  profile: string;
  placed: number;
  pending: number;
  nodesUsed: number;
  lowerBound: number;
  ratioToLowerBound: number;
  utilization: { cpu: number; memory: number };
}

const MI = 2 ** 20;

/** Instance shapes: "uniform" is the kube-scheduler benchmark pod (100m, 500Mi); "mixed" draws from a few sizes. */
export function generateWorkload(kind: WorkloadKind, count: number, rng: Rng): PlacementRequest[] {
  const shapes: Resources[] =
    kind === "uniform"
      ? [{ cpuMillis: 100, memoryBytes: 500 * MI, pids: 64 }]
      : [
          { cpuMillis: 250, memoryBytes: 256 * MI, pids: 64 },
          { cpuMillis: 500, memoryBytes: 1024 * MI, pids: 128 },
          { cpuMillis: 1000, memoryBytes: 2048 * MI, pids: 256 },
          { cpuMillis: 2000, memoryBytes: 4096 * MI, pids: 512 },
          { cpuMillis: 100, memoryBytes: 3072 * MI, pids: 64 },
        ];
  return Array.from({ length: count }, (_, i) => ({
    id: `sim/app-${i}`,
    app: `app-${i % 50}`,
    namespace: "sim",
    resources: shapes[Math.floor(rng.next() * shapes.length)] ?? shapes[0]!,
  }));
}

export function lowerBound(reqs: readonly PlacementRequest[], node: Resources): number {
  const sum = (f: (r: Resources) => number) => reqs.reduce((s, r) => s + f(r.resources), 0);
  return Math.max(
    Math.ceil(sum((r) => r.cpuMillis) / node.cpuMillis),
    Math.ceil(sum((r) => r.memoryBytes) / node.memoryBytes),
    Math.ceil(sum((r) => r.pids) / Math.max(1, node.pids)),
  );
}

export function simulate(input: SimulationInput): SimulationReport {
  const rng = seededRng(input.seed);
  const reqs = generateWorkload(input.workload, input.count, rng);
  const nodes: NodeView[] = Array.from({ length: input.cluster.nodes }, (_, i) => ({
    name: `node-${i}`,
    ready: true,
    unschedulable: false,
    allocatable: input.cluster.node,
    allocated: { cpuMillis: 0, memoryBytes: 0, pids: 0 },
    labels: {},
  }));
  const profile = input.profile ?? defaultProfile();
  const results = placeBatch(reqs, nodes, profile, seededRng(input.seed + 1));
  const used = new Map<string, Resources>();
  let placed = 0;
  results.forEach((r, i) => {
    if (!r.nodeName) return;
    placed++;
    const req = reqs[i]!.resources;
    const u = used.get(r.nodeName) ?? { cpuMillis: 0, memoryBytes: 0, pids: 0 };
    used.set(r.nodeName, {
      cpuMillis: u.cpuMillis + req.cpuMillis,
      memoryBytes: u.memoryBytes + req.memoryBytes,
      pids: u.pids + req.pids,
    });
  });
  const nodesUsed = used.size;
  const placedReqs = reqs.filter((_, i) => results[i]?.nodeName);
  const lb = lowerBound(placedReqs, input.cluster.node);
  const total = [...used.values()];
  const cap = (f: (r: Resources) => number) => nodesUsed * f(input.cluster.node);
  return {
    profile: profile.name,
    placed,
    pending: reqs.length - placed,
    nodesUsed,
    lowerBound: lb,
    ratioToLowerBound: lb === 0 ? 1 : nodesUsed / lb,
    utilization: {
      cpu: nodesUsed ? total.reduce((s, r) => s + r.cpuMillis, 0) / cap((r) => r.cpuMillis) : 0,
      memory: nodesUsed ? total.reduce((s, r) => s + r.memoryBytes, 0) / cap((r) => r.memoryBytes) : 0,
    },
  };
}
