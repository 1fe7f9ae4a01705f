// Node lifecycle: a node is Ready while its agent's stream heartbeats.
//
// Presence is measured where it can be measured without comparing clocks of
// different machines: the grove-server replica holding the agent's Connect
// stream times the silence between messages with its own monotonic clock and,
// past the grace, writes Ready=Unknown itself (agent-gateway.ts). So that
// presence costs etcd little, that replica writes the node's presence key
// (Keys.heartbeat) only when the stream registers (and deletes it when the
// node is lost); what shows it still holds the stream is its own replica key,
// rewritten every PRESENCE_REFRESH_MS for all its nodes at once
// (nodes/presence.ts). The presence key names the replica, for logs / exec / stats.
//
// This controller, on the leader, adds what a replica cannot do for itself:
//  - the fallback for a replica that died holding streams: a Ready node whose
//    presence key and holder's replica key have not changed for
//    PRESENCE_STALE_MS, by the leader's own monotonic clock since it last saw
//    one change, goes Unknown;
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
/**
 * How often agents heartbeat (sent to them at registration). Detection is the grace's (5 s)
 * whatever the interval; 2 s leaves an agent or replica 3 s of stall before a beat is late, and
 * halves the beats of 1 s: each beat and its answer were most of a replica's steady CPU (0.157
 * core at 1,000 hollow nodes with 1 s, 0.086 with 2 s, 5 December).
 */
export const HEARTBEAT_INTERVAL_MS = 2_000;
/** How often a replica rewrites its replica presence key (nodes/presence.ts), vouching for the streams it holds. */
export const PRESENCE_REFRESH_MS = 5_000;
/** A node's presence key and its holder's replica key unchanged this long: no live replica holds the stream. */
export const PRESENCE_STALE_MS = 3 * PRESENCE_REFRESH_MS;
/** A replica key unchanged this long belongs to a replica that is gone: the leader removes it. */
export const REPLICA_BEAT_FORGET_MS = 10 * PRESENCE_STALE_MS;

export type { Heartbeat } from "../nodes/presence";
import { REPLICA_PRESENCE_PREFIX, listReplicaBeats, presenceToken, type Heartbeat } from "../nodes/presence";

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
  /**
   * Per node: its presence token last seen (presenceToken: the presence key's
   * revision and its holder's beat revision) with the presence key's own
   * revision (the fence), and when, by our monotonic clock, it was first seen.
   */
  private readonly seen = new Map<string, { token: string; modRevision: string; since: number }>();
  /** Per replica key: its revision last seen and when (monotonic), to forget replicas long gone. */
  private readonly replicasSeen = new Map<string, { modRevision: string; since: number }>();
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
      let replicas;
      try {
        // Two ranges, however many nodes: their presence keys and the replicas' beats.
        [beats, replicas] = await Promise.all([
          this.store.list<Heartbeat>(Keys.heartbeat("")),
          listReplicaBeats(this.store),
        ]);
      } catch (err) {
        // Time we could not look is not time the keys stood still: start again when the store answers.
        this.seen.clear();
        this.replicasSeen.clear();
        throw err;
      }
      const presence = new Map<string, (typeof beats.items)[number]>();
      for (const kv of beats.items) presence.set(kv.key.slice(Keys.heartbeat("").length), kv);
      const now = this.clock();
      // Nor is time this process was not running (SIGSTOP, a long pause): the replicas
      // may have refreshed the keys meanwhile only for us to see the last value.
      const gap = this.lastCheck === undefined ? 0 : now - this.lastCheck;
      this.lastCheck = now;
      if (gap > 2 * this.intervalMs + 1_000) {
        this.seen.clear();
        this.replicasSeen.clear();
      }
      for (const node of this.nodes.list()) {
        const name = node.metadata.name;
        const kv = presence.get(name);
        const rev = kv?.modRevision ?? "0";
        const token = presenceToken(kv, replicas);
        const prev = this.seen.get(name);
        if (!prev || prev.token !== token) {
          this.seen.set(name, { token, modRevision: rev, since: now });
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
      await this.forgetGoneReplicas(replicas, now);
      for (const name of [...this.seen.keys()]) if (!this.nodes.get(name)) this.seen.delete(name);
    } catch (err) {
      this.logger.warn({ err }, "node presence check failed; will retry");
    } finally {
      this.running = false;
    }
  }

  /**
   * Removes the keys of replicas that stopped beating long ago (killed, never
   * shut down cleanly), compared against the revision seen, so a replica
   * that came back meanwhile keeps its key.
   */
  private async forgetGoneReplicas(replicas: ReadonlyMap<string, { modRevision: string }>, now: number) {
    for (const [id, kv] of replicas) {
      const prev = this.replicasSeen.get(id);
      if (!prev || prev.modRevision !== kv.modRevision) {
        this.replicasSeen.set(id, { modRevision: kv.modRevision, since: now });
        continue;
      }
      if (now - prev.since <= REPLICA_BEAT_FORGET_MS) continue;
      await this.store.txn(
        [{ key: REPLICA_PRESENCE_PREFIX + id, modRevision: kv.modRevision }],
        [{ type: "delete", key: REPLICA_PRESENCE_PREFIX + id }],
      );
      this.replicasSeen.delete(id);
      this.logger.info({ replica: id }, "forgot the presence key of a replica gone for long");
    }
    for (const id of [...this.replicasSeen.keys()]) if (!replicas.has(id)) this.replicasSeen.delete(id);
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
