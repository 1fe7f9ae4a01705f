// The Store on etcd (v3 API through the etcd3 client).
//
// - Values are JSON. Every write is one etcd transaction guarded by a revision
//   compare; a failed compare reads the key in the same transaction so we can
//   tell NotFound from Conflict without a second round trip.
// - Calls carry a short deadline. With several endpoints a call that finds its
//   member down or leaderless goes to the next one (failoverPolicy); nothing
//   else is retried: when etcd is gone or has no quorum the API answers 503
//   (StoreUnavailable, with etcd's reason) within seconds instead of hanging.
// - Health (store-health.ts): a cheap quorum read probes etcd every second and
//   whenever a call fails to reach it; once it is known down, calls fail at
//   once (StoreUnavailable, how long and why) instead of each waiting out its
//   deadline, and watches hear that their caches are stale.
// - Watches own their resume revision (see watch-resume.ts) and relist when
//   etcd drops them (compaction).
// - Lists are read in pages (range with a limit, continuing from the last key
//   + "\0"), every page at the revision of the first, so a list of any size is
//   one consistent snapshot and no etcd response grows past the gRPC message
//   limit (4 MiB by default in the client). Pages hold at most `listPageLimit`
//   objects and shrink when objects are large (`listPageBytes`), or when a
//   response was still too large for the client.

import { Etcd3, type IOptions, type IKeyValue, type IRequestOp, type ICompare } from "etcd3";
import { GroveError } from "@grove/api";
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
  WatchHandlers,
} from "./store";
import { Keys, checkListPageOptions } from "./store";
import {
  alreadyExists,
  conflict,
  isConnectivityError,
  isMessageTooLarge,
  mapEtcdError,
  notFound,
  storeUnavailable,
} from "./etcd-errors";
import { parseRevision } from "./watch-resume";
import { EtcdWatch, decodeValue, type StoreLogger } from "./etcd-watch";
import { hardenWatchManager, resetWatchStream } from "./etcd-watch-stream";
import { StoreHealth } from "./store-health";
import { failoverPolicy, isFailoverError, runOncePolicy, shortConstantBackoff } from "./etcd-policies";

/** Pause between a health probe's attempts while the connection is re-made (ms). */
const PROBE_RETRY_MS = 100;

// Kept here for importers from before the policies had their own file.
export { isFailoverError } from "./etcd-policies";

// Kept here for importers from before the watch had its own file.
export { EtcdWatch, toStoreEvents, type EtcdWatchDeps, type StoreLogger, type WatcherLike } from "./etcd-watch";

export interface EtcdStoreOptions {
  /** Deadline of every unary call (ms). Default 5000. */
  callTimeoutMs?: number;
  /** gRPC keepalive ping interval (ms); detects half-open TCP. Default 10000 (etcd rejects < 5000). */
  keepaliveTimeMs?: number;
  /** How long a keepalive ping may go unanswered (ms). Default 5000. */
  keepaliveTimeoutMs?: number;
  /** Watch re-establishment backoff: first delay and cap (ms). Defaults 100 and 5000. */
  watchBackoffBaseMs?: number;
  watchBackoffMaxMs?: number;
  /** The most objects one etcd range (one list page) returns. Default 500. */
  listPageLimit?: number;
  /**
   * Roughly how many bytes one list page should carry: once a page shows the
   * average object size, the next holds about this many bytes. Default 2 MiB.
   */
  listPageBytes?: number;
  /**
   * The largest gRPC message the client accepts (grpc-js defaults to 4 MiB).
   * Default 16 MiB. Only headroom for single large objects and txn answers:
   * lists stay small because they are paged, not because of this.
   */
  maxReceiveMessageBytes?: number;
  /** How many times list() starts again when its revision is compacted mid-list. Default 5. */
  listRestarts?: number;
  /** Health probe period while etcd answers (ms); 0: no probe, calls always wait for etcd. Default 1000. */
  healthProbeIntervalMs?: number;
  /** Deadline of one health probe (ms). Default 2000 (at most callTimeoutMs). */
  healthProbeTimeoutMs?: number;
  logger?: StoreLogger;
  /** TLS to etcd: the CA to trust and this client's certificate (etcd's --client-cert-auth). */
  tls?: EtcdClientTls;
}

