// Runs every profile over the same cluster and workload: the event-driven run
// and the compaction, side by side.
import { PROFILE_NAMES, type PlacementSpec, type Sampling } from "@grove/control-plane/scheduler";
import { simProfileByName } from "./k8s-binpack";
import { compact, peakSet, type CompactionResult } from "./compaction";
import { run, type RunResult } from "./engine";
import type { ClusterSpec } from "./cluster";
import type { Workload } from "./workload";

export interface PolicyResult {
  run: RunResult;
  compaction?: CompactionResult;
}

export interface Comparison {
  workload: string;
  instances: number;
  nodes: number;
  seed: number;
  seeds: number;
  policies: PolicyResult[];
}

export interface CompareOptions {
  cluster: ClusterSpec;
  workload: Workload;
  profiles?: readonly string[];
  seed?: number;
  /** Compaction seeds (0 skips compaction). */
  seeds?: number;
  zones?: number;
  placement?: PlacementSpec;
  sampling?: Sampling | "off";
  timing?: boolean;
}

export function compare(o: CompareOptions): Comparison {
  const names = o.profiles ?? PROFILE_NAMES;
  const seed = o.seed ?? 1;
  const seeds = o.seeds ?? 11;
  const node = o.cluster.pools[0]!.node;
  const peak = seeds > 0 ? peakSet(o.workload, node) : [];
  const policies = names.map((name): PolicyResult => {
    const profile = simProfileByName(name, o.sampling);
    const r = run({
      cluster: o.cluster,
      workload: o.workload,
      profile,
      seed,
      ...(o.zones ? { zones: o.zones } : {}),
      ...(o.placement ? { placement: o.placement } : {}),
      ...(o.timing === false ? { timing: false } : {}),
    });
    const result: PolicyResult = { run: r };
    if (seeds > 0) {
      result.compaction = compact(o.cluster, peak, profile, {
        seeds,
        baseSeed: seed,
        ...(o.zones ? { zones: o.zones } : {}),
        ...(o.placement ? { placement: o.placement } : {}),
      });
    }
    return result;
  });
  return {
    workload: o.workload.name,
    instances: o.workload.items.length,
    nodes: o.cluster.pools.reduce((s, p) => s + p.count, 0),
    seed,
    seeds,
    policies,
  };
}
