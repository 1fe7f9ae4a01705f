// The scheduling snapshot kept current from the instances informer's events,
// instead of computed from the whole cache at each pass (scheduler/snapshot.ts
// computes the same from a list, for `apply --plan`, `get capacity` and
// resizes). At 50,000 instances a pass used to visit and sum every instance
// to place a handful; now an event marks the nodes it touches, and a pass
// recomputes only those nodes from their own instances.
import { isFinished, type Instance, type Resources } from "@grove/api";
import { addResources, zeroResources } from "../scheduler";
import { holdsHostPorts, type BoundInstances } from "../scheduler/snapshot";
import { objectKey, type InformerHandler } from "../controllers/informer";
import type { PlacedInstance } from "../scheduler/types";

/** What SnapshotCache follows: an informer's cache and events. */
export interface InstanceSource {
  list(): Instance[];
  on(handler: InformerHandler<Instance>): void;
}

interface NodeEntry {
  allocated: Resources;
  ports: Set<number>;
  instances: PlacedInstance[];
  appCounts: Map<string, number>;
}

/** Unbound and unfinished: what a pass places. */
function isPending(i: Instance): boolean {
  return !i.spec.nodeName && !isFinished(i);
}

export class SnapshotCache {
  /** Instances bound to each node (spec.nodeName), finished ones included (they may hold ports). */
  private readonly onNode = new Map<string, Map<string, Instance>>();
  private readonly pendingByKey = new Map<string, Instance>();
  private readonly entries = new Map<string, NodeEntry>();
  /** Nodes whose entry is behind their instances. */
  private readonly dirty = new Set<string>();

  constructor(source: InstanceSource) {
    for (const i of source.list()) this.add(i);
    source.on((ev) => {
      if (ev.type === "deleted") this.remove(ev.object);
      else if (ev.type === "updated" && ev.old.spec.nodeName !== ev.object.spec.nodeName) {
        this.remove(ev.old);
        this.add(ev.object);
      } else this.add(ev.object); // in place: a node's instances keep their order
    });
  }

  /** Unbound, unfinished instances, oldest first (ties in the order the cache got them). */
  pending(): Instance[] {
    return [...this.pendingByKey.values()].sort((a, b) =>
      (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? ""),
    );
  }

  /** allocations(), usedHostPorts() and boundInstances() of scheduler/snapshot.ts, for every node with instances. */
  views(): { used: Map<string, Resources>; ports: Map<string, Set<number>>; bound: BoundInstances } {
    for (const node of this.dirty) this.recompute(node);
    this.dirty.clear();
    const used = new Map<string, Resources>();
    const ports = new Map<string, Set<number>>();
    const bound: BoundInstances = new Map();
    for (const [node, e] of this.entries) {
      if (e.instances.length > 0) {
        used.set(node, e.allocated);
        bound.set(node, { instances: e.instances, appCounts: e.appCounts });
      }
      if (e.ports.size > 0) ports.set(node, e.ports);
    }
    return { used, ports, bound };
  }

  private recompute(node: string): void {
    const insts = this.onNode.get(node);
    if (!insts) {
      this.entries.delete(node);
      return;
    }
    const e: NodeEntry = { allocated: zeroResources(), ports: new Set(), instances: [], appCounts: new Map() };
    for (const inst of insts.values()) {
      if (holdsHostPorts(inst)) for (const p of inst.spec.ports ?? []) if (p.hostPort) e.ports.add(p.hostPort);
      if (isFinished(inst)) continue;
      e.allocated = addResources(e.allocated, inst.spec.resources);
      const appKey = `${inst.metadata.namespace ?? "default"}/${inst.spec.app}`;
      e.appCounts.set(appKey, (e.appCounts.get(appKey) ?? 0) + 1);
      e.instances.push({
        id: `${inst.metadata.namespace ?? "default"}/${inst.metadata.name}`,
        appKey,
        priority: inst.spec.priority ?? 0,
        resources: inst.spec.resources,
      });
    }
    this.entries.set(node, e);
  }

  private add(i: Instance): void {
    const key = objectKey(i);
    if (isPending(i)) this.pendingByKey.set(key, i);
    else this.pendingByKey.delete(key);
    const node = i.spec.nodeName;
    if (!node) return;
    let m = this.onNode.get(node);
    if (!m) this.onNode.set(node, (m = new Map()));
    m.set(key, i);
    this.dirty.add(node);
  }

  private remove(i: Instance): void {
    const key = objectKey(i);
    this.pendingByKey.delete(key);
    const node = i.spec.nodeName;
    if (!node) return;
    const m = this.onNode.get(node);
    m?.delete(key);
    if (m?.size === 0) this.onNode.delete(node);
    this.dirty.add(node);
  }
}
