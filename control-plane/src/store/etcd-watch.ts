// One Store watch on etcd, split from etcd-store.ts: it drives etcd3 watchers
// but keeps its own resume revision (watch-resume.ts) and relists when etcd
// cancels it (compaction).
import type { IKeyValue, IWatchResponse } from "etcd3";
import { Backoff } from "@grove/common";
import type { ListResult, Watch, StoreEvent, WatchHandlers } from "./store";
import { isConnectivityError, storeUnavailable } from "./etcd-errors";
import { ResumeTracker } from "./watch-resume";

/** The subset of a pino logger the store uses. */
export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export function decodeValue<T>(kv: IKeyValue): T {
  const text = kv.value.toString("utf8");
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`value at ${kv.key.toString("utf8")} is not JSON: ${(err as Error).message}`);
  }
}

/** Converts one etcd watch response into Store events (keys decoded, values parsed). */
export function toStoreEvents<T>(res: Pick<IWatchResponse, "events">): StoreEvent<T>[] {
  return (res.events ?? []).map((ev): StoreEvent<T> => {
    const key = ev.kv.key.toString("utf8");
    const modRevision = String(ev.kv.mod_revision);
    if (ev.type === "Delete") {
      return { type: "delete", key, modRevision, prevValue: ev.prev_kv ? decodeValue<T>(ev.prev_kv) : undefined };
    }
    return { type: "put", key, modRevision, value: decodeValue<T>(ev.kv), created: String(ev.kv.version) === "1" };
  });
}

/** The part of an etcd3 Watcher the wrapper uses (a fake in unit tests). */
export interface WatcherLike {
  on(event: "connected", fn: (res: IWatchResponse) => void): unknown;
  on(event: "data", fn: (res: IWatchResponse) => void): unknown;
  on(event: "disconnected" | "error", fn: (err: Error) => void): unknown;
  removeAllListeners(event: "data"): unknown;
  cancel(): Promise<void>;
}

export interface EtcdWatchDeps<T> {
  /** Attaches a new etcd watcher on the prefix starting at this revision (resume revision - 1). */
  openWatcher(startRevision: string): WatcherLike;
  endpoints: readonly string[];
  log: StoreLogger;
  connectTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  relist(): Promise<ListResult<T>>;
  onClosed(): void;
  /** Whether etcd is known to answer (store-health.ts); always true without a health tracker. */
  healthy?(): boolean;
  /**
   * Ends the client's shared watch stream so a new one is opened
   * (etcd-watch-stream.ts); called when etcd answers but does not confirm a
   * watcher within connectTimeoutMs. Without it the watcher is re-opened.
   */
  resetStream?(reason: string): void;
}

/**
 * One Store watch. It drives etcd3 watchers but never lets the client resume
 * on its own: on a disconnect the etcd3 watcher is dropped and a new one is
 * made from our resume revision after a backoff; when etcd cancels a watcher
 * (compaction) we relist and watch from the list revision + 1.
 *
 * Freshness: the watch is stale (onStale) while etcd is known down, while its
 * stream is lost, and while a relist is pending. When etcd answers again
 * after being down, the watch relists whatever its stream looks like (a
 * stream through a cut connection can look alive and have missed events, and
 * etcd may have compacted them away meanwhile) and is fresh (onFresh) once
 * the new watcher after the list is connected.
 */
export class EtcdWatch<T> implements Watch {
  private readonly tracker: ResumeTracker;
  private current: WatcherLike | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Fires when etcd has not confirmed the current watcher in time (see confirmLater). */
  private confirmTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private closed = false;
  private firstConnect: { resolve(): void; reject(err: Error): void } | undefined;
  private fresh = true;
  /** A relist is running; `relistAgain` asks for another after it (state changed meanwhile). */
  private relisting = false;
  private relistAgain = false;
  /** Fresh only after a relist: set when etcd went down, cleared once a relist's watcher connected. */
  private needsRelist = false;

  constructor(
    private readonly prefix: string,
    fromRevision: string,
    private readonly handlers: WatchHandlers<T>,
    private readonly deps: EtcdWatchDeps<T>,
  ) {
    this.tracker = new ResumeTracker(fromRevision);
    this.backoff = new Backoff({ initialMs: deps.backoffBaseMs, maxMs: deps.backoffMaxMs });
  }

  get resumeRevision(): string {
    return this.tracker.resumeRevision;
  }

