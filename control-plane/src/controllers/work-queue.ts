// A rate-limited work queue in the style of client-go's: handlers only add
// keys; one worker runs sync(key); a key added while it is being processed is
// processed again afterwards; sync throwing requeues the key with exponential
// backoff. Keys are deduplicated, so a burst of events costs one sync.
import type { Logger } from "pino";

export type SyncFn = (key: string) => Promise<void>;

export interface WorkQueueOptions {
  name: string;
  sync: SyncFn;
  logger?: Logger;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private running = false;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: WorkQueueOptions) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    void this.drain();
  }

  /** Adds the key after a delay (replacing an earlier pending delay for it). */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    const prev = this.timers.get(key);
    if (prev) clearTimeout(prev);
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    t.unref();
    this.timers.set(key, t);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
  }

  /** Resolves when nothing is queued or being processed (for tests). */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const key = this.queue.shift() as string;
        this.queued.delete(key);
        this.processing.add(key);
        try {
          await this.opts.sync(key);
          this.failures.delete(key);
        } catch (err) {
          const n = (this.failures.get(key) ?? 0) + 1;
          this.failures.set(key, n);
          const delay = Math.min((this.opts.baseDelayMs ?? 200) * 2 ** (n - 1), this.opts.maxDelayMs ?? 30_000);
          this.opts.logger?.warn(
            { err, key, attempt: n, retryInMs: delay },
            `${this.opts.name}: sync failed; requeued`,
          );
          this.addAfter(key, delay);
        } finally {
          this.processing.delete(key);
          if (this.dirty.delete(key)) this.add(key);
        }
      }
    } finally {
      this.running = false;
      if (this.queue.length === 0) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const r of w) r();
      }
    }
  }
}
