// Node lifecycle: a node is Ready while its agent's stream heartbeats.
//
// Presence is measured where it can be measured without comparing clocks of
// different machines: the grove-server replica holding the agent's Connect
// stream times the silence between messages with its own monotonic clock and,
// past the grace, writes Ready=Unknown itself (agent-gateway.ts). So that
// presence costs etcd little, that replica writes the node's presence key
// (Keys.heartbeat) only when the stream registers and then every
// PRESENCE_REFRESH_MS, not on every heartbeat; the key names the replica, for
// logs / exec / stats.
//
// This controller, on the leader, adds what a replica cannot do for itself:
//  - the fallback for a replica that died holding streams: a Ready node whose
//    presence key has not changed for PRESENCE_STALE_MS, by the leader's own
//    monotonic clock since it last saw the key change, goes Unknown;
//  - suspect instances (Diego's model): every unfinished instance bound to a
//    node that is not Ready becomes state Unknown at once, so it is neither
//    counted as running nor routed to, and the App controller places a
//    replacement. The write compares the node's revision, so it cannot land
//    after the node came back; the agent's reports on re-registering then
//    bring the instances' real states back.
import type { Logger } from "pino";
import {
  InstanceReason,
  NodeReadyReason,
  isFinished,
  nodeIsReady,
  readyStatus,
  type Instance,
  type Node,
  type NodeCondition,
} from "@grove/api";
import { Keys, type Store } from "../store/store";
import { Informer, objectKey } from "./informer";
import { WorkQueue } from "@grove/common";

/** Agent silence after which the replica holding its stream marks the node Unknown (--node-grace). */
export const NODE_GRACE_MS = 5_000;
/** How often agents heartbeat (sent to them at registration). */
export const HEARTBEAT_INTERVAL_MS = 1_000;
/** How often the replica holding a stream rewrites the node's presence key. */
export const PRESENCE_REFRESH_MS = 5_000;
/** A presence key unchanged this long means no live replica holds the node's stream. */
export const PRESENCE_STALE_MS = 3 * PRESENCE_REFRESH_MS;

/** The value of a node's presence key (Keys.heartbeat). */
export interface Heartbeat {
  /** When the holding replica last heard from the agent (its wall clock; for people, never compared). */
  time: string;
  /** The grove-server replica (its HTTP URL) holding the node's agent stream. */
  server?: string;
}

export type ReadyStatus = NodeCondition["status"];

/** Monotonic milliseconds (performance.now()); injectable for tests. */
export type MonotonicClock = () => number;
export const monotonicNow: MonotonicClock = () => performance.now();

export function readyCondition(status: ReadyStatus, reason: string, message: string, now: Date): NodeCondition {
  return { type: "Ready", status, reason, message, lastTransitionTime: now.toISOString() };
}

/** Node with its Ready condition set (other conditions kept). */
export function withReady(node: Node, cond: NodeCondition): Node {
  const others = (node.status?.conditions ?? []).filter((c) => c.type !== "Ready");
  return { ...node, status: { ...node.status, conditions: [...others, cond] } };
}

/** The node's presence key must still be at this revision ("0": absent) for a write to apply. */
export interface PresenceFence {
  node: string;
  modRevision: string;
}

/**
 * Marks a Ready node Ready=Unknown and deletes its presence key, in one
 * transaction that compares the node's revision and the presence key's
 * (`fence`): when another replica re-registered the node in the meantime the
 * presence key moved and nothing is written. Returns whether it wrote.
 */
export async function markNodeUnknown(
  store: Store,
  fence: PresenceFence,
  reason: string,
  message: string,
  lastHeartbeat?: Date,
): Promise<boolean> {
  const key = Keys.object("nodes", undefined, fence.node);
  const presence = Keys.heartbeat(fence.node);
  for (let attempt = 0; attempt < 5; attempt++) {
    const kv = await store.get<Node>(key);
    if (!kv || readyStatus(kv.value) !== "True") return false;
    const node: Node = {
      ...withReady(kv.value, readyCondition("Unknown", reason, message, new Date())),
      metadata: kv.value.metadata,
    };
    if (lastHeartbeat) node.status = { ...node.status, lastHeartbeatTime: lastHeartbeat.toISOString() };
    const r = await store.txn(
      [
        { key, modRevision: kv.modRevision },
        { key: presence, modRevision: fence.modRevision },
      ],
      [
        { type: "put", key, value: node },
        ...(fence.modRevision !== "0" ? [{ type: "delete" as const, key: presence }] : []),
      ],
    );
    if (r.succeeded) return true;
    const now = await store.get(presence);
    if ((now?.modRevision ?? "0") !== fence.modRevision) return false; // someone holds the stream again
  }
  return false;
}

/** An unfinished instance bound to a node that is not Ready, not yet marked Unknown. */
export function needsSuspect(inst: Instance): boolean {
  const st = inst.status;
  if (st && (isFinished(inst) || st.state === "Unknown")) return false;
  return inst.spec.nodeName !== undefined;
}

export interface NodeLifecycleOptions {
  presenceStaleMs?: number;
  /** How often the leader looks at the presence keys. */
  intervalMs?: number;
  clock?: MonotonicClock;
}

