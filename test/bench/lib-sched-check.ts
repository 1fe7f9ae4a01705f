// The scheduler benchmarks' double-booking check (issue 18): every resource
// the scheduler books (cpu, memory, pids, and disk when a node reports it)
// summed per node over the instances bound to it, compared with that node's
// capacity. Reports how many nodes are over in any resource and, per
// resource, the most any node holds (absolute and as a share of its
// capacity), so a run that packs 110 instances on a node whose cpu allows 40
// can no longer pass because only the instance count was looked at.
import type { Resources } from "@grove/api";

export const CHECKED_RESOURCES = ["cpuMillis", "memoryBytes", "pids", "diskBytes"] as const;
type Key = (typeof CHECKED_RESOURCES)[number];

export interface BoundInstance {
  node: string;
  resources: Partial<Resources>;
}

export interface CapacityCheck {
  /** Nodes where some resource's sum exceeds the node's capacity. */
  overcommittedNodes: number;
  /** "node: cpuMillis 4100 > 4000; ..." for the first few, for the report. */
  examples: string;
  /** Per resource: the largest sum on one node, and the largest sum / capacity. */
  maxPerNode: Record<Key | "instances", number>;
  maxShare: Record<Key, number>;
}

/**
 * Checks bound instances against `capacity` (the node's allocatable: what the
 * scheduler may hand out). A node the instances name but `capacity` lacks is
 * over in every resource (it cannot hold anything).
 */
export function checkCapacity(
  capacity: ReadonlyMap<string, Partial<Resources>>,
  bound: Iterable<BoundInstance>,
): CapacityCheck {
  const sums = new Map<string, Record<Key | "instances", number>>();
  for (const b of bound) {
    let s = sums.get(b.node);
    if (!s) sums.set(b.node, (s = { cpuMillis: 0, memoryBytes: 0, pids: 0, diskBytes: 0, instances: 0 }));
    for (const k of CHECKED_RESOURCES) s[k] += b.resources[k] ?? 0;
    s.instances += 1;
  }
  const maxPerNode = { cpuMillis: 0, memoryBytes: 0, pids: 0, diskBytes: 0, instances: 0 };
  const maxShare = { cpuMillis: 0, memoryBytes: 0, pids: 0, diskBytes: 0 };
  const over: string[] = [];
  for (const [node, s] of sums) {
    const cap = capacity.get(node);
    const excess: string[] = [];
    for (const k of CHECKED_RESOURCES) {
      maxPerNode[k] = Math.max(maxPerNode[k], s[k]);
      const c = cap?.[k];
      // Disk is only scheduled on nodes that report it (docs/scheduling.md, "Disk").
      if (k === "diskBytes" && cap && c === undefined) continue;
      if (c !== undefined && c > 0) maxShare[k] = Math.max(maxShare[k], s[k] / c);
      if (s[k] > (c ?? 0)) excess.push(`${k} ${s[k]} > ${c ?? "none"}`);
    }
    maxPerNode.instances = Math.max(maxPerNode.instances, s.instances);
    if (excess.length > 0) over.push(`${node}: ${excess.join(", ")}`);
  }
  return { overcommittedNodes: over.length, examples: over.slice(0, 3).join("; "), maxPerNode, maxShare };
}

/** The check's figures as flat bench results under `prefix` (e.g. "etcd_e2e"). */
export function checkResults(prefix: string, c: CapacityCheck): Record<string, number | string> {
  const r: Record<string, number | string> = {
    [`${prefix}_overcommitted_nodes`]: c.overcommittedNodes,
    [`${prefix}_max_instances_per_node`]: c.maxPerNode.instances,
  };
  for (const k of CHECKED_RESOURCES) {
    r[`${prefix}_max_${k}_per_node`] = c.maxPerNode[k];
    r[`${prefix}_max_${k}_share_of_node`] = Number(c.maxShare[k].toFixed(4));
  }
  if (c.examples) r[`${prefix}_overcommitted_examples`] = c.examples;
  return r;
}
