// The scheduler loop: places unbound instances on nodes with the pure
// placement library, planning on the scheduling snapshot
// (scheduler/snapshot.ts), and commits each pass's bindings in etcd
// transactions (chunked below etcd's --max-txn-ops, see scheduling/commit.ts) guarded by
// the revisions of the nodes (and instances) they used, so two
// passes can never book the same capacity twice. Instances that fit nowhere
// stay Pending with the reason ("memory: insufficient on 1 of 1 nodes");
// instances their namespace's quota has no room for are not placed at all
// (scheduling/quota-gate.ts) and stay Pending with reason QuotaExceeded.
// Each transaction that succeeds is assumed (scheduling/assumed.ts): the next
// pass plans on the informers with this one's writes laid over them, at the
// revisions etcd gave them, instead of waiting for the watches to bring them.
import type { Logger } from "pino";
import { InstanceReason, isFinished, type Instance, type Node, type Resources } from "@grove/api";
import { Keys, type Store, type TxnCompare, type TxnOp } from "../store/store";
import {
  addResources as add,
  DEFAULT_DYNAMIC_HOST_PORTS,
  defaultProfile,
  hostPortRequest,
  placeBatch,
  seededRng,
  withHostPorts,
  zeroResources as zero,
  type PlacementRequest,
  type PlacementResult,
} from "../scheduler";
import { Informer, objectKey } from "./informer";
import { sameLimits, traceLinks, withSpan, WorkQueue, type Span } from "@grove/common";
import { nodeViewsFrom, requestExtras, type BoundInstances } from "../scheduler/snapshot";
import { SnapshotCache } from "../scheduling/snapshot-cache";
import { Assumed } from "../scheduling/assumed";
import { commitChunked, MAX_TXN_OPS, PlacementRaceError, preemptionOps } from "../scheduling/commit";
import type { PortRange } from "../network/subnets";
import { placementSpanAttributes, type SchedulerMetrics } from "../observability/scheduler-telemetry";
import { QuotaGate, type QuotaOf } from "../scheduling/quota-gate";
import { hardOf } from "../namespaces/usage";
import type { StoredNamespace } from "../namespaces/namespace-service";

/** Host ports handed out when an App's port names none (configurable on grove-server). */
export const DEFAULT_HOST_PORT_RANGE: PortRange = DEFAULT_DYNAMIC_HOST_PORTS;

const PASS_KEY = "pass";

function sameResources(a: Resources | undefined, b: Resources): boolean {
  return !!a && sameLimits(a, b);
}

/** A Node as placement reads it: everything but its recorded allocation, heartbeat and condition times. */
export function placementFacts(n: Node | undefined): string {
  if (!n) return "";
  const { resourceVersion: _rv, ...metadata } = n.metadata;
  const { allocated: _a, lastHeartbeatTime: _h, conditions, ...status } = n.status ?? {};
  const conds = conditions?.map(({ lastTransitionTime: _t, ...c }) => c);
  return JSON.stringify([metadata, n.spec, status, conds]);
}

/** Strips the server-filled resourceVersion before an object is written. */
function stored<T extends { metadata: { resourceVersion?: string } }>(obj: T): T {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return { ...obj, metadata } as T;
}

/**
 * GROVE_SCHEDULER_ASSUME=off: wait for the watches to show each pass's
 * bindings before the next pass, as before assumptions (for comparing the two
 * in the scheduler bench; docs/scheduling.md).
 */
export function assumeFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GROVE_SCHEDULER_ASSUME !== "off";
}

/** Lost placement races retried at once (after RACE_RETRY_MS) before the queue's backoff applies. */
const MAX_QUICK_RACE_RETRIES = 5;
const RACE_RETRY_MS = 20;

export class SchedulerController {
  private readonly queue: WorkQueue;
  private passes = 0;
  /** Lost races in a row, retried quickly up to MAX_QUICK_RACE_RETRIES. */
  private races = 0;
  /** A pass about to be queued (passSoon). */
  private soon: NodeJS.Immediate | undefined;
  /** The snapshot a pass plans on, kept from the instances' events (not summed from the whole cache). */
  private readonly snapshot: SnapshotCache;
  /** The informers with this scheduler's committed writes laid over them until their watches confirm them. */
  private readonly assumedNodes: Assumed<Node>;
  private readonly assumedInstances: Assumed<Instance>;

