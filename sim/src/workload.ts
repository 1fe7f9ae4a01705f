// Workloads as events over time: seeded synthetic generators and the event
// type CSV traces parse into.
import type { Resources } from "@grove/api";
import { mulberry32, type Rng } from "@grove/control-plane/scheduler";
import { churnTrace, memheavyMix, MIX_NODE, shapesMix } from "./mixes";
import type { WorkItem, Workload } from "./types";

const MI = 2 ** 20;
const GI = 2 ** 30;

export type { Departure, WorkItem, Workload } from "./types";

export const GENERATORS = ["azure", "azure-vm", "borg", "k8s", "mixed", "shapes", "memheavy", "churn"] as const;
/** The generators with one shape per instance (shapeOf); the others are job mixes (mixes.ts). */
export type ShapeGenerator = "azure" | "azure-vm" | "borg" | "k8s" | "mixed";
export type GeneratorName = (typeof GENERATORS)[number];

export interface GeneratorOptions {
  count: number;
  seed: number;
  /** Mean seconds between arrivals (Poisson); 0 = all at time 0. */
  interArrival?: number;
  /** Mean lifetime in seconds (exponential); 0 or absent = run forever. */
  meanDuration?: number;
  /** Instances per App (consecutive instances share an App and a shape). */
  appSize?: number;
}

function pick<T>(rng: Rng, items: ReadonlyArray<readonly [number, T]>): T {
  let x = rng.next();
  for (const [p, v] of items) {
    if (x < p) return v;
    x -= p;
  }
  return items[items.length - 1]![1];
}

function oneOf<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.min(xs.length - 1, Math.floor(rng.next() * xs.length))]!;
}

function logUniform(rng: Rng, lo: number, hi: number): number {
  return Math.exp(Math.log(lo) + rng.next() * (Math.log(hi) - Math.log(lo)));
}

/**
 * Azure 2019 VM population (research notes, performance-anchors.md section 3):
 * cores 0-2 58%, 2-4 23%, 4-8 12%, 12-24 6%, >24 1%; memory 0-2 GB 12%,
 * 2-4 16%, 4-8 33%, 8-32 29%, 32-64 7%, >64 3%. The notes give the two
 * marginals only, so cores and memory are drawn independently, each as a
 * typical VM size inside its bucket.
 */
function azure(rng: Rng): Resources {
  const cores = pick(rng, [
    [0.58, () => oneOf(rng, [1, 2])],
    [0.23, () => 4],
    [0.12, () => 8],
    [0.06, () => oneOf(rng, [16, 24])],
    [0.01, () => 32],
  ] as const)();
  const memGiB = pick(rng, [
    [0.12, () => oneOf(rng, [0.75, 1.75])],
    [0.16, () => 3.5],
    [0.33, () => oneOf(rng, [7, 8])],
    [0.29, () => oneOf(rng, [14, 16, 28, 32])],
    [0.07, () => oneOf(rng, [56, 64])],
    [0.03, () => oneOf(rng, [112, 128])],
  ] as const)();
  return { cpuMillis: cores * 1000, memoryBytes: Math.round(memGiB * GI), pids: 1024 };
}

/**
 * Azure VM sizes as they are sold (issue 18: real VMs are not drawn
 * independently per dimension): [cores, GiB] of the sizes per family, each
 * family at its own memory per core. The number of cores follows the same
 * 2019 marginal as `azure` (0-2 58 %, 4 23 %, 8 12 %, 16-24 6 %, 32 1 %);
 * the family, and with it the memory, is drawn for that number of cores:
 * general purpose (Dv3/Dsv3, B-ms, 4 GiB per core) 40 %, the older A/Dv2
 * sizes (about 3.5 GiB per core) 25 %, compute optimised (Fsv2/F, 2 GiB per
 * core) 15 %, memory optimised (Ev3, D11-D15 v2, 7-8 GiB per core) 15 %,
 * small burstable (A0, B1s, B1ls: under 1 GiB per core) 5 %; a family
 * without a size of that many cores is left out of that draw and the others
 * share its weight (20-core sizes stand in for 24 where a family has none).
 */
export const AZURE_VM_FAMILIES: ReadonlyArray<{
  name: string;
  weight: number;
  sizes: ReadonlyArray<readonly [number, number]>;
}> = [
  {
    name: "general (Dv3, B-ms)",
    weight: 0.4,
    sizes: [
      [1, 4],
      [2, 8],
      [4, 16],
      [8, 32],
      [16, 64],
      [24, 96],
      [32, 128],
    ],
  },
  {
    name: "A / Dv2",
    weight: 0.25,
    sizes: [
      [1, 3.5],
      [2, 7],
      [4, 14],
      [8, 28],
      [16, 56],
      [20, 140],
    ],
  },
  {
    name: "compute (F, Fsv2)",
    weight: 0.15,
    sizes: [
      [1, 2],
      [2, 4],
      [4, 8],
      [8, 16],
      [16, 32],
      [24, 48],
      [32, 64],
    ],
  },
  {
    name: "memory (Ev3, D11-15 v2)",
    weight: 0.15,
    sizes: [
      [1, 8],
      [2, 16],
      [4, 32],
      [8, 64],
      [16, 128],
      [20, 160],
      [32, 256],
    ],
  },
  { name: "small burstable (A0, B1s, B1ls)", weight: 0.05, sizes: [[1, 0.75]] },
];

