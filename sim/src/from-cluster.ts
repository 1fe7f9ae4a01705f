// grove-sim --from-cluster: snapshot a live cluster's nodes and instances
// through the API and turn them into a cluster description and a workload, so
// the same instances can be repacked under every profile.
import { isFinished, type GroveClient, type Instance, type Node, type Resources } from "@grove/api";
import type { ClusterSpec, NodePool } from "./cluster";
import type { WorkItem, Workload } from "./workload";

export interface ClusterSnapshot {
  cluster: ClusterSpec;
  workload: Workload;
  /** Nodes with at least one instance bound now. */
  liveNodesUsed: number;
}

/** Pools of nodes with the same allocatable resources (labels are not kept). */
export function snapshotFrom(nodes: readonly Node[], instances: readonly Instance[]): ClusterSnapshot {
  const pools = new Map<string, NodePool>();
  for (const n of [...nodes].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const a: Resources | undefined = n.status?.allocatable;
    if (!a) continue;
    const key = `${a.cpuMillis}/${a.memoryBytes}/${a.pids}/${a.diskBytes ?? ""}`;
    const pool = pools.get(key);
    if (pool) pool.count++;
    else pools.set(key, { name: `shape${pools.size}`, count: 1, node: { ...a } });
  }
  const live = instances
    .filter((i) => !isFinished(i))
    .sort((a, b) => (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? ""));
  const items: WorkItem[] = live.map((i) => ({
    time: 0,
    id: `${i.metadata.namespace ?? "default"}/${i.metadata.name}`,
    app: `${i.metadata.namespace ?? "default"}/${i.spec.app}`,
    resources: i.spec.resources,
    priority: i.spec.priority ?? 0,
  }));
  const used = new Set(live.map((i) => i.spec.nodeName).filter((n): n is string => !!n));
  return {
    cluster: { pools: [...pools.values()] },
    workload: { name: "live cluster", items, departures: [] },
    liveNodesUsed: used.size,
  };
}

export async function fromCluster(client: GroveClient): Promise<ClusterSnapshot> {
  const [nodes, instances] = await Promise.all([client.list("Node"), client.list("Instance", { allNamespaces: true })]);
  return snapshotFrom(nodes.items, instances.items);
}
