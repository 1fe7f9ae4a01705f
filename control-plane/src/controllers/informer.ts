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
  /** The store revision the cache reflects: the list's, then each event's (it only grows). */
  private cacheRevision = 0n;

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
          }
        }
      },
      onRelist: (items, revision) => {
        this.logger?.info({ prefix: this.prefix }, "informer relisted after compaction");
        this.advance(revision);
        this.replace(items);
      },
      onError: (err) => this.logger?.error({ err, prefix: this.prefix }, "informer watch stopped"),
    });
  }

  async stop(): Promise<void> {
    await this.watch?.close();
    this.watch = undefined;
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