  constructor(
    private readonly store: Store,
    private readonly nodes: Informer<Node>,
    private readonly instances: Informer<Instance>,
    private readonly logger: Logger,
    private readonly seed = 1,
    private readonly hostPortRange: PortRange = DEFAULT_HOST_PORT_RANGE,
    private readonly metrics?: SchedulerMetrics,
    /** Namespace objects, for their quotas (none: no quota is enforced here). */
    private readonly namespaces?: Informer<StoredNamespace>,
    /** Assume committed writes (false: wait for the watches after each pass). */
    private readonly assume = assumeFromEnv(),
  ) {
    this.queue = new WorkQueue({ name: "scheduler", sync: () => this.timedPass(), logger, baseDelayMs: 100 });
    this.assumedNodes = new Assumed(nodes);
    this.assumedInstances = new Assumed(instances);
    this.snapshot = new SnapshotCache(this.assumedInstances);
    // Any change may make room or need placing; one pass handles them all. A Node change that
    // is only its recorded allocation or times (this loop's own writes, a registration of a node
    // known already) changes no placement: at 4,000 hollow nodes registering, a pass per such
    // change (each pass over every node) was a fifth of grove-server's main thread.
    nodes.on((ev) => {
      if (ev.type !== "updated" || placementFacts(ev.object) !== placementFacts(ev.old)) this.passSoon();
    });
    namespaces?.on(() => this.passSoon());
    instances.on((ev) => {
      const i = ev.object;
      if (ev.type === "deleted" || !i.spec.nodeName || isFinished(i)) this.passSoon();
    });
  }

  /**
   * A pass once this turn of the event loop's watch events are in. The queue
   * starts an idle pass at once, and a pass plans synchronously: started from
   * the first event of a watch response that brings an App's 100 new
   * instances, it would place that one alone and the other 99 in the next
   * pass (docs/scheduling.md, "End to end: where the time went").
   */
  private passSoon(): void {
    this.soon ??= setImmediate(() => {
      this.soon = undefined;
      this.queue.add(PASS_KEY);
    });
  }

  trigger(): void {
    this.queue.add(PASS_KEY);
  }

  stop(): void {
    if (this.soon) clearImmediate(this.soon);
    this.soon = undefined;
    this.queue.shutdown();
  }

  /** Resolves once no pass runs, is queued or is about to be (passSoon). */
  async idle(): Promise<void> {
    for (;;) {
      while (this.soon) await new Promise((r) => setImmediate(r));
      await this.queue.idle();
      if (!this.soon) return;
    }
  }

  private async timedPass(): Promise<void> {
    const end = this.metrics?.schedulerPass.startTimer();
    try {
      await this.schedulePass();
    } finally {
      end?.();
    }
  }

  /** One pass: place every unbound, unfinished instance. Throws to retry. */
  async schedulePass(): Promise<void> {
    // Placing on a cache that may be behind etcd books capacity that may be gone; wait (requeued with backoff).
    if (!this.instances.isFresh || !this.nodes.isFresh || this.namespaces?.isFresh === false) {
      throw new Error("the informer caches are stale: not placing");
    }
    const waiting = this.snapshot.pending();
    // Quotas first: what its namespace has no room for is not placed (and books no node).
    // Only namespaces with a quota need the whole cache (their bound instances count).
    const quotas = this.quotas();
    let pending = waiting;
    if (quotas.size > 0) {
      const gate = new QuotaGate(this.assumedInstances.list(), quotas);
      const overQuota: Array<{ inst: Instance; message: string }> = [];
      pending = waiting.filter((i) => {
        const message = gate.admit(i);
        if (message !== undefined) overQuota.push({ inst: i, message });
        return message === undefined;
      });
      await this.recordOverQuota(overQuota);
    }
    const nodes = this.assumedNodes.list();
    const { used, ports, bound } = this.snapshot.views();
    if (pending.length === 0) {
      await this.refreshAllocated(nodes, used);
      return;
    }
    // Part of the trace that created (or changed) one of the pending instances, when there is one.
    const parent = traceLinks.takeAny(
      pending.map((i) => Keys.object("instances", i.metadata.namespace, i.metadata.name)),
    );
    return withSpan("scheduler pass", (span) => this.placePending(pending, nodes, used, ports, bound, span), {
      childOnly: true,
      ...(parent ? { parent } : {}),
      attributes: { "grove.instances.pending": pending.length, "grove.nodes": nodes.length },
    });
  }

