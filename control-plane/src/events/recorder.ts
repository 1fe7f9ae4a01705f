// The event recorder: the one way Events get into the store.
//
// - Aggregation. An Event's name is a hash of what it is about (involved
//   object, instance, reason), so a repeat finds and updates the same key:
//   a crash loop is one Event whose count rises, never a key per restart.
//   Repeats that arrive while an Event waits to be written are merged in
//   memory (count added up, the latest message kept).
// - Bounded writes. One token bucket over all Events (`writesPerSecond`
//   after a `burst`), one write per Event key at most every `perKeyIntervalMs`,
//   and at most `maxPending` distinct Events waiting (more are dropped): a
//   crash loop or a flapping check cannot flood etcd, whatever its rate.
//   Drops are counted, never silent: `dropped` and the `onDrop` hook (the
//   metric grove_events_dropped_total{reason}), a warning at the first drop
//   of a burst and one with the burst's count once the queue has room again. Writes go out in the order the Events first waited,
//   so a watcher sees them in the order they happened.
// - Time-to-live. Every write attaches the key to an etcd lease of the TTL
//   (grove-server --event-ttl), so Events expire with no clean-up and a
//   recurring one lives on. A lease is shared by the writes of a short window
//   (as the kube-apiserver reuses leases) so a busy cluster holds few leases;
//   it is granted for the TTL plus that window, so an Event lives at least
//   the TTL after its last write and at most the window longer.
// - Recording never throws and never waits on etcd: callers (controllers,
//   the agent gateway) go on whatever the store does; a failed write is
//   logged and dropped.
import { createHash, randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { BucketRateLimiter } from "@grove/common";
import {
  API_VERSION,
  CLUSTER_EVENTS_NAMESPACE,
  GroveError,
  type Event,
  type EventSource,
  type EventType,
  type InvolvedObject,
} from "@grove/api";
import { Keys, type Store, type TxnCompare } from "../store/store";

/** What a caller records: the rest (name, count, times) is the recorder's. */
export interface EventInput {
  involvedObject: InvolvedObject;
  type: EventType;
  reason: string;
  message: string;
  source: EventSource;
}

export interface EventRecorderOptions {
  /** How long an Event lives after its last write (seconds). Default 3600. */
  ttlSeconds?: number;
  /** Writes per second over all Events, after `burst`. Defaults 10 and 50. */
  writesPerSecond?: number;
  burst?: number;
  /** The shortest time between two writes of one Event (ms). Default 1000. */
  perKeyIntervalMs?: number;
  /** The most distinct Events waiting to be written. Default 1000. */
  maxPending?: number;
  /** Monotonic clock (ms) for the rate limits; wall clock for the timestamps. */
  now?: () => number;
  wallClock?: () => Date;
  logger?: Logger;
  /** Called for every Event dropped: the queue was full, or its write failed. */
  onDrop?: (reason: EventDropReason) => void;
}

/** Why an Event was not written: more than maxPending waited, or the store refused its write. */
export type EventDropReason = "queue_full" | "write_failed";

export const DEFAULT_EVENT_TTL_SECONDS = 3600;
export const MAX_EVENT_MESSAGE = 1024;
/** Events put within this long of a lease's grant share it (capped at a tenth of the TTL). */
const LEASE_REUSE_MS = 60_000;

interface Pending {
  key: string;
  namespace: string;
  name: string;
  input: EventInput;
  count: number;
  first: string;
  last: string;
}

/** The store key prefix of events (in one namespace, or all). */
export function eventsPrefix(namespace?: string): string {
  return Keys.collection("events", namespace);
}

/** An Event's name: what it is about plus a hash of its aggregation key (the same for every repeat). */
export function eventName(input: Pick<EventInput, "involvedObject" | "reason">): string {
  const o = input.involvedObject;
  const id = [o.kind, o.namespace ?? "", o.name, o.instance ?? "", input.reason].join("\u0000");
  const hash = createHash("sha256").update(id).digest("hex").slice(0, 10);
  return `${o.instance ?? o.name}.${hash}`;
}

export class EventRecorder {
  private readonly ttlSeconds: number;
  private readonly perKeyIntervalMs: number;
  private readonly maxPending: number;
  private readonly now: () => number;
  private readonly wallClock: () => Date;
  private readonly bucket: BucketRateLimiter;
  private readonly log: Logger | undefined;
  /** Waiting Events in the order they first waited (a Map keeps insertion order). */
  private readonly pending = new Map<string, Pending>();
  /** When each Event key was last written (monotonic), for the per-key interval. */
  private readonly lastWrite = new Map<string, number>();
  private lease: { id: string; grantedAt: number } | undefined;
  private pumping = false;
  private timer: NodeJS.Timeout | undefined;
  /** A token already taken for the head of the queue (it waited for the bucket). */
  private tokenHeld = false;
  /** Events dropped since the start, by reason. */
  readonly dropped: Record<EventDropReason, number> = { queue_full: 0, write_failed: 0 };
  /** Dropped for a full queue since the queue last had room (the burst's count, logged when it ends). */
  private burstDropped = 0;
  private readonly onDrop: ((reason: EventDropReason) => void) | undefined;
  private stopped = false;
  private idle: Array<() => void> = [];
  /** Store writes made (for tests and the log). */
  writes = 0;

  constructor(
    private readonly store: Store,
    opts: EventRecorderOptions = {},
  ) {
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_EVENT_TTL_SECONDS;
    if (!(this.ttlSeconds >= 1)) throw new RangeError(`event TTL must be at least 1 s, got ${this.ttlSeconds}`);
    this.perKeyIntervalMs = opts.perKeyIntervalMs ?? 1000;
    this.maxPending = opts.maxPending ?? 1000;
    this.now = opts.now ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? (() => new Date());
    this.bucket = new BucketRateLimiter(opts.writesPerSecond ?? 10, opts.burst ?? 50, this.now);
    this.log = opts.logger;
    this.onDrop = opts.onDrop;
  }

  private drop(reason: EventDropReason): void {
    this.dropped[reason]++;
    try {
      this.onDrop?.(reason);
    } catch (err) {
      this.log?.error({ err }, "event drop hook threw");
    }
  }

  /** Records one occurrence. Never throws; the write happens later (see the file comment). */
  recordEvent(input: EventInput): void {
    if (this.stopped) return;
    const namespace = input.involvedObject.namespace ?? CLUSTER_EVENTS_NAMESPACE;
    const name = eventName(input);
    const key = Keys.object("events", namespace, name);
    const at = this.wallClock().toISOString();
    const message = truncate(input.message);
    const waiting = this.pending.get(key);
    if (waiting) {
      waiting.count++;
      waiting.last = at;
      waiting.input = { ...input, message };
    } else {
      if (this.pending.size >= this.maxPending) {
        this.drop("queue_full");
        if (this.burstDropped++ === 0) {
          this.log?.warn(
            { maxPending: this.maxPending },
            "too many events waiting; dropping new ones until there is room",
          );
        }
        return;
      }
      this.endBurst();
      this.pending.set(key, { key, namespace, name, input: { ...input, message }, count: 1, first: at, last: at });
    }
    this.pump();
  }

  /** The queue has room again after drops: says how many the burst lost. */
  private endBurst(): void {
    if (this.burstDropped === 0) return;
    this.log?.warn(
      { dropped: this.burstDropped, droppedTotal: this.dropped.queue_full, maxPending: this.maxPending },
      "events were dropped while too many waited",
    );
    this.burstDropped = 0;
  }

  /** Resolves once nothing waits to be written (tests). */
  flush(): Promise<void> {
    if (this.pending.size === 0 && !this.pumping) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Drops what waits and writes nothing more. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.pending.clear();
    for (const done of this.idle.splice(0)) done();
  }

  private pump(): void {
    if (this.pumping || this.timer || this.stopped) return;
    this.pumping = true;
    void this.drain().finally(() => {
      this.pumping = false;
      if (this.pending.size === 0 && !this.timer) {
        this.endBurst();
        for (const done of this.idle.splice(0)) done();
      }
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      const head = this.pending.values().next();
      if (head.done) return;
      const p = head.value;
      // Head of line: a later Event never overtakes an earlier one.
      const since = this.now() - (this.lastWrite.get(p.key) ?? Number.NEGATIVE_INFINITY);
      let wait = Math.max(0, this.perKeyIntervalMs - since);
      if (wait === 0 && !this.tokenHeld) {
        wait = this.bucket.when(p.key);
        this.tokenHeld = true;
      }
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, Math.ceil(wait));
        this.timer.unref();
        return;
      }
      this.tokenHeld = false;
      this.pending.delete(p.key);
      this.lastWrite.set(p.key, this.now());
      this.forgetOldWrites();
      try {
        await this.write(p);
      } catch (err) {
        this.drop("write_failed");
        this.log?.warn({ err, event: p.name, reason: p.input.reason }, "could not record an event; dropped");
      }
    }
  }

  /** Keeps lastWrite small: entries older than the interval no longer hold anything back. */
  private forgetOldWrites(): void {
    if (this.lastWrite.size < 10_000) return;
    const cutoff = this.now() - this.perKeyIntervalMs;
    for (const [k, t] of this.lastWrite) if (t < cutoff) this.lastWrite.delete(k);
  }

  private async write(p: Pending): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.store.get<Event>(p.key);
      const event: Event = cur
        ? {
            ...cur.value,
            message: p.input.message,
            type: p.input.type,
            source: p.input.source,
            count: cur.value.count + p.count,
            lastTimestamp: p.last,
          }
        : {
            apiVersion: API_VERSION,
            kind: "Event",
            metadata: { name: p.name, namespace: p.namespace, uid: randomUUID(), creationTimestamp: p.first },
            involvedObject: p.input.involvedObject,
            type: p.input.type,
            reason: p.input.reason,
            message: p.input.message,
            count: p.count,
            firstTimestamp: p.first,
            lastTimestamp: p.last,
            source: p.input.source,
          };
      delete event.metadata.resourceVersion;
      const compare: TxnCompare = { key: p.key, modRevision: cur?.modRevision ?? "0" };
      let ok: boolean;
      try {
        const lease = await this.currentLease();
        ok = (await this.store.txn([compare], [{ type: "put", key: p.key, value: event, lease }])).succeeded;
      } catch (err) {
        // Most likely the lease expired under us (etcd: "requested lease not found"): take a new one.
        this.lease = undefined;
        if (attempt >= 2 || (err instanceof GroveError && err.code === "StoreUnavailable")) throw err;
        continue;
      }
      this.writes++;
      if (ok) return;
      // Another replica wrote it in between: add our count to theirs.
      if (attempt >= 2) throw new GroveError("Conflict", `event ${p.name} keeps changing under the recorder`);
    }
  }

  private async currentLease(): Promise<string> {
    const reuseMs = Math.min(LEASE_REUSE_MS, (this.ttlSeconds * 1000) / 10);
    if (this.lease && this.now() - this.lease.grantedAt < reuseMs) return this.lease.id;
    const grantedAt = this.now();
    const id = await this.store.grantLease(Math.ceil(this.ttlSeconds + reuseMs / 1000));
    this.lease = { id, grantedAt };
    return id;
  }
}

function truncate(message: string): string {
  return message.length <= MAX_EVENT_MESSAGE ? message : message.slice(0, MAX_EVENT_MESSAGE - 1) + "…";
}

/** A recorder for tests and the simulator: records nothing. */
export const noEvents: Pick<EventRecorder, "recordEvent"> = { recordEvent: () => undefined };
