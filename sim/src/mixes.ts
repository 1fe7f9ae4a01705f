// Workload mixes that look like real clusters (issue 19), beside the older
// azure/borg/k8s/mixed generators in workload.ts:
//  - shapes:   jobs drawn from a small per-seed catalogue of machine shapes
//              (cpu and memory correlated through a few families of memory
//              per core), with Zipf popularity, heavy-tailed job sizes and a
//              few large jobs (1/4 to 1/2 of a node);
//  - memheavy: memory-heavy jobs (median 12 GiB per core on 4 GiB-per-core
//              nodes) with a long tail of big-memory jobs;
//  - churn:    the shapes mix as a trace: jobs arrive over time (Poisson) and
//              their instances leave again (short batch work, longer services).
// Every mix is a stream of jobs: an App whose instances share one shape and
// arrive together.
import type { Resources } from "@grove/api";
import { mulberry32, type Rng } from "@grove/control-plane/scheduler";
import type { WorkItem, Workload } from "./types";

const GI = 2 ** 30;
const MI = 2 ** 20;

/** The node all three mixes are sized for: 64 cores, 256 GiB (4 GiB per core). */
export const MIX_NODE: Resources = { cpuMillis: 64_000, memoryBytes: 256 * GI, pids: 1_000_000 };

export interface Job {
  resources: Resources;
  tasks: number;
}

export interface MixOptions {
  count: number;
  seed: number;
  /** Mean seconds between arrivals, per instance (churn: default 1; the others: 0, all at once). */
  interArrival?: number;
  /** shapes, memheavy: mean lifetime (exponential); churn has its own lifetimes. */
  meanDuration?: number;
}

function pick<T>(rng: Rng, items: ReadonlyArray<readonly [number, T]>): T {
  let x = rng.next() * items.reduce((s, [p]) => s + p, 0);
  for (const [p, v] of items) {
    if (x < p) return v;
    x -= p;
  }
  return items[items.length - 1]![1];
}

function logUniform(rng: Rng, lo: number, hi: number): number {
  return Math.exp(Math.log(lo) + rng.next() * (Math.log(hi) - Math.log(lo)));
}

