// An informer: an in-memory cache of one kind kept current by list + watch
// through the Store, like client-go's shared informers. Controllers read from
// it and register handlers that only enqueue keys.
//
// The list (at start, and the relist the Store's watch does after a
// compaction) is Store.list: read in pages at one revision, so it is a
// consistent snapshot of any size, and the watch resumes just after it.
import type { Logger } from "pino";
import type { KeyValue, Store, Watch } from "../store/store";

export interface Meta {
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string };
}

export type InformerEvent<T> =
  { type: "added"; object: T } | { type: "updated"; object: T; old: T } | { type: "deleted"; object: T };

export type InformerHandler<T> = (event: InformerEvent<T>) => void;

/** How long waitFor waits at most by default: a watch this far behind is a problem of its own. */
export const WAIT_FOR_TIMEOUT_MS = 5000;

interface Waiter {
  want: bigint;
  done: () => void;
}

/** "ns/name" for namespaced objects, "name" otherwise. */
export function objectKey(obj: Meta): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

function withVersion<T extends Meta>(kv: KeyValue<T>): T {
  return { ...kv.value, metadata: { ...kv.value.metadata, resourceVersion: kv.modRevision } };
}

export class Informer<T extends Meta> {
  private readonly cache = new Map<string, T>();
  private readonly byStoreKey = new Map<string, string>();
  private readonly handlers: InformerHandler<T>[] = [];
  private watch: Watch | undefined;
  private synced = false;
  /** False while the cache may be behind the store (see isFresh). */
  private fresh = true;
  private readonly freshnessHandlers: Array<(fresh: boolean) => void> = [];
  /** The store revision the cache reflects: the list's, then each event's (it only grows). */
  private cacheRevision = 0n;
  /** waitFor callers, by object key. */
  private readonly waiters = new Map<string, Waiter[]>();

  constructor(
    private readonly store: Store,
    private readonly prefix: string,
    private readonly logger?: Logger,
  ) {}

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /**
   * False while the cache may be behind the store: etcd is known down, the
   * watch's stream was lost, or a relist after an outage is pending. What a
   * stale cache says must not go out as current (desired sets, placements).
   */
  get isFresh(): boolean {
    return this.synced && this.fresh;
  }

  /** Called with false when the cache goes stale and true when it is fresh again. */
  onFreshness(fn: (fresh: boolean) => void): void {
    this.freshnessHandlers.push(fn);
  }

  private setFresh(fresh: boolean, reason?: string): void {
    if (this.fresh === fresh) return;
    this.fresh = fresh;
    if (fresh) this.logger?.info({ prefix: this.prefix }, "informer cache is fresh again");
    else this.logger?.warn({ prefix: this.prefix, reason }, "informer cache is stale: not serving it as current");
    for (const fn of this.freshnessHandlers) {
      try {
        fn(fresh);
      } catch (err) {
        this.logger?.error({ err }, "informer freshness handler threw");
      }
    }
  }

  /**
   * The store revision the cache is known to reflect (decimal string): the
   * revision of the list, then of each event delivered, so it only grows.
   * Desired sets sent to agents carry it (grpc/agent-gateway.ts).
   */
  get revision(): string {
    return this.cacheRevision.toString();
  }

  private advance(revision: string): void {
    const r = BigInt(revision);
    if (r > this.cacheRevision) this.cacheRevision = r;
  }

  /**
   * Resolves once this cache shows the object at `key` ("ns/name") at
   * `revision` or later, or shows it deleted since: read-your-writes for a
   * controller that just wrote it and plans its next step on the cache.
   * Woken by the watch event itself, never by polling. Resolves anyway
   * after `timeoutMs` (the caller then plans on an older cache and its
   * guarded write fails and retries) or when the informer stops.
   */
  waitFor(key: string, revision: string, timeoutMs = WAIT_FOR_TIMEOUT_MS): Promise<void> {
    const want = BigInt(revision);
    if (this.reached(key, want)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter: Waiter = {
        want,
        done: () => {
          clearTimeout(timer);
          const list = this.waiters.get(key) ?? [];
          const i = list.indexOf(waiter);
          if (i >= 0) list.splice(i, 1);
          if (list.length === 0) this.waiters.delete(key);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, timeoutMs);
      const list = this.waiters.get(key);
      if (list) list.push(waiter);
      else this.waiters.set(key, [waiter]);
    });
  }

  private reached(key: string, want: bigint): boolean {
    const rv = this.cache.get(key)?.metadata.resourceVersion;
    if (rv !== undefined) return BigInt(rv) >= want;
    // Gone: deleted at or after the wanted revision once the cache is that far.
    return this.cacheRevision >= want;
  }

  /** Wakes the waiters of `key` (or of every key) whose revision the cache now shows. */
  private wake(key?: string): void {
    const keys = key === undefined ? [...this.waiters.keys()] : [key];
    for (const k of keys) {
      for (const w of [...(this.waiters.get(k) ?? [])]) if (this.reached(k, w.want)) w.done();
    }
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  async start(): Promise<void> {
    const listed = await this.store.list<T>(this.prefix);
    this.advance(listed.revision);
    this.replace(listed.items);
    this.synced = true;
    this.watch = await this.store.watch<T>(this.prefix, (BigInt(listed.revision) + 1n).toString(), {
      onEvent: (ev) => {
        this.advance(ev.modRevision);
        if (ev.type === "put") {
          this.upsert(ev.key, withVersion({ key: ev.key, value: ev.value, modRevision: ev.modRevision }));
        } else {
          const k = this.byStoreKey.get(ev.key);
          const old = k !== undefined ? this.cache.get(k) : undefined;
          if (k !== undefined && old) {
            this.cache.delete(k);
            this.byStoreKey.delete(ev.key);
            this.emit({ type: "deleted", object: old });
            this.wake(k);
          }
        }
      },
      onRelist: (items, revision) => {
        this.logger?.info(
          { prefix: this.prefix, revision },
          "informer relisted (compaction, or etcd back after an outage)",
        );
        this.advance(revision);
        this.replace(items);
        this.wake();
      },
      onError: (err) => {
        this.logger?.error({ err, prefix: this.prefix }, "informer watch stopped");
        this.setFresh(false, `the watch stopped: ${err.message}`);
      },
      onStale: (reason) => this.setFresh(false, reason),
      onFresh: () => this.setFresh(true),
    });
  }

  async stop(): Promise<void> {
    await this.watch?.close();
    this.watch = undefined;
    // Nothing will arrive any more: let the waiters go on (their writes are guarded).
    for (const list of [...this.waiters.values()]) for (const w of [...list]) w.done();
  }

  private replace(items: KeyValue<T>[]): void {
    const seen = new Set<string>();
    for (const kv of items) {
      seen.add(kv.key);
      this.upsert(kv.key, withVersion(kv));
    }
    for (const [storeKey, k] of [...this.byStoreKey]) {
      if (seen.has(storeKey)) continue;
      const old = this.cache.get(k);
      this.cache.delete(k);
      this.byStoreKey.delete(storeKey);
      if (old) this.emit({ type: "deleted", object: old });
    }
  }

  private upsert(storeKey: string, obj: T): void {
    const k = objectKey(obj);
    const old = this.cache.get(k);
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.cache.set(k, obj);
    this.byStoreKey.set(storeKey, k);
    this.emit(old ? { type: "updated", object: obj, old } : { type: "added", object: obj });
    this.wake(k);
  }

  private emit(ev: InformerEvent<T>): void {
    for (const h of this.handlers) {
      try {
        h(ev);
      } catch (err) {
        this.logger?.error({ err }, "informer handler threw");
      }
    }
  }
}