function azureVm(rng: Rng): Resources {
  const cores = pick(rng, [
    [0.58, () => oneOf(rng, [1, 2])],
    [0.23, () => 4],
    [0.12, () => 8],
    [0.06, () => oneOf(rng, [16, 24])],
    [0.01, () => 32],
  ] as const)();
  const offers = AZURE_VM_FAMILIES.map((f) => {
    const size = f.sizes.find(([c]) => c === cores) ?? (cores === 24 ? f.sizes.find(([c]) => c === 20) : undefined);
    return [f.weight, size] as const;
  }).filter((o): o is readonly [number, readonly [number, number]] => o[1] !== undefined);
  const total = offers.reduce((sum, [w]) => sum + w, 0);
  const [c, gib] = pick(
    rng,
    offers.map(([w, size]) => [w / total, size] as const),
  );
  return { cpuMillis: c * 1000, memoryBytes: Math.round(gib * GI), pids: 1024 };
}

/**
 * Borg-like container tasks: continuous sizes ("no sweet spots"), 20% under
 * 0.1 core; memory log-uniform, loosely tied to cpu.
 */
function borg(rng: Rng): Resources {
  const cpu = rng.next() < 0.2 ? logUniform(rng, 10, 100) : logUniform(rng, 100, 4000);
  const perCore = logUniform(rng, 0.5 * GI, 8 * GI);
  const mem = Math.max(16 * MI, Math.min(32 * GI, (cpu / 1000) * perCore * logUniform(rng, 0.5, 2)));
  return { cpuMillis: Math.round(cpu), memoryBytes: Math.round(mem), pids: 256 };
}

/** kube-scheduler's SchedulingBasic pod. */
const K8S_POD: Resources = { cpuMillis: 100, memoryBytes: 500 * MI, pids: 64 };

/** The walking skeleton's few fixed shapes. */
const MIXED: Resources[] = [
  { cpuMillis: 250, memoryBytes: 256 * MI, pids: 64 },
  { cpuMillis: 500, memoryBytes: 1024 * MI, pids: 128 },
  { cpuMillis: 1000, memoryBytes: 2048 * MI, pids: 256 },
  { cpuMillis: 2000, memoryBytes: 4096 * MI, pids: 512 },
  { cpuMillis: 100, memoryBytes: 3072 * MI, pids: 64 },
];

export function shapeOf(name: ShapeGenerator, rng: Rng): Resources {
  switch (name) {
    case "azure":
      return azure(rng);
    case "azure-vm":
      return azureVm(rng);
    case "borg":
      return borg(rng);
    case "k8s":
      return { ...K8S_POD };
    case "mixed":
      return { ...oneOf(rng, MIXED) };
  }
}

/** A node shape each generator's workload fits naturally on. */
export function defaultNodeFor(name: GeneratorName): Resources {
  switch (name) {
    case "azure":
    case "azure-vm":
      return { cpuMillis: 64_000, memoryBytes: 256 * GI, pids: 1_000_000 };
    case "borg":
      return { cpuMillis: 16_000, memoryBytes: 64 * GI, pids: 1_000_000 };
    case "k8s":
      return { cpuMillis: 4000, memoryBytes: 32 * GI, pids: 110 * 64 };
    case "mixed":
      return { cpuMillis: 16_000, memoryBytes: 64 * GI, pids: 32768 };
    case "shapes":
    case "memheavy":
    case "churn":
      return { ...MIX_NODE };
  }
}

/** A seeded synthetic workload: the same options give the same events. */
export function generate(name: GeneratorName, o: GeneratorOptions): Workload {
  if (name === "shapes") return shapesMix(o);
  if (name === "memheavy") return memheavyMix(o);
  if (name === "churn") return churnTrace(o);
  const rng = mulberry32(o.seed);
  const appSize = Math.max(1, o.appSize ?? 1);
  const items: WorkItem[] = [];
  let t = 0;
  let shape: Resources = shapeOf(name, rng);
  for (let i = 0; i < o.count; i++) {
    if (i % appSize === 0 && i > 0) shape = shapeOf(name, rng);
    if (o.interArrival && o.interArrival > 0) t += -Math.log(1 - rng.next()) * o.interArrival;
    const item: WorkItem = {
      time: Math.round(t * 1000) / 1000,
      id: `${name}-${i}`,
      app: `app-${Math.floor(i / appSize)}`,
      resources: shape,
      priority: 0,
    };
    if (o.meanDuration && o.meanDuration > 0) {
      item.duration = Math.max(1, Math.round(-Math.log(1 - rng.next()) * o.meanDuration));
    }
    items.push(item);
  }
  return { name, items, departures: [] };
}
