// What a scheduler pass tells metrics and its span: the pass latency, the
// placements made, and, on the span, each instance's chosen node and score
// (the weighted total from the explain record, and each scorer's part).
import type { Attributes } from "@grove/common";
import type { Counter, Histogram } from "prom-client";
import type { PlacementRequest, PlacementResult } from "../scheduler";

export interface SchedulerMetrics {
  schedulerPass: Histogram;
  placements: Counter<"result">;
}

/** At most this many instances are named one by one on a pass's span. */
const MAX_NAMED = 20;

export function placementSpanAttributes(
  reqs: readonly PlacementRequest[],
  results: readonly (PlacementResult | undefined)[],
): Attributes {
  const out: Attributes = {};
  let placed = 0;
  results.forEach((r, k) => {
    if (!r?.nodeName) return;
    placed++;
    if (k >= MAX_NAMED) return;
    const score = r.explain.scores?.total;
    const prefix = reqs.length === 1 ? "grove" : `grove.placement.${k}`;
    out[`${prefix}.instance`] = reqs[k]?.id ?? "";
    out[`${prefix}.node`] = r.nodeName;
    if (score !== undefined) out[`${prefix}.score`] = score;
    // Each scorer's part of the winner's score (explain.scores), on a single placement.
    if (reqs.length === 1) {
      for (const [scorer, v] of Object.entries(r.explain.scores ?? {})) {
        if (scorer !== "total") out[`grove.score.${scorer}`] = v;
      }
    }
    out[`${prefix}.nodes_considered`] = r.explain.nodesConsidered;
  });
  out["grove.instances.placed"] = placed;
  out["grove.instances.unplaced"] = results.length - placed;
  return out;
}
