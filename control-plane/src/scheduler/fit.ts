// Fit checks on plain amounts, for callers that ask about one node rather
// than place an instance: a resize in place asks whether a bound instance can
// grow where it runs. The rule is the resource fit filters' (cpu-fit,
// memory-fit, pids-fit, disk-fit in filters.ts), with their reasons;
// fit.test.ts checks the two agree on random nodes.
import type { Resources } from "@grove/api";
import { RESOURCE_KEYS, type ResourceKey } from "./filters";
import { addResources, subtractResources } from "./index";
import type { FilterReason } from "./types";

/** The subject of each resource's fit reason, as the filters name it. */
const SUBJECT: Record<ResourceKey, string> = {
  cpuMillis: "cpu",
  memoryBytes: "memory",
  pids: "pids",
  diskBytes: "disk",
};

function insufficient(k: ResourceKey): FilterReason {
  return { subject: SUBJECT[k], message: "insufficient" };
}

/**
 * Why `request` does not fit into what `allocatable` leaves after
 * `allocated` (one reason per resource, in the filters' order); empty when
 * it fits. As the filters: a node that reports no disk is not limited by
 * it, and disk is checked only when the request asks for some.
 */
export function resourceFit(allocatable: Resources, allocated: Resources, request: Resources): FilterReason[] {
  const out: FilterReason[] = [];
  for (const k of RESOURCE_KEYS) {
    const want = request[k] ?? 0;
    const cap = allocatable[k];
    if (k === "diskBytes" && want <= 0) continue;
    if (cap === undefined) continue;
    if ((allocated[k] ?? 0) + want > cap) out.push(insufficient(k));
  }
  return out;
}

export type ResizeFit = { fits: true; allocated: Resources } | { fits: false; reasons: FilterReason[] };

/**
 * Whether an instance bound to a node can change from `from` to `to` where
 * it runs, given the node's allocatable and allocation (`allocated`
 * includes `from`). A resource that does not grow always fits, even on an
 * over-committed node; one that grows must fit as for a new instance. On
 * success, the node's allocation afterwards.
 */
export function resizeFit(allocatable: Resources, allocated: Resources, from: Resources, to: Resources): ResizeFit {
  const others = subtractResources(allocated, from);
  const reasons: FilterReason[] = [];
  for (const k of RESOURCE_KEYS) {
    if ((to[k] ?? 0) <= (from[k] ?? 0)) continue;
    const only = (r: Resources) => ({ cpuMillis: 0, memoryBytes: 0, pids: 0, [k]: r[k] ?? 0 });
    reasons.push(...resourceFit(allocatable, only(others), only(to)));
  }
  return reasons.length > 0 ? { fits: false, reasons } : { fits: true, allocated: addResources(others, to) };
}