  private async placePending(
    pending: Instance[],
    nodes: Node[],
    used: Map<string, Resources>,
    ports: Map<string, Set<number>>,
    bound: BoundInstances,
    span: Span | undefined,
  ): Promise<void> {
    const views = nodeViewsFrom(nodes, used, ports, bound);
    const reqs: PlacementRequest[] = pending.map((i) => ({
      id: objectKey(i),
      app: i.spec.app,
      namespace: i.metadata.namespace ?? "default",
      resources: i.spec.resources,
      ...requestExtras(i),
      ...hostPortRequest(i.spec.ports, this.hostPortRange),
    }));
    const results = placeBatch(reqs, views, defaultProfile(), seededRng(this.seed + this.passes++));
    span?.setAttributes(placementSpanAttributes(reqs, results));

    const now = new Date().toISOString();
    const compares: TxnCompare[] = [];
    const ops: TxnOp<unknown>[] = [];
    // Nodes whose recorded allocation is stale are rewritten in the same
    // transaction as the bindings.
    const touchedNodes = new Map<string, Resources>();
    for (const n of nodes) {
      const want = used.get(n.metadata.name) ?? zero();
      if (!sameResources(n.status?.allocated, want)) touchedNodes.set(n.metadata.name, want);
    }
    let placed = 0;
    const unplaced: Array<{ inst: Instance; reason: string; explain: PlacementResult["explain"] }> = [];

    pending.forEach((inst, k) => {
      const res = results[k];
      if (!res) return;
      if (!res.nodeName) {
        unplaced.push({ inst, reason: res.reason ?? "no node fits", explain: res.explain });
        return;
      }
      const node = res.nodeName;
      // Placement handed out the dynamic host ports with the node.
      const boundPorts = withHostPorts(inst.spec.ports ?? [], res.hostPorts);
      placed++;
      touchedNodes.set(node, add(touchedNodes.get(node) ?? used.get(node) ?? zero(), inst.spec.resources));
      compares.push({
        key: Keys.object("instances", inst.metadata.namespace, inst.metadata.name),
        modRevision: inst.metadata.resourceVersion ?? "0",
      });
      const bound: Instance = {
        ...inst,
        spec: { ...inst.spec, nodeName: node, ...(boundPorts.length ? { ports: boundPorts } : {}) },
        status: {
          state: "Pending",
          reason: "Scheduled",
          message: `assigned to node ${node}`,
          nodeName: node,
          scheduledAt: now,
          explain: res.explain,
        },
      };
      ops.push({
        type: "put",
        key: Keys.object("instances", inst.metadata.namespace, inst.metadata.name),
        value: stored(bound),
      });
      // Preempted instances on the node end in the same transaction as the binding.
      if (res.victims?.length) {
        const ev = preemptionOps(res.victims, (id) => this.assumedInstances.get(id), objectKey(inst), now);
        compares.push(...ev.compares);
        ops.push(...ev.ops);
      }
    });

    for (const [name, allocated] of touchedNodes) {
      const node = this.assumedNodes.get(name);
      if (!node) continue;
      compares.push({ key: Keys.object("nodes", undefined, name), modRevision: node.metadata.resourceVersion ?? "0" });
      ops.push({
        type: "put",
        key: Keys.object("nodes", undefined, name),
        value: stored({ ...node, status: { ...node.status, allocated } }),
      });
    }

    if (ops.length > 0) {
      // Several transactions when the pass is large; a node or instance that
      // changed under us throws, the informers catch up and the pass is
      // retried with backoff.
      let r: Awaited<ReturnType<typeof commitChunked>>;
      try {
        r = await commitChunked(this.store, compares, ops, undefined, undefined, (rev, written) =>
          this.assumeWrites(rev, written),
        );
      } catch (err) {
        // A lost race is expected (the informers were a little behind etcd, or
        // a resize wrote a node): plan again shortly on fresher informers,
        // without the growing backoff of real failures, a few times in a row.
        if (!(err instanceof PlacementRaceError) || ++this.races > MAX_QUICK_RACE_RETRIES) throw err;
        this.logger.debug({ races: this.races }, "placement lost a race; planning again");
        await new Promise((res) => setTimeout(res, RACE_RETRY_MS));
        this.queue.add(PASS_KEY);
        return;
      }
      this.races = 0;
      // Instances that changed under the pass were left out alone; the next pass places them.
      placed -= r.conflicted.length;
      if (r.conflicted.length > 0) {
        this.logger.debug({ conflicted: r.conflicted.length }, "bindings dropped: their instance changed");
        this.queue.add(PASS_KEY);
      }
      this.metrics?.placements.inc({ result: "placed" }, placed);
      this.metrics?.placements.inc(
        { result: "preempted" },
        results.reduce((n, r) => n + (r?.victims?.length ?? 0), 0),
      );
      if (placed > 0) this.logger.info({ placed, transactions: r.transactions }, "placed instances");
      // The next pass plans on the informers with this pass's writes assumed.
      // Without assumptions (or when bindings were dropped: their instances
      // changed, and the next pass should see how), let both watches show
      // this pass first, or it would place the same instances again.
      if (this.assume && r.conflicted.length === 0) return this.recordUnplaced(unplaced);
      const waitStart = performance.now();
      if (r.lastNode !== undefined) await this.nodes.waitFor(r.lastNode, r.revision);
      const nodesMs = performance.now() - waitStart;
      if (r.lastInstance !== undefined) await this.instances.waitFor(r.lastInstance, r.revision);
      const waitedMs = performance.now() - waitStart;
      // A slow watch holds every next pass back: say so (the bench's gaps between passes).
      if (waitedMs > 1000) {
        this.logger.info(
          { nodesMs: Math.round(nodesMs), instancesMs: Math.round(waitedMs - nodesMs), revision: r.revision },
          "waited long for the informers to show this pass's bindings",
        );
      }
    }
    await this.recordUnplaced(unplaced);
  }

