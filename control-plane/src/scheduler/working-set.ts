// A mutable working copy of the nodes for a batch or a simulation: placements
// are booked on it one after the other, and it is the shape cache place()
// reads (it knows which nodes changed since a shape was last evaluated).

import type { FilterChain } from "./feasibility";
import { appKeyOf } from "./filters";
import { placeWith, type ShapeCache } from "./place";
import { withoutInstances } from "./preempt";
import { nameHash } from "./rank";
import { addResources } from "./resources";
import { shapeKey, ShapeIndex } from "./shape-index";
import type { Resources } from "@grove/api";
import type {
  NodeView,
  PlacedInstance,
  PlacementContext,
  PlacementRequest,
  PlacementResult,
  Profile,
  Rng,
} from "./types";

/** Most shape indexes a working set keeps (about 2^19 node entries in all, 16..128). */
function shapeCap(n: number): number {
  return Math.max(16, Math.min(128, Math.floor(2 ** 19 / Math.max(1, n))));
}

/**
 * Shared copies of resource amounts: of() returns the same object for equal
 * amounts (cpu, memory, pids and disk; the fields Resources has), for the first
 * few distinct amounts it is given (a cluster's machine shapes, its empty
 * nodes), else the amounts themselves. The objects are never changed in place
 * (bind() and evict() replace a node's `allocated`), so sharing them is safe.
 */
class Amounts {
  private readonly seen: Resources[] = [];
  of(a: Resources): Resources {
    const seen = this.seen;
    for (let k = 0; k < seen.length; k++) {
      const s = seen[k]!;
      if (
        s.cpuMillis === a.cpuMillis &&
        s.memoryBytes === a.memoryBytes &&
        s.pids === a.pids &&
        s.diskBytes === a.diskBytes
      ) {
        return s;
      }
    }
    if (seen.length >= 8) return a;
    const copy: Resources = { cpuMillis: a.cpuMillis, memoryBytes: a.memoryBytes, pids: a.pids };
    if (a.diskBytes !== undefined) copy.diskBytes = a.diskBytes;
    seen.push(copy);
    return copy;
  }
}

/**
 * A mutable working copy of the nodes for a batch; copies a node's maps the
 * first time it changes. Change the nodes only through bind() and evict():
 * place() caches verdicts and scores per request shape and re-evaluates only
 * the nodes those two touched.
 */
export class WorkingSet implements ShapeCache {
  readonly nodes: NodeView[];
  private readonly index = new Map<string, number>();
  private readonly owned = new Set<number>();
  /** Indices of changed nodes, in order; log[0] is change number logBase. */
  private log: number[] = [];
  private logBase = 0;
  /** Shape indexes, least recently used first. */
  private readonly shapes = new Map<string, ShapeIndex>();
  /** Shapes seen once (an index is built on the second request of a shape). */
  private readonly sightings = new Set<string>();
  /** Per node: the replay of the change log that last evaluated it (lookup). */
  private readonly stamps: Int32Array;
  private replays = 0;

  constructor(nodes: readonly NodeView[]) {
    // One object shape for every node keeps the hot loop's property reads monomorphic, and nodes
    // of equal amounts share one object (Amounts): a scan then reads a node's amounts from a
    // few objects that stay in the CPU's cache rather than from two of its own per node.
    const allocatable = new Amounts();
    const allocated = new Amounts();
    this.nodes = nodes.map((n) => ({
      name: n.name,
      ready: n.ready,
      unschedulable: n.unschedulable,
      allocatable: allocatable.of(n.allocatable),
      allocated: allocated.of(n.allocated),
      labels: n.labels,
      usedHostPorts: n.usedHostPorts,
      taints: n.taints,
      appCounts: n.appCounts,
      instances: n.instances,
    }));
    this.nodes.forEach((n, i) => this.index.set(n.name, i));
    this.stamps = new Int32Array(this.nodes.length);
  }

  /**
   * place() on these nodes, with the same answer (node, explain, ports, rng
   * draws), faster for repeated request shapes: the chain's verdicts and the
   * totals are cached per shape (shape-index.ts) when every applicable filter
   * and scorer is of scope "node" and the profile does not sample.
   */
  place(req: PlacementRequest, profile: Profile, rng: Rng): PlacementResult {
    return placeWith(req, this.nodes, profile, rng, this);
  }

