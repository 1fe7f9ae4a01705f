// A keyed work queue in the manner of client-go's workqueue, the one used by
// the agent's reconciler and by every control-plane controller:
// - adding a key that is already queued is a no-op, so a burst of events
//   costs one sync;
// - a key is never handled by two workers at once: adding it while it is
//   being handled marks it dirty, and it runs again afterwards;
// - a sync that throws gets its key retried after the rate limiter's delay
//   (per-key exponential backoff and an overall token bucket); a success
//   forgets the key's failures;
// - add() cancels a pending retry of the key (it is about to run anyway; a new
//   failure schedules a new retry), so a retried key never runs twice;
// - idle() waits for pending retries too: nothing is settled while one is due.
// addAfter() is a plain delayed add (a deadline the sync computed, such as a
// restart delay): it is neither cancelled by add() nor awaited by idle(); of
// several pending for one key the earliest wins.
import { controllerRateLimiter, type RateLimiter } from "./rate-limiter";

export type SyncFn = (key: string) => Promise<void>;

/** The part of a pino logger the queue uses. */
export interface WarnLogger {
  warn(fields: object, message: string): void;
}

export interface WorkQueueOptions {
  /** Names the queue in log lines. */
  name?: string;
  /** Converges one key; throws to be retried. Required unless given as the first argument. */
  sync?: SyncFn;
  /** Distinct keys handled at the same time; default 1. */
  concurrency?: number;
  /** First retry delay of a key, doubling per consecutive failure; default 200 ms. */
  baseDelayMs?: number;
  /** Cap of a key's retry delay; default 30 s. */
  maxDelayMs?: number;
  /** Replaces the default limiter (per-key exponential from baseDelayMs to maxDelayMs, max'ed with 10 qps / burst 100). */
  rateLimiter?: RateLimiter;
  /** Warned about every failure with the key, the attempt and the retry delay. */
  logger?: WarnLogger;
  /** Told about every failure and when the key will be retried. */
  onError?: (key: string, error: unknown, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private readonly delayTimers = new Map<string, { timer: NodeJS.Timeout; dueAt: number }>();
  private idleWaiters: Array<() => void> = [];
  private shuttingDown = false;
  private readonly sync: SyncFn;
  private readonly options: WorkQueueOptions;
  private readonly concurrency: number;
  private readonly limiter: RateLimiter;

  constructor(options: WorkQueueOptions & { sync: SyncFn });
  constructor(sync: SyncFn, options?: WorkQueueOptions);
  constructor(first: SyncFn | (WorkQueueOptions & { sync: SyncFn }), rest: WorkQueueOptions = {}) {
    this.options = typeof first === "function" ? { ...rest, sync: first } : first;
    this.sync = this.options.sync as SyncFn;
    this.concurrency = Math.max(1, this.options.concurrency ?? 1);
    this.limiter =
      this.options.rateLimiter ??
      controllerRateLimiter({ baseDelayMs: this.options.baseDelayMs, maxDelayMs: this.options.maxDelayMs });
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    const timer = this.retryTimers.get(key);
    if (timer) {
      clearTimeout(timer);
      this.retryTimers.delete(key);
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (!this.queued.has(key)) {
      this.queued.add(key);
      this.queue.push(key);
    }
    this.pump();
  }

  /** Adds the key after a delay, replacing an earlier pending delay for it. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    // The earliest deadline wins, as in client-go's delaying queue: one sync
    // may ask to look again at several times (a restart backoff, a rollout's
    // progress deadline), and a later one must not postpone an earlier one.
    // The sync that runs then asks again for what is still ahead.
    const dueAt = performance.now() + delayMs;
    const pending = this.delayTimers.get(key);
    if (pending && pending.dueAt <= dueAt) return;
    clearTimeout(pending?.timer);
    const timer = setTimeout(() => {
      this.delayTimers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.delayTimers.set(key, { timer, dueAt });
  }

  /** Adds the key once the rate limiter allows (what a failed sync does). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.scheduleRetry(key, this.limiter.when(key));
  }

  /** Forgets the key's failures: its next retry starts from the first delay. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Consecutive failures of a key since it last succeeded. */
  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /** Resolves once nothing is queued, running or waiting for a retry. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking keys and cancels pending retries and delays; running syncs finish. */
  shutdown(): void {
    this.shuttingDown = true;
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    for (const { timer } of this.delayTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    this.delayTimers.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.dirty.clear();
    this.notifyIfIdle();
  }

  private pump(): void {
    while (!this.shuttingDown && this.processing.size < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift() as string;
      this.queued.delete(key);
      this.processing.add(key);
      void this.run(key);
    }
    this.notifyIfIdle();
  }

  private async run(key: string): Promise<void> {
    try {
      await this.sync(key);
      this.limiter.forget(key);
    } catch (error) {
      const delay = this.limiter.when(key);
      this.options.onError?.(key, error, delay);
      this.options.logger?.warn(
        { err: error, key, attempt: this.limiter.numRequeues(key), retryInMs: delay },
        `${this.options.name ?? "work queue"}: sync failed; requeued`,
      );
      // A dirty key runs again at once below; a retry timer would run it twice.
      if (!this.shuttingDown && !this.dirty.has(key)) this.scheduleRetry(key, delay);
    } finally {
      this.processing.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }

  private scheduleRetry(key: string, delayMs: number): void {
    clearTimeout(this.retryTimers.get(key));
    const timer = setTimeout(() => {
      this.retryTimers.delete(key);
      this.add(key);
      this.notifyIfIdle();
    }, delayMs);
    // A pending retry must not keep a stopping process alive; shutdown() cancels it anyway.
    timer.unref();
    this.retryTimers.set(key, timer);
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.processing.size === 0 && this.retryTimers.size === 0;
  }

  private notifyIfIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