/** PEM texts; etcd3 takes them as its gRPC credentials. */
export interface EtcdClientTls {
  caPem: string;
  certPem?: string;
  keyPem?: string;
}

/** etcd3's `credentials` option for `tls` (undefined: plaintext). */
export function etcdCredentials(tls: EtcdClientTls | undefined): IOptions["credentials"] {
  if (!tls) return undefined;
  return {
    rootCertificate: Buffer.from(tls.caPem),
    ...(tls.certPem && tls.keyPem ? { certChain: Buffer.from(tls.certPem), privateKey: Buffer.from(tls.keyPem) } : {}),
  };
}

export const DEFAULT_LIST_PAGE_LIMIT = 500;
export const DEFAULT_LIST_PAGE_BYTES = 2 * 1024 * 1024;
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024;

const silentLogger: StoreLogger = { info() {}, warn() {}, error() {} };

const enc = (s: string) => Buffer.from(s, "utf8");

/** The smallest key greater than every key with this prefix (etcd range_end). */
export function prefixRangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix, "utf8");
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // prefix of all 0xff: to the end of the keyspace
}

function toKeyValue<T>(kv: IKeyValue): KeyValue<T> {
  return { key: kv.key.toString("utf8"), value: decodeValue<T>(kv), modRevision: String(kv.mod_revision) };
}

function putOp(key: string, value: unknown, lease?: string): IRequestOp {
  return { request_put: { key: enc(key), value: enc(JSON.stringify(value)), ...(lease ? { lease } : {}) } };
}

/** A compare from the Store's TxnCompare: "0" means the key must not exist. */
export function toEtcdCompare(c: TxnCompare): ICompare {
  if ("createRevision" in c) {
    return { key: enc(c.key), target: "Create", result: "Equal", create_revision: c.createRevision };
  }
  const rev = parseRevision(c.modRevision);
  if (rev === 0n) return { key: enc(c.key), target: "Version", result: "Equal", version: 0 };
  return { key: enc(c.key), target: "Mod", result: "Equal", mod_revision: c.modRevision };
}

export class EtcdStore implements Store {
  private readonly client: Etcd3;
  private readonly callTimeoutMs: number;
  private readonly log: StoreLogger;
  private readonly watches = new Set<EtcdWatch<unknown>>();
  private closed = false;
  /** Whether etcd answers, probed (see the header); undefined with healthProbeIntervalMs 0. */
  readonly health: StoreHealth | undefined;

