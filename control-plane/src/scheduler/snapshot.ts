// The scheduling snapshot: what the placement library plans on, computed from
// the stored Nodes and Instances. Pure (no I/O, no clock), so the scheduler
// loop, `apply --plan`, `get capacity` and a resize in place all see the
// cluster the same way: a node's allocation is the sum of its bound,
// unfinished instances (isFinished, @grove/api), its used host ports theirs,
// those of finished instances its agent has not released yet, and those the
// Node holds for deleted or overwritten instances (status.heldHostPorts).
import {
  holdsHostPorts as holdsHostPortsRule,
  isFinished,
  nodeHeldHostPorts,
  nodeIsReady,
  type Instance,
  type Node,
  type Resources,
} from "@grove/api";
import { addResources, zeroResources } from "./index";
import type { NodeView, PlacedInstance, PlacementRequest, Taint } from "./types";

/** Per node: the instances bound to it and how many of each App ("namespace/app") it runs. */
export type BoundInstances = Map<string, { instances: PlacedInstance[]; appCounts: Map<string, number> }>;

/** Per node: instances bound to it (unfinished) and counts per "namespace/app". */
export function boundInstances(instances: readonly Instance[]): BoundInstances {
  const out: BoundInstances = new Map();
  for (const inst of instances) {
    const node = inst.spec.nodeName;
    if (!node || isFinished(inst)) continue;
    let e = out.get(node);
    if (!e) out.set(node, (e = { instances: [], appCounts: new Map() }));
    const appKey = `${inst.metadata.namespace ?? "default"}/${inst.spec.app}`;
    e.appCounts.set(appKey, (e.appCounts.get(appKey) ?? 0) + 1);
    e.instances.push({
      id: `${inst.metadata.namespace ?? "default"}/${inst.metadata.name}`,
      appKey,
      priority: inst.spec.priority ?? 0,
      resources: inst.spec.resources,
    });
  }
  return out;
}

/** The node facts beyond resources: taints, App counts and bound instances. */
export function nodeExtras(
  node: Node,
  bound: ReadonlyMap<string, { instances: PlacedInstance[]; appCounts: Map<string, number> }>,
): { taints?: Taint[]; appCounts: Map<string, number>; instances: PlacedInstance[] } {
  const b = bound.get(node.metadata.name);
  return {
    ...(node.spec.taints ? { taints: node.spec.taints } : {}),
    appCounts: b?.appCounts ?? new Map(),
    instances: b?.instances ?? [],
  };
}

/** Priority and placement rules of an instance, as the library takes them. */
export function requestExtras(inst: Instance): Pick<PlacementRequest, "priority" | "placement"> {
  return {
    ...(inst.spec.priority !== undefined ? { priority: inst.spec.priority } : {}),
    ...(inst.spec.placement ? { placement: inst.spec.placement } : {}),
  };
}

/** What every node has allocated: the sum of its bound, unfinished instances (disk included). */
export function allocations(instances: readonly Instance[]): Map<string, Resources> {
  const out = new Map<string, Resources>();
  for (const inst of instances) {
    const node = inst.spec.nodeName;
    if (!node || isFinished(inst)) continue;
    out.set(node, addResources(out.get(node) ?? zeroResources(), inst.spec.resources));
  }
  return out;
}

/**
 * Whether an instance's host ports are in use on its node: while it is bound
 * and unfinished, and after it finished until its agent reports it released
 * (status.releasedAt). An instance the control plane marks stopped (a rolling
 * update's old one, a superseded or drained one) still runs its stop grace
 * with its ports' DNAT rules in place; a new instance given one of its ports
 * then would get the old process's traffic. Once deleted or overwritten, its
 * node holds them (Node.status.heldHostPorts, @grove/api host-port-holds.ts).
 */
export const holdsHostPorts = holdsHostPortsRule;

/** Host ports in use on every node: those of the instances that hold them (holdsHostPorts). */
export function usedHostPorts(instances: readonly Instance[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const inst of instances) {
    const node = inst.spec.nodeName;
    if (!node || !holdsHostPorts(inst)) continue;
    for (const p of inst.spec.ports ?? []) {
      if (!p.hostPort) continue;
      let set = out.get(node);
      if (!set) out.set(node, (set = new Set()));
      set.add(p.hostPort);
    }
  }
  return out;
}

/**
 * The placement library's view of the nodes, from the objects: what the
 * scheduler loop, `apply --plan` and `get capacity` all plan on. `used` and
 * `ports` may be passed when the caller has them already (the views share
 * the port sets).
 */
export function nodeViews(
  nodes: readonly Node[],
  instances: readonly Instance[],
  used: ReadonlyMap<string, Resources> = allocations(instances),
  ports: ReadonlyMap<string, Set<number>> = usedHostPorts(instances),
): NodeView[] {
  return nodeViewsFrom(nodes, used, ports, boundInstances(instances));
}

/** nodeViews from the per-node sums already made (the scheduler's SnapshotCache keeps them). */
export function nodeViewsFrom(
  nodes: readonly Node[],
  used: ReadonlyMap<string, Resources>,
  ports: ReadonlyMap<string, Set<number>>,
  bound: BoundInstances,
): NodeView[] {
  return nodes.map((n) => ({
    name: n.metadata.name,
    ready: nodeIsReady(n),
    unschedulable: n.spec.unschedulable === true,
    allocatable: n.status?.allocatable ?? zeroResources(),
    allocated: used.get(n.metadata.name) ?? zeroResources(),
    labels: n.metadata.labels ?? {},
    ...nodeExtras(n, bound),
    usedHostPorts: withHeld(ports.get(n.metadata.name), nodeHeldHostPorts(n)),
  }));
}

/** A node's used host ports with those it holds for gone instances (a new set: `used` may be shared). */
function withHeld(used: Set<number> | undefined, held: readonly number[]): Set<number> {
  if (held.length === 0) return used ?? new Set<number>();
  return new Set([...(used ?? []), ...held]);
}
