// MemoryStore: the Store interface kept in process memory, with etcd's
// semantics (one global revision, a mod revision per key, compare-and-swap
// writes, atomic transactions, watches from a revision). Unit tests and the
// simulator use it; integration tests always use the real etcd.
//
// Compaction is simulated: the store keeps a bounded history of events, and a
// watch asked to start at a revision older than that history relists through
// `onRelist`, exactly as EtcdStore does when etcd reports the revision compacted.
// Lists can read any revision still in that history (each event remembers the
// entry it replaced), so paged lists are snapshots as with etcd.
import { GroveError } from "@grove/api";
import { checkListPageOptions } from "./store";
import type {
  KeyValue,
  ListPage,
  ListPageOptions,
  ListResult,
  Store,
  TxnCompare,
  TxnOp,
  TxnResult,
  Watch,
  StoreEvent,
  WatchHandlers,
} from "./store";

export interface MemoryStoreOptions {
  /** How many events the history keeps before the oldest are compacted away. */
  historyLimit?: number;
}

interface Entry {
  value: unknown;
  modRevision: number;
  createRevision: number;
}

/** `prev` is the entry the event replaced (none for a create): reading an older revision restores it. */
type StoredEvent =
  | { type: "put"; key: string; value: unknown; modRevision: number; created: boolean; prev?: Entry }
  | { type: "delete"; key: string; prevValue: unknown; modRevision: number; prev: Entry };

const DEFAULT_HISTORY_LIMIT = 10_000;

export class MemoryStore implements Store {
  private readonly data = new Map<string, Entry>();
  private readonly history: StoredEvent[] = [];
  private readonly watchers = new Set<MemoryWatch>();
  private readonly historyLimit: number;
  /** etcd starts an empty store at revision 1; the first write is revision 2. */
  private rev = 1;
  /** Events at or below this revision are gone from the history. */
  private compactedRev = 0;
  private unavailable: GroveError | undefined;
  private closed = false;
  /** Leases: id -> the keys put with it, and the timer that deletes them. */
  private readonly leases = new Map<string, { keys: Set<string>; timer: NodeJS.Timeout }>();
  private nextLease = 1;

  constructor(opts: MemoryStoreOptions = {}) {
    this.historyLimit = Math.max(1, opts.historyLimit ?? DEFAULT_HISTORY_LIMIT);
  }

  /** The current store revision. */
  get revision(): string {
    return String(this.rev);
  }

  /** The highest compacted revision: watches must start above it. */
  get compactedRevision(): string {
    return String(this.compactedRev);
  }

  /** Drops the history at and below `revision` (like `etcdctl compact`). */
  compact(revision: string | number): void {
    const target = Math.min(Number(revision), this.rev);
    if (!Number.isFinite(target) || target <= this.compactedRev) return;
    this.compactedRev = target;
    let drop = 0;
    while (drop < this.history.length && this.history[drop]!.modRevision <= target) drop++;
    this.history.splice(0, drop);
  }

  /**
   * Fault injection for tests and the simulator: while unavailable every
   * operation rejects with GroveError StoreUnavailable, as when etcd is down.
   */
  setAvailable(available: boolean): void {
    this.unavailable = available ? undefined : new GroveError("StoreUnavailable", "the store is unavailable");
  }

  async get<T>(key: string): Promise<KeyValue<T> | undefined> {
    this.check();
    const e = this.data.get(key);
    return e ? { key, value: clone(e.value) as T, modRevision: String(e.modRevision) } : undefined;
  }

  async list<T>(prefix: string): Promise<ListResult<T>> {
    const page = await this.listPage<T>(prefix);
    return { items: page.items, revision: page.revision };
  }

  async listPage<T>(prefix: string, opts: ListPageOptions = {}): Promise<ListPage<T>> {
    this.check();
    checkListPageOptions(prefix, opts);
    const asked = opts.revision !== undefined ? Number(opts.revision) : 0;
    const at = asked > 0 ? asked : this.rev;
    if (at < this.compactedRev) {
      throw new GroveError("Gone", `revision ${at} has been compacted (compacted up to ${this.compactedRev})`);
    }
    if (at > this.rev) throw new GroveError("Gone", `revision ${at} is newer than the store's (${this.rev})`);
    const startKey = opts.startKey ?? prefix;
    const all = this.snapshot<T>(prefix, at).filter((kv) => kv.key >= startKey);
    const items = all.slice(0, opts.limit ?? all.length);
    const more = items.length < all.length;
    return {
      items,
      revision: String(at),
      remaining: all.length - items.length,
      ...(more ? { nextKey: `${items[items.length - 1]!.key}\u0000` } : {}),
    };
  }

