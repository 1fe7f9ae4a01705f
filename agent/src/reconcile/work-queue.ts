// A keyed work queue in the manner of client-go's workqueue: adding a key
// that is already queued is a no-op, a key is never handled by two workers at
// once (adding it while it is being handled marks it dirty, and it runs again
// afterwards), and a handler that throws gets its key requeued with
// per-key exponential backoff.

export interface WorkQueueOptions {
  /** Distinct keys handled at the same time. */
  concurrency?: number;
  /** First retry delay after a handler throws; doubles per consecutive failure. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Told about every failure and when the key will be retried. */
  onError?: (key: string, error: unknown, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly handler: (key: string) => Promise<void>,
    private readonly options: WorkQueueOptions = {},
  ) {
    this.concurrency = Math.max(1, options.concurrency ?? 16);
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
  }

  add(key: string): void {
    if (this.closed) return;
    const timer = this.retryTimers.get(key);
    if (timer) {
      // It is about to run anyway; a new failure schedules a new retry.
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

  /** Consecutive failures of a key since it last succeeded. */
  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Resolves once nothing is queued, running or waiting for a retry. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking keys and cancels pending retries; running handlers finish. */
  close(): void {
    this.closed = true;
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.dirty.clear();
    this.notifyIfIdle();
  }

  private pump(): void {
    while (!this.closed && this.processing.size < this.concurrency) {
      // Skip keys that are being handled: they come back through `dirty`.
      const index = this.queue.findIndex((k) => !this.processing.has(k));
      if (index < 0) break;
      const [key] = this.queue.splice(index, 1) as [string];
      this.queued.delete(key);
      this.processing.add(key);
      void this.run(key);
    }
    this.notifyIfIdle();
  }

  private async run(key: string): Promise<void> {
    try {
      await this.handler(key);
      this.failures.delete(key);
    } catch (error) {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (failures - 1));
      this.options.onError?.(key, error, delay);
      if (!this.closed && !this.dirty.has(key)) this.scheduleRetry(key, delay);
    } finally {
      this.processing.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }

  private scheduleRetry(key: string, delayMs: number): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(key);
      this.add(key);
      this.notifyIfIdle();
    }, delayMs);
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
