// The Store: the small interface the control plane keeps its desired state
// behind. The etcd implementation is etcd-store.ts; nothing else in the control
// plane talks to etcd directly.
//
// Revisions are etcd revisions as decimal strings (they are 64-bit). An object's
// resourceVersion is the mod revision of its key.

import { GroveError } from "@grove/api";

export interface KeyValue<T> {
  key: string;
  value: T;
  /** etcd mod revision of the key: the object's resourceVersion. */
  modRevision: string;
}

export interface ListResult<T> {
  items: KeyValue<T>[];
  /** The store revision the list was read at; watch from revision + 1. */
  revision: string;
}

export interface ListPageOptions {
  /**
   * The most items to return (default: all of them). The store still reads
   * them from etcd in pages of its own size, so a large limit never becomes
   * one large etcd response.
   */
  limit?: number;
  /** The first key to return (inclusive); it must lie under the prefix. Default: the prefix itself. */
  startKey?: string;
  /**
   * Read at this store revision, a consistent snapshot (continuing an
   * earlier page). Default: the current revision. Throws GroveError Gone when
   * the revision has been compacted.
   */
  revision?: string;
}

export interface ListPage<T> extends ListResult<T> {
  /** Where the next page starts (pass it as startKey, with this revision) when more items remain. */
  nextKey?: string;
  /** How many items under the prefix remain after this page, at `revision`. */
  remaining: number;
}

/**
 * Checks ListPageOptions the same way for every Store: a positive integer
 * limit, a start key under the prefix, a decimal revision ("0" = current).
 */
export function checkListPageOptions(prefix: string, opts: ListPageOptions): void {
  const { limit, startKey, revision } = opts;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1) && limit !== Number.POSITIVE_INFINITY) {
    throw new GroveError("BadRequest", `list limit must be a positive integer, got ${limit}`);
  }
  if (startKey !== undefined && !startKey.startsWith(prefix)) {
    throw new GroveError("BadRequest", `list start key ${JSON.stringify(startKey)} is not under ${prefix}`);
  }
  if (revision !== undefined && !/^\d+$/.test(revision)) {
    throw new GroveError(
      "BadRequest",
      `list revision must be a decimal store revision, got ${JSON.stringify(revision)}`,
    );
  }
}

/** A change under a watched prefix, as the store reports it (the HTTP API's WatchEvent is @grove/api's). */
export type StoreEvent<T> =
  | { type: "put"; key: string; value: T; modRevision: string; created: boolean }
  | { type: "delete"; key: string; prevValue: T | undefined; modRevision: string };

export interface WatchHandlers<T> {
  /** Called in revision order, once per event, never twice for the same revision. */
  onEvent(event: StoreEvent<T>): void;
  /**
   * Called when events were lost (the resume revision was compacted): the
   * watch has relisted and `items` is the full current state under the prefix
   * at `revision`. Consumers must replace their cache with it.
   */
  onRelist?(items: KeyValue<T>[], revision: string): void;
  /** Called with an error the watch cannot recover from (it has stopped). */
  onError?(err: Error): void;
  /**
   * Called when what this watch delivered may be behind the store: etcd is
   * known down, or the watch's stream was lost. A cache fed by it must not be
   * served as current until onFresh.
   */
  onStale?(reason: string): void;
  /** Called when the watch is caught up again (after a relist when etcd was down). */
  onFresh?(): void;
}

export interface Watch {
  /** The revision the next delivered event will be at least at. */
  readonly resumeRevision: string;
  close(): Promise<void>;
}

/** One operation of an atomic transaction. */
export type TxnCompare =
  /** The key's mod revision equals this ("0" means the key must not exist). */
  | { key: string; modRevision: string }
  /**
   * The key's create revision equals this: the key is still the one created
   * then, not deleted (and maybe created again) since. The leader fence
   * (fenced-store.ts) compares the election key this way.
   */
  | { key: string; createRevision: string };
export type TxnOp<T> =
  /** `lease`: the key is deleted when that lease (grantLease) expires. */
  { type: "put"; key: string; value: T; lease?: string } | { type: "delete"; key: string };

export interface TxnResult {
  succeeded: boolean;
  /** The store revision after the transaction (when it succeeded). */
  revision: string;
}

export interface Store {
  get<T>(key: string): Promise<KeyValue<T> | undefined>;
  /**
   * Every key under the prefix, in key order, at one revision. Read in pages
   * (see listPage) so any number of objects fits; when the revision is
   * compacted between two pages the list starts again at the current one.
   */
  list<T>(prefix: string): Promise<ListResult<T>>;
  /** One page of the keys under the prefix, at one revision (see ListPageOptions). */
  listPage<T>(prefix: string, opts?: ListPageOptions): Promise<ListPage<T>>;
  /** Creates the key; throws GroveError AlreadyExists when it exists. Returns the new mod revision. */
  create<T>(key: string, value: T): Promise<string>;
  /**
   * Replaces the key when its mod revision still equals `expectedModRevision`;
   * throws GroveError Conflict when it changed and NotFound when it is gone.
   */
  update<T>(key: string, value: T, expectedModRevision: string): Promise<string>;
  /** Deletes the key (only at that mod revision when given); throws NotFound / Conflict. */
  delete(key: string, expectedModRevision?: string): Promise<void>;
  /** All compares must hold, then all ops apply atomically. */
  txn<T>(compares: TxnCompare[], ops: TxnOp<T>[]): Promise<TxnResult>;
  /**
   * Watches every key under the prefix starting at `fromRevision` (inclusive).
   * The wrapper keeps its own resume revision (last event's mod revision + 1)
   * across reconnects and relists when etcd reports it compacted.
   */
  watch<T>(prefix: string, fromRevision: string, handlers: WatchHandlers<T>): Promise<Watch>;
  /**
   * A lease of `ttlSeconds` (etcd's lease API): keys put with it (TxnOp put
   * `lease`) are deleted when it expires. Nothing keeps it alive. Returns its id.
   */
  grantLease(ttlSeconds: number): Promise<string>;
  /** Resolves when the store answers; rejects with GroveError StoreUnavailable otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Key layout, all under /grove/. */
export const Keys = {
  prefix: "/grove/",
  object: (plural: string, namespace: string | undefined, name: string) =>
    namespace ? `/grove/${plural}/${namespace}/${name}` : `/grove/${plural}/${name}`,
  collection: (plural: string, namespace?: string) =>
    namespace ? `/grove/${plural}/${namespace}/` : `/grove/${plural}/`,
  /** Heartbeats live apart from Node objects so they do not bump node revisions. */
  heartbeat: (node: string) => `/grove/heartbeats/${node}`,
} as const;
