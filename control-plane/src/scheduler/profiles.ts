// Named profiles: the same filters, different ranking. The default was chosen
// from the simulator's evidence (docs/scheduling.md, "Choosing the default").

import { DEFAULT_FILTERS } from "./filters";
import {
  balancedFit,
  diego,
  dotProduct,
  l2Norm,
  leastAllocated,
  mostAllocated,
  nomadBestFit,
  preferNoSchedule,
} from "./scorers";
import { alignedFit, balancedAllocation } from "./scorers-density";
import type { Profile, Sampling, Scorer } from "./types";

/** Kubernetes' percentageOfNodesToScore (adaptive), only from 100 nodes on. */
export const K8S_SAMPLING: Sampling = { mode: "percentage", percentage: 0, minNodes: 100 };
/** Nomad's max(2, ceil(log2 N)) candidates, only from 100 nodes on. */
export const LOG2_SAMPLING: Sampling = { mode: "log2", minNodes: 100 };

function profile(name: string, scorers: Scorer[], sampling?: Sampling): Profile {
  return { name, filters: DEFAULT_FILTERS, scorers: [...scorers, preferNoSchedule], ...(sampling ? { sampling } : {}) };
}

export const PROFILES: Readonly<Record<string, Profile>> = {
  "most-allocated": profile("most-allocated", [mostAllocated]),
  "least-allocated": profile("least-allocated", [leastAllocated]),
  "nomad-binpack": profile("nomad-binpack", [nomadBestFit]),
  "dot-product": profile("dot-product", [dotProduct]),
  "l2-norm": profile("l2-norm", [l2Norm]),
  diego: profile("diego", [diego]),
  "balanced-fit": profile("balanced-fit", [balancedFit]),
  "aligned-fit": profile("aligned-fit", [alignedFit]),
  // kube-scheduler's bin-packing configuration: NodeResourcesFit MostAllocated + BalancedAllocation.
  "kube-binpack": profile("kube-binpack", [mostAllocated, balancedAllocation]),
};

/**
 * Grove's default: aligned fit (see docs/scheduling.md, "Choosing the
 * default"), every node scored: the per-shape cache (WorkingSet.place) makes
 * that cheap, and sampling costs density (K8S_SAMPLING and LOG2_SAMPLING
 * remain profile settings).
 */
export const DEFAULT_PROFILE: Profile = profile("default", [alignedFit]);

/** The default profile. */
export function defaultProfile(): Profile {
  return DEFAULT_PROFILE;
}

/** A profile by name ("default" included), with a sampling override. */
export function profileByName(name: string, sampling?: Sampling | "off"): Profile {
  const base = name === "default" ? DEFAULT_PROFILE : PROFILES[name];
  if (!base) {
    throw new Error(`unknown profile "${name}"; known: default, ${Object.keys(PROFILES).join(", ")}`);
  }
  if (sampling === undefined) return base;
  const { sampling: _old, ...rest } = base;
  return sampling === "off" ? rest : { ...rest, sampling };
}

export const PROFILE_NAMES: readonly string[] = ["default", ...Object.keys(PROFILES)];