/** A standard normal draw (Box-Muller). */
function normal(rng: Rng): number {
  const u = 1 - rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Instances per job: Pareto (alpha 1.2, from 1), at most `cap`. Most jobs are small, a few very large. */
function jobTasks(rng: Rng, cap: number): number {
  return Math.min(cap, Math.floor(Math.pow(1 - rng.next(), -1 / 1.2)));
}

function res(cpuMillis: number, memoryBytes: number): Resources {
  return {
    cpuMillis: Math.max(10, Math.round(cpuMillis / 10) * 10),
    memoryBytes: Math.max(64 * MI, Math.round(memoryBytes / (64 * MI)) * 64 * MI),
    pids: 256,
  };
}

/** Memory per core of the machine families (compute, general, memory-optimised, and rarer extremes). */
const FAMILIES = [
  [0.05, 1],
  [0.25, 2],
  [0.4, 4],
  [0.22, 8],
  [0.08, 16],
] as const;
const CORES = [
  [0.15, 0.25],
  [0.2, 0.5],
  [0.25, 1],
  [0.2, 2],
  [0.12, 4],
  [0.08, 8],
] as const;

/**
 * The shapes mix's job stream. Each seed draws its own catalogue of 6 to 12
 * machine shapes (family x size) and ranks them by Zipf popularity (exponent
 * 1.3); 4% of jobs are large: 16 or 32 cores at 2, 4 or 8 GiB per core, at
 * most half a node's memory, with 1 to 4 instances.
 */
export function shapesJobs(rng: Rng): () => Job {
  const size = 6 + Math.floor(rng.next() * 7);
  const catalogue: Resources[] = [];
  while (catalogue.length < size) {
    const perCore = pick(rng, FAMILIES);
    const cores = pick(rng, CORES);
    const r = res(cores * 1000, cores * perCore * GI);
    if (!catalogue.some((c) => c.cpuMillis === r.cpuMillis && c.memoryBytes === r.memoryBytes)) catalogue.push(r);
  }
  const popularity = catalogue.map((r, i) => [1 / Math.pow(i + 1, 1.3), r] as const);
  return () => {
    if (rng.next() < 0.04) {
      const perCore = pick(rng, [
        [1, 2],
        [1, 4],
        [1, 8],
      ] as const);
      const cores = Math.min(rng.next() < 0.5 ? 16 : 32, 128 / perCore);
      return { resources: res(cores * 1000, cores * perCore * GI), tasks: 1 + Math.floor(rng.next() * 4) };
    }
    return { resources: pick(rng, popularity), tasks: jobTasks(rng, 200) };
  };
}

/**
 * The memheavy mix's job stream: cores log-uniform 0.25-4, memory per core
 * log-normal (median 12 GiB, sigma 0.6) clamped to 4-64 GiB; 5% of jobs are
 * big-memory ones: 1-8 cores and 32-128 GiB (up to half a node), 1 to 4
 * instances. Memory per instance is at most 128 GiB.
 */
export function memheavyJobs(rng: Rng): () => Job {
  return () => {
    if (rng.next() < 0.05) {
      const memory = logUniform(rng, 32 * GI, 128 * GI);
      return { resources: res(1000 * (1 + Math.floor(rng.next() * 8)), memory), tasks: 1 + Math.floor(rng.next() * 4) };
    }
    const cores = logUniform(rng, 0.25, 4);
    const perCore = Math.min(64, Math.max(4, 12 * Math.exp(0.6 * normal(rng))));
    return { resources: res(cores * 1000, Math.min(128 * GI, cores * perCore * GI)), tasks: jobTasks(rng, 200) };
  };
}

/**
 * `count` instances from a job stream; all at time 0 unless `interArrival`
 * (jobs then arrive as a Poisson process, instances at 1/interArrival per
 * second on average); `meanDuration` gives exponential lifetimes.
 */
function fromJobs(name: string, rng: Rng, next: () => Job, o: MixOptions): Workload {
  const items: WorkItem[] = [];
  let t = 0;
  for (let job = 0; items.length < o.count; job++) {
    const j = next();
    if (o.interArrival && o.interArrival > 0) t += -Math.log(1 - rng.next()) * o.interArrival * j.tasks;
    for (let k = 0; k < j.tasks && items.length < o.count; k++) {
      const item: WorkItem = {
        time: Math.round(t * 1000) / 1000,
        id: `${name}-${items.length}`,
        app: `job-${job}`,
        resources: j.resources,
        priority: 0,
      };
      if (o.meanDuration && o.meanDuration > 0) {
        item.duration = Math.max(1, Math.round(-Math.log(1 - rng.next()) * o.meanDuration));
      }
      items.push(item);
    }
  }
  return { name, items, departures: [] };
}

export function shapesMix(o: MixOptions): Workload {
  const rng = mulberry32(o.seed);
  return fromJobs("shapes", rng, shapesJobs(rng), o);
}

export function memheavyMix(o: MixOptions): Workload {
  const rng = mulberry32(o.seed);
  return fromJobs("memheavy", rng, memheavyJobs(rng), o);
}

/**
 * The churn trace: `count` instances of the shapes mix. Jobs arrive as a
 * Poisson process (mean gap = interArrival x the job's instances, so
 * instances arrive at 1/interArrival per second on average); a job's
 * instances arrive together. 80% of jobs are batch work (lifetime
 * log-normal, median 120 s, sigma 1.2, per instance), 20% services
 * (log-uniform 600-6000 s). About 700 instances run at a time in steady state.
 */
export function churnTrace(o: MixOptions): Workload {
  const rng = mulberry32(o.seed);
  const next = shapesJobs(rng);
  const gap = o.interArrival && o.interArrival > 0 ? o.interArrival : 1;
  const items: WorkItem[] = [];
  let t = 0;
  for (let job = 0; items.length < o.count; job++) {
    const j = next();
    t += -Math.log(1 - rng.next()) * gap * j.tasks;
    const service = rng.next() < 0.2;
    for (let k = 0; k < j.tasks && items.length < o.count; k++) {
      const life = service ? logUniform(rng, 600, 6000) : 120 * Math.exp(1.2 * normal(rng));
      items.push({
        time: Math.round(t * 1000) / 1000,
        id: `churn-${items.length}`,
        app: `job-${job}`,
        resources: j.resources,
        duration: Math.max(1, Math.round(life)),
        priority: 0,
      });
    }
  }
  return { name: "churn", items, departures: [] };
}
