// Density figures over many workload seeds (issue 19): every mix under every
// profile, the open cluster's peak and the compaction p90, each against LB1,
// summarised as mean and 90th percentile over the seeds. The seeds used to
// choose and tune the default are kept apart from the ones reported.
import { compare } from "./compare";
import { homogeneous } from "./cluster";
import { openClusterSize, percentile } from "./engine";
import { defaultNodeFor, generate, type GeneratorName } from "./workload";

/** Workload seeds the default profile was chosen and tuned on (docs/scheduling.md). */
export const TUNING_SEEDS: readonly number[] = [2, 3, 4, 5, 6];
/** Workload seeds only ever used to report, never to tune. */
export const HELDOUT_SEEDS: readonly number[] = [101, 102, 103, 104, 105, 106, 107, 108, 109, 110];
/** The mixes reported per seed. */
export const REPORTED_MIXES: readonly GeneratorName[] = ["azure", "azure-vm", "borg", "shapes", "memheavy", "churn"];

export interface SeedFigures {
  seed: number;
  /** Open cluster: peak nodes used / peak LB1. */
  open: number;
  /** Compaction: p90 over the compaction seeds of the smallest cluster / LB1 of the instances alive at peak. */
  compaction: number;
}

export interface Summary {
  mean: number;
  p90: number;
}

export interface MixFigures {
  mix: GeneratorName;
  profile: string;
  perSeed: SeedFigures[];
  open: Summary;
  compaction: Summary;
}

function summary(xs: number[]): Summary {
  return { mean: xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length), p90: percentile(xs, 90) };
}

/** Instances per workload: 1500, the churn trace 3000 arrivals. */
export function countFor(mix: GeneratorName, base = 1500): number {
  return mix === "churn" ? base * 2 : base;
}

/**
 * Every profile on `mix` for each workload seed: the open cluster (1.5 x the
 * peak demand's LB1 + 2 nodes, arrivals one by one) and the compaction over
 * `compactionSeeds` seeds of the instances alive at peak demand.
 */
export function evaluateMix(
  mix: GeneratorName,
  seeds: readonly number[],
  profiles: readonly string[],
  opts: { compactionSeeds?: number; count?: number } = {},
): MixFigures[] {
  const per = new Map<string, SeedFigures[]>(profiles.map((p) => [p, []]));
  const node = defaultNodeFor(mix);
  for (const seed of seeds) {
    const workload = generate(mix, { count: countFor(mix, opts.count), seed });
    const c = compare({
      cluster: homogeneous(openClusterSize(workload, node), node),
      workload,
      profiles,
      seed,
      seeds: opts.compactionSeeds ?? 5,
      timing: false,
    });
    c.policies.forEach((p, i) => {
      per.get(profiles[i]!)!.push({ seed, open: p.run.peakRatio, compaction: p.compaction!.ratioP90 });
    });
  }
  return profiles.map((profile) => {
    const perSeed = per.get(profile)!;
    return {
      mix,
      profile,
      perSeed,
      open: summary(perSeed.map((s) => s.open)),
      compaction: summary(perSeed.map((s) => s.compaction)),
    };
  });
}