  /** Resolves once etcd accepted the first watcher; StoreUnavailable if it does not in time. */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => {
        this.firstConnect = undefined;
        reject(
          storeUnavailable(
            this.deps.endpoints,
            `watch on ${this.prefix} not established within ${this.deps.connectTimeoutMs} ms`,
          ),
        );
      }, this.deps.connectTimeoutMs);
      this.firstConnect = {
        resolve: () => {
          clearTimeout(timeout);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timeout);
          reject(err);
        },
      };
      this.open();
    });
  }

  private open(): void {
    if (this.closed) return;
    // Not resumeRevision itself: a watch from the compact revision loses events (watch-resume.ts).
    const watcher = this.deps.openWatcher(this.tracker.watchStartRevision);
    this.current = watcher;
    const mine = () => this.current === watcher && !this.closed;
    this.confirmLater(watcher);
    watcher.on("connected", () => {
      if (!mine()) return;
      clearTimeout(this.confirmTimer);
      this.confirmTimer = undefined;
      this.backoff.reset();
      if (!this.needsRelist && !this.relisting && (this.deps.healthy?.() ?? true)) this.setFresh(true, "");
      const first = this.firstConnect;
      this.firstConnect = undefined;
      first?.resolve();
    });
    watcher.on("data", (res: IWatchResponse) => {
      if (mine()) this.deliver(res);
    });
    watcher.on("disconnected", (err: Error) => {
      if (!mine()) return;
      this.deps.log.warn(
        { prefix: this.prefix, resumeRevision: this.resumeRevision, err: err?.message },
        "etcd watch disconnected; re-watching from our resume revision",
      );
      this.setFresh(false, `the watch stream was lost: ${err?.message ?? "disconnected"}`);
      this.drop(watcher, true);
      this.schedule(() => this.open());
    });
    watcher.on("error", (err: Error) => {
      if (!mine()) return;
      // etcd cancelled the watch: the resume revision was compacted (etcd3
      // does not pass compact_revision on), or some other server-side cancel.
      // Either way events may be lost: relist.
      this.deps.log.warn(
        { prefix: this.prefix, resumeRevision: this.resumeRevision, err: err?.message },
        "etcd cancelled the watch (compacted?); relisting",
      );
      this.drop(watcher, false); // etcd3 already removed it from its stream
      void this.relist();
    });
  }

  /**
   * A watcher etcd does not confirm within connectTimeoutMs while etcd answers
   * other calls sits on a stream that no longer answers: end that stream (or,
   * without resetStream, re-open the watcher). While etcd is known down the
   * wait simply starts over.
   */
  private confirmLater(watcher: WatcherLike): void {
    clearTimeout(this.confirmTimer);
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = undefined;
      if (this.current !== watcher || this.closed) return;
      if (!(this.deps.healthy?.() ?? true)) {
        this.confirmLater(watcher);
        return;
      }
      const reason = `etcd did not confirm the watch on ${this.prefix} within ${this.deps.connectTimeoutMs} ms`;
      this.deps.log.warn(
        { prefix: this.prefix, resumeRevision: this.resumeRevision },
        `${reason}; opening a new watch stream`,
      );
      this.setFresh(false, reason);
      if (this.deps.resetStream) {
        // etcd3 reports "disconnected" to every watcher of the stream: the handler above re-opens this one.
        this.deps.resetStream(reason);
        this.confirmLater(watcher);
        return;
      }
      this.drop(watcher, true);
      this.schedule(() => this.open());
    }, this.deps.connectTimeoutMs);
    this.confirmTimer.unref?.();
  }

  private deliver(res: IWatchResponse): void {
    let events: StoreEvent<T>[];
    try {
      events = this.tracker.accept(toStoreEvents<T>(res));
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    for (const event of events) {
      try {
        this.handlers.onEvent(event);
      } catch (err) {
        this.deps.log.error(
          { prefix: this.prefix, key: event.key, err: (err as Error).message },
          "watch handler threw",
        );
      }
    }
  }

  /**
   * The store's health changed (store-health.ts). Down: stale. Up again:
   * relist, dropping the current watcher, since nothing says what it missed.
   */
  storeHealthChanged(up: boolean): void {
    if (this.closed) return;
    if (!up) {
      this.needsRelist = true;
      this.setFresh(false, "etcd is down");
      return;
    }
    if (!this.needsRelist) return;
    if (this.current) this.drop(this.current, true);
    clearTimeout(this.timer);
    this.timer = undefined;
    void this.relist();
  }

  private setFresh(fresh: boolean, reason: string): void {
    if (this.fresh === fresh || this.closed) return;
    this.fresh = fresh;
    try {
      if (fresh) this.handlers.onFresh?.();
      else this.handlers.onStale?.(reason);
    } catch (err) {
      this.deps.log.error({ prefix: this.prefix, err: (err as Error).message }, "watch freshness handler threw");
    }
  }

  private async relist(): Promise<void> {
    if (this.closed) return;
    if (this.relisting) {
      this.relistAgain = true;
      return;
    }
    this.relisting = true;
    this.setFresh(false, "relisting");
    try {
      const list = await this.deps.relist();
      if (this.closed) return;
      if (this.current) this.drop(this.current, true); // a watcher opened meanwhile would deliver twice
      this.tracker.relisted(list.revision);
      try {
        this.handlers.onRelist?.(list.items, list.revision);
      } catch (err) {
        this.deps.log.error({ prefix: this.prefix, err: (err as Error).message }, "watch relist handler threw");
      }
      if (this.relistAgain) {
        this.relistAgain = false;
        this.relisting = false;
        void this.relist();
        return;
      }
      this.needsRelist = false;
      this.relisting = false;
      this.open();
    } catch (err) {
      this.relisting = false;
      if (isConnectivityError(err)) {
        this.schedule(() => void this.relist());
        return;
      }
      this.fail(err as Error);
    }
  }

  private schedule(fn: () => void): void {
    if (this.closed) return;
    const delay = this.backoff.next();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fn();
    }, delay);
  }

  /**
   * Forgets an etcd3 watcher. After a disconnect it must also be detached from
   * etcd3's stream manager (synchronous while disconnected), or etcd3 would
   * re-subscribe it from the header revision on reconnect.
   */
  private drop(watcher: WatcherLike, detach: boolean): void {
    if (this.current === watcher) this.current = undefined;
    watcher.removeAllListeners("data");
    watcher.on("error", () => undefined); // a late cancel must not crash the process
    if (detach) void watcher.cancel().catch(() => undefined);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    const first = this.firstConnect;
    this.firstConnect = undefined;
    void this.close();
    if (first) first.reject(err);
    else this.handlers.onError?.(err);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.confirmTimer);
    this.deps.onClosed();
    const watcher = this.current;
    this.current = undefined;
    if (!watcher) return;
    watcher.removeAllListeners("data");
    watcher.on("error", () => undefined);
    // Cancelling waits for etcd's confirmation; do not hang close() on a dead etcd.
    await Promise.race([watcher.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
