// Capacity: per node and cluster-wide allocatable, allocated and free, and how
// many more instances of a shape fit right now (stranded capacity made visible).

import type { CapacityReport, NodeCapacity, Resources } from "@grove/api";
import { free, RESOURCE_KEYS } from "./filters";
import type { NodeView } from "./types";
import { zeroResources } from "./resources";

// The report's shape is the HTTP contract (GET /v1/capacity), defined once in @grove/api.
export type { CapacityReport, NodeCapacity } from "@grove/api";

const zero = zeroResources;

/** How many instances of `shape` fit in `room` (Infinity when the shape asks for nothing). */
export function howMany(room: Resources, shape: Resources): number {
  let n = Infinity;
  for (const k of RESOURCE_KEYS) {
    const want = shape[k] ?? 0;
    if (want <= 0) continue;
    const have = room[k];
    if (have === undefined) continue; // not reported: unlimited
    n = Math.min(n, Math.floor(Math.max(0, have) / want));
  }
  return n;
}

export function capacity(nodes: readonly NodeView[], shape?: Resources): CapacityReport {
  const total = { allocatable: zero(), allocated: zero(), free: zero() };
  let disk = false;
  const rows = [...nodes]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((n): NodeCapacity => {
      const schedulable = n.ready && !n.unschedulable;
      const f: Resources = {
        cpuMillis: free(n, "cpuMillis"),
        memoryBytes: free(n, "memoryBytes"),
        pids: free(n, "pids"),
      };
      if (n.allocatable.diskBytes !== undefined) {
        f.diskBytes = free(n, "diskBytes");
        disk = true;
      }
      for (const k of RESOURCE_KEYS) {
        if (n.allocatable[k] === undefined) continue;
        total.allocatable[k] = (total.allocatable[k] ?? 0) + n.allocatable[k]!;
        total.allocated[k] = (total.allocated[k] ?? 0) + (n.allocated[k] ?? 0);
        if (schedulable) total.free[k] = (total.free[k] ?? 0) + f[k]!;
      }
      const row: NodeCapacity = {
        name: n.name,
        schedulable,
        allocatable: n.allocatable,
        allocated: n.allocated,
        free: f,
      };
      if (shape) {
        const fits = schedulable ? howMany(f, shape) : 0;
        row.fits = Number.isFinite(fits) ? fits : 0;
      }
      return row;
    });
  if (!disk) {
    delete total.allocatable.diskBytes;
    delete total.allocated.diskBytes;
    delete total.free.diskBytes;
  }
  const report: CapacityReport = { nodes: rows, cluster: total };
  if (shape) {
    report.shape = shape;
    report.fits = rows.reduce((s, r) => s + (r.fits ?? 0), 0);
    const pooled = howMany(total.free, shape);
    report.fitsIfPooled = Number.isFinite(pooled) ? pooled : 0;
  }
  return report;
}