  constructor(
    readonly endpoints: string[],
    private readonly opts: EtcdStoreOptions = {},
  ) {
    if (endpoints.length === 0) throw new Error("EtcdStore needs at least one endpoint");
    this.callTimeoutMs = opts.callTimeoutMs ?? 5000;
    this.log = opts.logger ?? silentLogger;
    this.client = new Etcd3({
      hosts: endpoints,
      dialTimeout: this.callTimeoutMs,
      ...(opts.tls ? { credentials: etcdCredentials(opts.tls) } : {}),
      // Unary calls get a deadline; watch streams must not (it would end them).
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + this.callTimeoutMs) }),
      grpcOptions: {
        "grpc.keepalive_time_ms": opts.keepaliveTimeMs ?? 10_000,
        "grpc.keepalive_timeout_ms": opts.keepaliveTimeoutMs ?? 5_000,
        // etcd's enforcement policy refuses pings without an active stream.
        "grpc.keepalive_permit_without_calls": 0,
        "grpc.max_receive_message_length": opts.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
      },
      faultHandling: {
        global: failoverPolicy(endpoints.length),
        host: () => runOncePolicy(),
        watchBackoff: shortConstantBackoff(),
      },
    });
    hardenWatchManager(this.client, (message) =>
      this.log.warn(
        { err: message },
        "etcd answered for a watcher the client no longer has: ignored, watch stream reset",
      ),
    );
    const probeEvery = opts.healthProbeIntervalMs ?? 1000;
    if (probeEvery > 0) {
      const deadlineMs = Math.min(opts.healthProbeTimeoutMs ?? 2000, this.callTimeoutMs);
      this.health = new StoreHealth({
        intervalMs: probeEvery,
        logger: this.log,
        // A linearizable read needs a quorum, as every write does.
        // A connection being re-made (after a keepalive timeout, or an
        // endpoint's restart) answers UNAVAILABLE at once: try again within
        // the probe's deadline, so only etcd out of reach for that long fails it.
        probe: async () => {
          const until = performance.now() + deadlineMs;
          for (;;) {
            const left = until - performance.now();
            try {
              await this.client.kv.range(
                { key: enc(Keys.prefix), limit: 1, keys_only: true },
                { deadline: new Date(Date.now() + Math.max(left, 1)) },
              );
              return;
            } catch (err) {
              if (!isFailoverError(err) || left < PROBE_RETRY_MS * 2) throw err;
              await new Promise((r) => setTimeout(r, PROBE_RETRY_MS));
            }
          }
        },
        onChange: (up) => {
          for (const w of this.watches) w.storeHealthChanged(up);
        },
      });
      this.health.start();
    }
  }

  /** Fails at once while etcd is known down (StoreUnavailable saying since when and why). */
  private checkHealth(): void {
    const st = this.health?.state;
    if (!st || st.up) return;
    const s = (this.health!.downForMs / 1000).toFixed(1);
    throw storeUnavailable(
      this.endpoints,
      `known down for ${s} s (${st.reason}); answering at once until a probe reaches etcd again`,
    );
  }

  /** Feeds a call's outcome to the health tracker (`startedMs`: when the call was sent). */
  private observe(err?: unknown, startedMs?: number): void {
    if (!this.health) return;
    if (err === undefined) this.health.callSucceeded();
    else if (isConnectivityError(err)) this.health.callFailed(err, startedMs);
  }

  /** Runs one etcd call, mapping failures to GroveErrors. */
  private async call<R>(what: string, fn: () => Promise<R>): Promise<R> {
    if (this.closed) throw storeUnavailable(this.endpoints, "the store client is closed");
    this.checkHealth();
    const started = performance.now();
    try {
      const res = await fn();
      this.observe();
      return res;
    } catch (err) {
      this.observe(err, started);
      const mapped = mapEtcdError(err, this.endpoints);
      if (mapped.code === "Internal") mapped.message = `${what}: ${mapped.message}`;
      throw mapped;
    }
  }

  async get<T>(key: string): Promise<KeyValue<T> | undefined> {
    const res = await this.call(`get ${key}`, () => this.client.kv.range({ key: enc(key) }));
    const kv = res.kvs[0];
    return kv ? toKeyValue<T>(kv) : undefined;
  }

  async list<T>(prefix: string): Promise<ListResult<T>> {
    const restarts = this.opts.listRestarts ?? 5;
    for (let attempt = 0; ; attempt++) {
      try {
        const page = await this.listPage<T>(prefix);
        return { items: page.items, revision: page.revision };
      } catch (err) {
        if (!(err instanceof GroveError) || err.code !== "Gone" || attempt >= restarts) throw err;
        // etcd compacted the revision of the first page before we read the
        // last: the pages read so far are no snapshot any more. Start again
        // at the current revision.
        this.log.warn(
          { prefix, attempt: attempt + 1, err: err.message },
          "list revision compacted between pages; listing again",
        );
      }
    }
  }

  async listPage<T>(prefix: string, opts: ListPageOptions = {}): Promise<ListPage<T>> {
    checkListPageOptions(prefix, opts);
    const limit = opts.limit ?? Number.POSITIVE_INFINITY;
    const startKey = opts.startKey ?? prefix;
    const pageLimit = Math.max(1, this.opts.listPageLimit ?? DEFAULT_LIST_PAGE_LIMIT);
    const pageBytes = Math.max(1, this.opts.listPageBytes ?? DEFAULT_LIST_PAGE_BYTES);
    const end = prefixRangeEnd(prefix);
    let start = enc(startKey);
    let revision = opts.revision !== undefined && BigInt(opts.revision) > 0n ? opts.revision : undefined;
    const items: KeyValue<T>[] = [];
    let chunk = pageLimit;
    let remaining = 0;
    let more = true;
    while (more && items.length < limit) {
      const want = Math.min(chunk, limit - items.length);
      let res;
      try {
        res = await this.range(prefix, start, end, want, revision);
      } catch (err) {
        if (!isMessageTooLarge(err)) throw err;
        if (want === 1) {
          throw new GroveError(
            "Internal",
            `list ${prefix}: the first object at or after ${start.toString("utf8")} is larger on its own than the store client's ` +
              `gRPC message limit (maxReceiveMessageBytes): ${(err as Error).message}`,
          );
        }
        chunk = Math.ceil(want / 2); // one page of unusually large objects: halve it and read again
        this.log.warn({ prefix, limit: want }, "list page larger than the gRPC message limit; halving the page");
        continue;
      }
      revision ??= String(res.header.revision);
      let bytes = 0;
      for (const kv of res.kvs) {
        bytes += kv.key.length + kv.value.length;
        items.push(toKeyValue<T>(kv));
      }
      more = res.more && res.kvs.length > 0;
      remaining = more ? Number(res.count) - res.kvs.length : 0;
      if (res.kvs.length > 0) {
        start = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
        chunk = Math.max(1, Math.min(pageLimit, Math.floor(pageBytes / Math.max(1, bytes / res.kvs.length))));
      }
    }
    return {
      items,
      revision: revision!,
      remaining,
      ...(more ? { nextKey: start.toString("utf8") } : {}),
    };
  }

  /** One etcd range: [start, end) at `revision` (current when undefined), at most `limit` keys. */
  private async range(prefix: string, start: Buffer, end: Buffer, limit: number, revision: string | undefined) {
    if (this.closed) throw storeUnavailable(this.endpoints, "the store client is closed");
    this.checkHealth();
    const started = performance.now();
    try {
      const res = await this.client.kv.range({ key: start, range_end: end, limit, revision: revision ?? 0 });
      this.observe();
      return res;
    } catch (err) {
      if (isMessageTooLarge(err)) throw err;
      this.observe(err, started);
      const mapped = mapEtcdError(err, this.endpoints);
      if (mapped.code === "Internal") mapped.message = `list ${prefix}: ${mapped.message}`;
      if (mapped.code === "Gone") mapped.message = `list ${prefix} at revision ${revision}: ${mapped.message}`;
      throw mapped;
    }
  }

  async create<T>(key: string, value: T): Promise<string> {
    const res = await this.call(`create ${key}`, () =>
      this.client.kv.txn({
        compare: [{ key: enc(key), target: "Create", result: "Equal", create_revision: 0 }],
        success: [putOp(key, value)],
      }),
    );
    if (!res.succeeded) throw alreadyExists(key);
    return String(res.header.revision);
  }

  async update<T>(key: string, value: T, expectedModRevision: string): Promise<string> {
    const res = await this.call(`update ${key}`, () =>
      this.client.kv.txn({
        compare: [{ key: enc(key), target: "Mod", result: "Equal", mod_revision: expectedModRevision }],
        success: [putOp(key, value)],
        failure: [{ request_range: { key: enc(key) } }],
      }),
    );
    if (!res.succeeded) throw this.compareFailure(key, expectedModRevision, res.responses);
    return String(res.header.revision);
  }

  async delete(key: string, expectedModRevision?: string): Promise<void> {
    if (expectedModRevision === undefined) {
      const res = await this.call(`delete ${key}`, () => this.client.kv.deleteRange({ key: enc(key) }));
      if (String(res.deleted) === "0") throw notFound(key);
      return;
    }
    const res = await this.call(`delete ${key}`, () =>
      this.client.kv.txn({
        compare: [{ key: enc(key), target: "Mod", result: "Equal", mod_revision: expectedModRevision }],
        success: [{ request_delete_range: { key: enc(key) } }],
        failure: [{ request_range: { key: enc(key) } }],
      }),
    );
    if (!res.succeeded) throw this.compareFailure(key, expectedModRevision, res.responses);
  }

  /** A failed mod-revision compare: the failure branch read the key. */
  private compareFailure(key: string, expected: string, responses: { response_range?: { kvs: IKeyValue[] } }[]) {
    const current = responses[0]?.response_range?.kvs[0];
    return current ? conflict(key, expected, String(current.mod_revision)) : notFound(key);
  }

  async txn<T>(compares: TxnCompare[], ops: TxnOp<T>[]): Promise<TxnResult> {
    const res = await this.call("txn", () =>
      this.client.kv.txn({
        compare: compares.map(toEtcdCompare),
        success: ops.map((op) =>
          op.type === "put" ? putOp(op.key, op.value, op.lease) : { request_delete_range: { key: enc(op.key) } },
        ),
      }),
    );
    return { succeeded: res.succeeded, revision: String(res.header.revision) };
  }

  async watch<T>(prefix: string, fromRevision: string, handlers: WatchHandlers<T>): Promise<Watch> {
    if (this.closed) throw storeUnavailable(this.endpoints, "the store client is closed");
    this.checkHealth();
    let from = fromRevision;
    if (parseRevision(fromRevision) === 0n) {
      // "From now": pin it to a concrete revision so the resume revision is ours from the start.
      // One key, no values: the header carries the current revision, whatever the prefix holds.
      const res = await this.call(`revision of ${prefix}`, () =>
        this.client.kv.range({ key: enc(prefix), limit: 1, keys_only: true }),
      );
      from = (parseRevision(String(res.header.revision)) + 1n).toString();
    }
    const watch = new EtcdWatch<T>(prefix, from, handlers, {
      openWatcher: (startRevision) =>
        this.client.watch().prefix(prefix).withPreviousKV().startRevision(startRevision).watcher(),
      endpoints: this.endpoints,
      log: this.log,
      connectTimeoutMs: this.callTimeoutMs,
      backoffBaseMs: this.opts.watchBackoffBaseMs ?? 100,
      backoffMaxMs: this.opts.watchBackoffMaxMs ?? 5000,
      relist: () => this.list<T>(prefix),
      onClosed: () => this.watches.delete(watch as EtcdWatch<unknown>),
      healthy: () => this.health?.up ?? true,
      resetStream: (reason) => {
        if (resetWatchStream(this.client, reason, this.callTimeoutMs))
          this.log.warn({ reason }, "etcd watch stream reset");
      },
    });
    this.watches.add(watch as EtcdWatch<unknown>);
    try {
      await watch.start();
    } catch (err) {
      await watch.close();
      throw err;
    }
    return watch;
  }

  async grantLease(ttlSeconds: number): Promise<string> {
    const res = await this.call("lease grant", () => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    return String(res.ID);
  }

  async ping(): Promise<void> {
    await this.call("ping", () => this.client.kv.range({ key: enc(Keys.prefix), limit: 1, keys_only: true }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.health?.stop();
    await Promise.all([...this.watches].map((w) => w.close()));
    this.closed = true;
    this.client.close();
  }
}

/** Makes the Store for these etcd endpoints (e.g. ["http://127.0.0.1:2379"]). */
export function createStore(endpoints: string[], opts: EtcdStoreOptions = {}): EtcdStore {
  return new EtcdStore(endpoints, opts);
}