  /** A transaction of this scheduler succeeded at `revision`: its node and instance writes show until the watches do. */
  private assumeWrites(revision: string, written: readonly TxnOp<unknown>[]): void {
    if (!this.assume) return;
    for (const op of written) {
      if (op.type !== "put") continue;
      const v = op.value as { kind?: string };
      if (v.kind === "Node") this.assumedNodes.assume(op.value as Node, revision);
      else if (v.kind === "Instance") this.assumedInstances.assume(op.value as Instance, revision);
    }
  }

  /** Why the instances that fit nowhere stay Pending (written once per new reason). */
  private async recordUnplaced(
    unplaced: Array<{ inst: Instance; reason: string; explain: PlacementResult["explain"] }>,
  ): Promise<void> {
    for (const { inst, reason, explain } of unplaced) {
      const st = inst.status;
      if (st?.reason === InstanceReason.Unschedulable && st.message === reason) continue; // nothing new to say
      const key = Keys.object("instances", inst.metadata.namespace, inst.metadata.name);
      const next: Instance = {
        ...inst,
        status: { state: "Pending", reason: InstanceReason.Unschedulable, message: reason, explain },
      };
      const r = await this.store.txn(
        [{ key, modRevision: inst.metadata.resourceVersion ?? "0" }],
        [{ type: "put", key, value: stored(next) }],
      );
      if (!r.succeeded) throw new Error("instance changed while recording why it is unschedulable; retrying");
      this.metrics?.placements.inc({ result: "unschedulable" });
      this.logger.info({ instance: objectKey(inst), reason }, "instance unschedulable");
    }
  }

  /** Quotas by namespace, of the Namespace objects that set one. */
  private quotas(): Map<string, QuotaOf> {
    const out = new Map<string, QuotaOf>();
    for (const ns of this.namespaces?.list() ?? []) {
      const hard = hardOf(ns.spec?.quota);
      if (Object.keys(hard).length > 0) out.set(ns.metadata.name, { hard });
    }
    return out;
  }

  /** Pending, reason QuotaExceeded, the quota named in the message (written once per new message). */
  private async recordOverQuota(held: Array<{ inst: Instance; message: string }>): Promise<void> {
    for (const { inst, message } of held) {
      const st = inst.status;
      if (st?.reason === InstanceReason.QuotaExceeded && st.message === message) continue;
      const key = Keys.object("instances", inst.metadata.namespace, inst.metadata.name);
      const next: Instance = { ...inst, status: { state: "Pending", reason: InstanceReason.QuotaExceeded, message } };
      const r = await this.store.txn(
        [{ key, modRevision: inst.metadata.resourceVersion ?? "0" }],
        [{ type: "put", key, value: stored(next) }],
      );
      if (!r.succeeded) throw new Error("instance changed while recording that it exceeds its quota; retrying");
      this.logger.info({ instance: objectKey(inst), message }, "instance exceeds its namespace's quota");
    }
  }

  /**
   * Keeps each Node's status.allocated equal to what is bound to it: the stale ones in
   * transactions of up to MAX_TXN_OPS nodes, each guarded by its node's revision (one
   * round trip per node used to hold the pass for seconds when many nodes joined at once).
   */
  private async refreshAllocated(nodes: Node[], used: Map<string, Resources>): Promise<void> {
    const stale: Node[] = [];
    for (const node of nodes) {
      const want = used.get(node.metadata.name) ?? zero();
      if (!sameResources(node.status?.allocated, want))
        stale.push({ ...node, status: { ...node.status, allocated: want } });
    }
    for (let i = 0; i < stale.length; i += MAX_TXN_OPS) {
      const batch = stale.slice(i, i + MAX_TXN_OPS);
      const keys = batch.map((n) => Keys.object("nodes", undefined, n.metadata.name));
      const r = await this.store.txn(
        batch.map((n, k) => ({ key: keys[k]!, modRevision: n.metadata.resourceVersion ?? "0" })),
        batch.map((n, k) => ({ type: "put" as const, key: keys[k]!, value: stored(n) })),
      );
      if (!r.succeeded) {
        const names = batch.map((n) => n.metadata.name);
        throw new Error(`a node changed while updating the allocations of ${names.join(", ")}; retrying`);
      }
      if (this.assume) for (const n of batch) this.assumedNodes.assume(n, r.revision);
    }
  }
}