export class NodeLifecycleController {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly queue: WorkQueue;
  /** Per node: the presence key revision last seen ("0": absent) and when, by our monotonic clock, it was first seen. */
  private readonly seen = new Map<string, { modRevision: string; since: number }>();
  /** When (monotonic) the presence keys were last read. */
  private lastCheck: number | undefined;
  private readonly presenceStaleMs: number;
  private readonly intervalMs: number;
  private readonly clock: MonotonicClock;

  constructor(
    private readonly store: Store,
    private readonly nodes: Informer<Node>,
    private readonly instances: Informer<Instance>,
    private readonly logger: Logger,
    opts: NodeLifecycleOptions = {},
  ) {
    this.presenceStaleMs = opts.presenceStaleMs ?? PRESENCE_STALE_MS;
    this.intervalMs = opts.intervalMs ?? 1_000;
    this.clock = opts.clock ?? monotonicNow;
    this.queue = new WorkQueue({ name: "node-lifecycle", sync: (k) => this.sync(k), logger });
    nodes.on((ev) => this.queue.add(ev.object.metadata.name));
    instances.on((ev) => {
      if (ev.object.spec.nodeName) this.queue.add(ev.object.spec.nodeName);
    });
  }

  start(): void {
    for (const n of this.nodes.list()) this.queue.add(n.metadata.name);
    this.timer = setInterval(() => void this.checkPresence(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.queue.shutdown();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** The fallback: Ready nodes whose presence no live replica refreshes go Unknown. */
  async checkPresence(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      let beats;
      try {
        beats = await this.store.list<Heartbeat>(Keys.heartbeat(""));
      } catch (err) {
        // Time we could not look is not time the keys stood still: start again when the store answers.
        this.seen.clear();
        throw err;
      }
      const revs = new Map<string, string>();
      for (const kv of beats.items) revs.set(kv.key.slice(Keys.heartbeat("").length), kv.modRevision);
      const now = this.clock();
      // Nor is time this process was not running (SIGSTOP, a long pause): the replicas
      // may have refreshed the keys meanwhile only for us to see the last value.
      const gap = this.lastCheck === undefined ? 0 : now - this.lastCheck;
      this.lastCheck = now;
      if (gap > 2 * this.intervalMs + 1_000) this.seen.clear();
      for (const node of this.nodes.list()) {
        const name = node.metadata.name;
        const rev = revs.get(name) ?? "0";
        const prev = this.seen.get(name);
        if (!prev || prev.modRevision !== rev) {
          this.seen.set(name, { modRevision: rev, since: now });
          continue;
        }
        if (!nodeIsReady(node) || now - prev.since <= this.presenceStaleMs) continue;
        const secs = Math.round((now - prev.since) / 1000);
        const message =
          rev === "0"
            ? `no grove-server replica holds the agent's stream (for ${secs}s)`
            : `the grove-server replica holding the agent's stream stopped refreshing its presence ${secs}s ago`;
        if (
          await markNodeUnknown(this.store, { node: name, modRevision: rev }, NodeReadyReason.NodePresenceLost, message)
        ) {
          this.logger.warn({ node: name, reason: message }, "node not ready");
        }
      }
      for (const name of [...this.seen.keys()]) if (!this.nodes.get(name)) this.seen.delete(name);
    } catch (err) {
      this.logger.warn({ err }, "node presence check failed; will retry");
    } finally {
      this.running = false;
    }
  }

  /** Marks the unfinished instances of a node that is not Ready Unknown. */
  async sync(name: string): Promise<void> {
    const node = this.nodes.get(name);
    if (node && nodeIsReady(node)) return;
    // A deleted node's instances are lost too (the compare then wants the node key absent).
    const cond = node ? node.status?.conditions?.find((c) => c.type === "Ready") : undefined;
    const nodeKey = Keys.object("nodes", undefined, name);
    const suspects = this.instances.list().filter((i) => i.spec.nodeName === name && needsSuspect(i));
    let stale = false;
    for (const inst of suspects) {
      const key = Keys.object("instances", inst.metadata.namespace, inst.metadata.name);
      const was = inst.status?.state ?? "Pending";
      const { resourceVersion: _rv, ...metadata } = inst.metadata;
      const next: Instance = {
        ...inst,
        metadata,
        status: {
          ...inst.status,
          state: "Unknown",
          nodeName: name,
          reason: InstanceReason.NodeNotReady,
          message: node
            ? `node ${name} is not Ready (${cond?.status ?? "Unknown"}` +
              `${cond?.reason ? `: ${cond.reason}` : ""}); the instance was ${was}`
            : `node ${name} was deleted; the instance was ${was}`,
        },
      };
      // Only while the node is still at the revision we judged it by.
      const r = await this.store.txn(
        [
          { key: nodeKey, modRevision: node?.metadata.resourceVersion ?? "0" },
          { key, modRevision: inst.metadata.resourceVersion ?? "0" },
        ],
        [{ type: "put", key, value: next }],
      );
      if (!r.succeeded) {
        stale = true;
        continue;
      }
      this.logger.info({ instance: objectKey(inst), uid: inst.metadata.uid, node: name, was }, "instance unknown");
    }
    if (stale) throw new Error(`node ${name} or its instances changed while marking them Unknown; retrying`);
  }
}