  /** ShapeCache: the shape's index brought up to date (built on a shape's second request). */
  lookup(req: PlacementRequest, chain: FilterChain, profile: Profile, ctx: PlacementContext): ShapeIndex | undefined {
    const nodes = this.nodes;
    const n = nodes.length;
    const key = shapeKey(req, chain.filters, profile);
    if (key === undefined) return undefined;
    let shape = this.shapes.get(key);
    const end = this.logBase + this.log.length;
    if (shape === undefined) {
      if (!this.sightings.has(key)) {
        if (this.sightings.size >= 4096) this.sightings.clear();
        this.sightings.add(key);
        return undefined;
      }
      this.sightings.delete(key);
      if (this.shapes.size >= shapeCap(n)) this.shapes.delete(this.shapes.keys().next().value!);
      shape = new ShapeIndex(chain, profile, n);
      shape.build(req, nodes, ctx);
    } else {
      this.shapes.delete(key); // re-inserted below: most recently used last
      if (shape.seen < this.logBase || end - shape.seen > n / 2) {
        shape.build(req, nodes, ctx);
      } else {
        // A node that changed several times (packing fills one node after the other) is evaluated
        // once, in its current state: update() reads nothing else, so once is the same as each time.
        const stamp = ++this.replays;
        const stamps = this.stamps;
        for (let p = shape.seen; p < end; p++) {
          const i = this.log[p - this.logBase]!;
          if (stamps[i] === stamp) continue;
          stamps[i] = stamp;
          shape.update(i, req, nodes[i]!, ctx);
        }
      }
    }
    shape.seen = end;
    this.shapes.set(key, shape);
    return shape;
  }

  private hashes: Uint32Array | undefined;
  /** ShapeCache: the nodes' name hashes (the tie-break's), computed once. */
  nameHashes(): Uint32Array {
    if (!this.hashes) this.hashes = Uint32Array.from(this.nodes, (node) => nameHash(node.name));
    return this.hashes;
  }

  private changed(i: number): void {
    this.log.push(i);
    if (this.log.length > 4 * this.nodes.length + 1024) {
      // Indexes further behind than this rebuild anyway.
      this.logBase += this.log.length;
      this.log = [];
    }
  }

  get(name: string): NodeView | undefined {
    const i = this.index.get(name);
    return i === undefined ? undefined : this.nodes[i];
  }

  private own(name: string): NodeView & { appCounts: Map<string, number> } {
    const i = this.index.get(name)!;
    let node = this.nodes[i]!;
    if (!this.owned.has(i)) {
      node = {
        name: node.name,
        ready: node.ready,
        unschedulable: node.unschedulable,
        allocatable: node.allocatable,
        allocated: { ...node.allocated },
        labels: node.labels,
        usedHostPorts: node.usedHostPorts ? new Set(node.usedHostPorts) : undefined,
        taints: node.taints,
        appCounts: new Map(node.appCounts ?? []),
        instances: [...(node.instances ?? [])],
      };
      this.nodes[i] = node;
      this.owned.add(i);
    }
    return node as NodeView & { appCounts: Map<string, number> };
  }

  /**
   * Books a placed request on its node, with the dynamic host ports
   * placement handed out to it (PlacementResult.hostPorts).
   */
  bind(req: PlacementRequest, nodeName: string, dynamicPorts?: readonly number[]): void {
    const node = this.own(nodeName);
    this.changed(this.index.get(nodeName)!);
    node.allocated = addResources(node.allocated, req.resources);
    const key = appKeyOf(req);
    node.appCounts.set(key, (node.appCounts.get(key) ?? 0) + 1);
    const hostPorts = dynamicPorts?.length ? [...(req.hostPorts ?? []), ...dynamicPorts] : req.hostPorts;
    if (hostPorts && hostPorts.length > 0) {
      const ports = new Set(node.usedHostPorts ?? []);
      for (const p of hostPorts) ports.add(p);
      node.usedHostPorts = ports;
    }
    const placed: PlacedInstance = {
      id: req.id,
      appKey: key,
      priority: req.priority ?? 0,
      resources: req.resources,
      ...(hostPorts ? { hostPorts } : {}),
    };
    (node.instances as PlacedInstance[]).push(placed);
  }

  /** Removes preempted instances from their node. */
  evict(nodeName: string, ids: readonly string[]): void {
    const node = this.get(nodeName);
    if (!node) return;
    const gone = (node.instances ?? []).filter((i) => ids.includes(i.id));
    const i = this.index.get(nodeName)!;
    this.nodes[i] = withoutInstances(this.own(nodeName), gone);
    this.changed(i);
  }
}