  async create<T>(key: string, value: T): Promise<string> {
    this.check();
    if (this.data.has(key)) throw new GroveError("AlreadyExists", `${key} already exists`);
    return String(this.commit([{ type: "put", key, value }]));
  }

  async update<T>(key: string, value: T, expectedModRevision: string): Promise<string> {
    this.check();
    const e = this.data.get(key);
    if (!e) throw new GroveError("NotFound", `${key} not found`);
    if (String(e.modRevision) !== expectedModRevision) {
      throw new GroveError(
        "Conflict",
        `${key} was modified: it is at revision ${e.modRevision}, the write expected ${expectedModRevision}`,
      );
    }
    return String(this.commit([{ type: "put", key, value }]));
  }

  async delete(key: string, expectedModRevision?: string): Promise<void> {
    this.check();
    const e = this.data.get(key);
    if (!e) throw new GroveError("NotFound", `${key} not found`);
    if (expectedModRevision !== undefined && String(e.modRevision) !== expectedModRevision) {
      throw new GroveError(
        "Conflict",
        `${key} was modified: it is at revision ${e.modRevision}, the delete expected ${expectedModRevision}`,
      );
    }
    this.commit([{ type: "delete", key }]);
  }

  async txn<T>(compares: TxnCompare[], ops: TxnOp<T>[]): Promise<TxnResult> {
    this.check();
    for (const c of compares) {
      const entry = this.data.get(c.key);
      const [current, want] =
        "createRevision" in c
          ? [entry?.createRevision ?? 0, c.createRevision]
          : [entry?.modRevision ?? 0, c.modRevision];
      if (String(current) !== want) return { succeeded: false, revision: String(this.rev) };
    }
    for (const op of ops) {
      if (op.type !== "put" || op.lease === undefined) continue;
      if (!this.leases.has(op.lease)) throw new GroveError("NotFound", `lease ${op.lease} not found (expired?)`);
    }
    // A put moves the key to its new lease (or to none), as in etcd.
    for (const lease of this.leases.values()) for (const op of ops) lease.keys.delete(op.key);
    for (const op of ops) if (op.type === "put" && op.lease !== undefined) this.leases.get(op.lease)!.keys.add(op.key);
    return { succeeded: true, revision: String(this.commit(ops)) };
  }

  async watch<T>(prefix: string, fromRevision: string, handlers: WatchHandlers<T>): Promise<Watch> {
    this.check();
    const from = Number(fromRevision);
    if (!Number.isInteger(from) || from < 0) {
      throw new GroveError("BadRequest", `invalid watch revision "${fromRevision}"`);
    }
    const w = new MemoryWatch(prefix, Math.max(from, 1), handlers as WatchHandlers<unknown>, (x) =>
      this.watchers.delete(x),
    );
    if (from <= this.compactedRev) {
      // The events the watcher needs are gone: relist, then follow from the present.
      if (handlers.onRelist) {
        w.enqueueRelist(this.snapshot(prefix), this.rev);
      } else {
        w.fail(new GroveError("Gone", `revision ${from} has been compacted (compacted up to ${this.compactedRev})`));
        return w;
      }
    } else {
      for (const ev of this.history) if (ev.modRevision >= from) w.enqueue(ev);
    }
    this.watchers.add(w);
    return w;
  }

  async grantLease(ttlSeconds: number): Promise<string> {
    this.check();
    const id = String(this.nextLease++);
    const timer = setTimeout(() => this.expireLease(id), ttlSeconds * 1000);
    timer.unref();
    this.leases.set(id, { keys: new Set(), timer });
    return id;
  }

  /** Ends a lease now, deleting its keys (the timer does it after the TTL). */
  expireLease(id: string): void {
    const lease = this.leases.get(id);
    if (!lease) return;
    clearTimeout(lease.timer);
    this.leases.delete(id);
    const ops = [...lease.keys].filter((k) => this.data.has(k)).map((key) => ({ type: "delete" as const, key }));
    if (ops.length > 0 && !this.closed) this.commit(ops);
  }

  async ping(): Promise<void> {
    this.check();
  }

