// The single-shape sweep (issue 19): identical instances arriving one by one
// in an open cluster, over memory per core 0.25 .. 32 GiB, instance sizes
// 1/64 .. 1/2 of a node and three node shapes; nodes used by one profile
// against another (the default against MostAllocated).
import type { Resources } from "@grove/api";
import { mulberry32, WorkingSet, type PlacementRequest, type Profile } from "@grove/control-plane/scheduler";
import { buildNodes, homogeneous } from "./cluster";

const GI = 2 ** 30;

export const SWEEP_NODES: readonly Resources[] = [
  { cpuMillis: 64_000, memoryBytes: 256 * GI, pids: 1_000_000 },
  { cpuMillis: 16_000, memoryBytes: 128 * GI, pids: 1_000_000 },
  { cpuMillis: 96_000, memoryBytes: 192 * GI, pids: 1_000_000 },
];
export const SWEEP_MEMORY_PER_CORE: readonly number[] = [0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32];
export const SWEEP_SHARES: readonly number[] = [
  1 / 64,
  1 / 48,
  1 / 32,
  1 / 24,
  1 / 16,
  1 / 12,
  1 / 8,
  1 / 6,
  1 / 5,
  1 / 4,
  1 / 3,
  2 / 5,
  1 / 2,
];

/** An instance with `perCore` GiB per core whose larger share of `node` is `share`. */
export function sweepInstance(node: Resources, perCore: number, share: number): Resources {
  const nodePerCore = node.memoryBytes / GI / (node.cpuMillis / 1000);
  const cores = perCore >= nodePerCore ? (share * node.memoryBytes) / GI / perCore : (share * node.cpuMillis) / 1000;
  return {
    cpuMillis: Math.max(1, Math.floor(cores * 1000)),
    memoryBytes: Math.max(1, Math.floor(cores * perCore * GI)),
    pids: 1,
  };
}

/** Nodes used when `count` copies of `instance` arrive one by one on `size` empty nodes. */
export function openNodesUsed(
  profile: Profile,
  node: Resources,
  instance: Resources,
  count: number,
  size: number,
): number {
  const ws = new WorkingSet(buildNodes(homogeneous(size, node)));
  const rng = mulberry32(1);
  for (let i = 0; i < count; i++) {
    const req: PlacementRequest = { id: `i-${i}`, app: "sweep", namespace: "sim", resources: instance };
    const r = ws.place(req, profile, rng);
    if (r.nodeName === undefined) throw new Error(`sweep: instance ${i} did not fit: ${r.reason}`);
    ws.bind(req, r.nodeName);
  }
  return ws.nodes.filter((n) => n.allocated.cpuMillis > 0 || n.allocated.memoryBytes > 0).length;
}

export interface SweepResult {
  /** The largest nodes(profile) / nodes(reference) over the grid. */
  worstRatio: number;
  worstCase: string;
  /** Grid points where the profile used more than 1% + 1 node over the reference. */
  misses: number;
  points: number;
}

/** `profile` against `reference` over the grid; 10 nodes' worth of instances (plus a part-filled one) per point. */
export function shapeSweep(profile: Profile, reference: Profile): SweepResult {
  let worstRatio = 0;
  let worstCase = "";
  let misses = 0;
  let points = 0;
  for (const node of SWEEP_NODES) {
    for (const perCore of SWEEP_MEMORY_PER_CORE) {
      for (const share of SWEEP_SHARES) {
        const instance = sweepInstance(node, perCore, share);
        const count = Math.ceil(10 / share) + 1;
        const size = Math.ceil(count * share * 2.5) + 2;
        const a = openNodesUsed(profile, node, instance, count, size);
        const b = openNodesUsed(reference, node, instance, count, size);
        points++;
        if (a > Math.floor(b * 1.01) + 1) misses++;
        if (a / b > worstRatio) {
          worstRatio = a / b;
          worstCase = `${perCore} GiB/core, 1/${Math.round(1 / share)} node, ${node.cpuMillis / 1000}c/${node.memoryBytes / GI}Gi: ${a} vs ${b}`;
        }
      }
    }
  }
  return { worstRatio, worstCase, misses, points };
}