  async close(): Promise<void> {
    for (const lease of this.leases.values()) clearTimeout(lease.timer);
    this.leases.clear();
    this.closed = true;
    await Promise.all([...this.watchers].map((w) => w.close()));
  }

  private check(): void {
    if (this.closed) throw new GroveError("StoreUnavailable", "the store is closed");
    if (this.unavailable) throw this.unavailable;
  }

  /** The keys under the prefix as they were at `revision` (default: now), sorted. */
  private snapshot<T>(prefix: string, revision = this.rev): KeyValue<T>[] {
    const view = new Map<string, Entry>([...this.data.entries()].filter(([k]) => k.startsWith(prefix)));
    // Undo the events after `revision`, newest first (the history holds all of
    // them: a revision below the compacted one was refused).
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.modRevision > revision; i--) {
      const ev = this.history[i]!;
      if (!ev.key.startsWith(prefix)) continue;
      if (ev.prev) view.set(ev.key, ev.prev);
      else view.delete(ev.key);
    }
    return [...view.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, e]) => ({ key, value: clone(e.value) as T, modRevision: String(e.modRevision) }));
  }

  /** Applies ops at one new revision (no revision when nothing changes, as in etcd). */
  private commit<T>(ops: TxnOp<T>[]): number {
    const events: StoredEvent[] = [];
    const next = this.rev + 1;
    for (const op of ops) {
      const prev = this.data.get(op.key);
      if (op.type === "put") {
        const value = clone(op.value);
        this.data.set(op.key, { value, modRevision: next, createRevision: prev?.createRevision ?? next });
        events.push({ type: "put", key: op.key, value, modRevision: next, created: !prev, prev });
      } else if (prev) {
        this.data.delete(op.key);
        events.push({ type: "delete", key: op.key, prevValue: prev.value, modRevision: next, prev });
      }
    }
    if (events.length === 0) return this.rev;
    this.rev = next;
    this.history.push(...events);
    if (this.history.length > this.historyLimit) {
      const overflow = this.history.length - this.historyLimit;
      this.compact(this.history[overflow - 1]!.modRevision);
    }
    for (const w of this.watchers) for (const ev of events) w.enqueue(ev);
    return next;
  }
}

/** One watcher: events are queued and delivered asynchronously, in order, like etcd's. */
class MemoryWatch implements Watch {
  private queue: Array<StoredEvent | { type: "relist"; items: KeyValue<unknown>[]; revision: number }> = [];
  private scheduled = false;
  private closed = false;
  private resume: number;

  constructor(
    private readonly prefix: string,
    from: number,
    private readonly handlers: WatchHandlers<unknown>,
    private readonly detach: (w: MemoryWatch) => void,
  ) {
    this.resume = from;
  }

  get resumeRevision(): string {
    return String(this.resume);
  }

  enqueue(ev: StoredEvent): void {
    if (this.closed || !ev.key.startsWith(this.prefix)) return;
    this.queue.push(ev);
    this.schedule();
  }

  enqueueRelist(items: KeyValue<unknown>[], revision: number): void {
    this.queue.push({ type: "relist", items, revision });
    this.schedule();
  }

  fail(err: Error): void {
    this.closed = true;
    queueMicrotask(() => this.handlers.onError?.(err));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    this.detach(this);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    while (!this.closed && this.queue.length > 0) {
      const item = this.queue.shift()!;
      try {
        if (item.type === "relist") {
          this.resume = item.revision + 1;
          this.handlers.onRelist?.(item.items, String(item.revision));
        } else {
          // Every op of one transaction shares its revision, so resume just past it.
          this.resume = item.modRevision + 1;
          this.handlers.onEvent(toStoreEvent(item));
        }
      } catch (err) {
        // A throwing handler is a bug in the consumer; stop this watch rather
        // than deliver later events to a consumer in an unknown state.
        this.closed = true;
        this.queue = [];
        this.detach(this);
        this.handlers.onError?.(err instanceof Error ? err : new Error(String(err)));
        return;
      }
    }
  }
}

function toStoreEvent(ev: StoredEvent): StoreEvent<unknown> {
  return ev.type === "put"
    ? { type: "put", key: ev.key, value: clone(ev.value), modRevision: String(ev.modRevision), created: ev.created }
    : { type: "delete", key: ev.key, prevValue: clone(ev.prevValue), modRevision: String(ev.modRevision) };
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}
