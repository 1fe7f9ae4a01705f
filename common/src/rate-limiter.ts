// Rate limiters for WorkQueue retries, as client-go's workqueue: a per-key
// exponential backoff (one failing key waits longer and longer) combined with
// an overall token bucket (many failing keys together cannot retry faster than
// `qps` after a burst). A queue asks `when(key)` once per failure.
import { performance } from "node:perf_hooks";
import { backoffDelay } from "./backoff";

export interface RateLimiter {
  /** Delay before the key's next retry; counts one more retry of the key. */
  when(key: string): number;
  /** The key succeeded (or was given up): its own backoff starts over. */
  forget(key: string): void;
  /** Retries counted for the key since it was last forgotten. */
  numRequeues(key: string): number;
}

/** baseMs * 2^(retries of this key), capped at maxMs (client-go's ItemExponentialFailureRateLimiter). */
export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {
    backoffDelay(0, { initialMs: baseMs, maxMs });
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return backoffDelay(n, { initialMs: this.baseMs, maxMs: this.maxMs });
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * A token bucket over all keys (client-go's BucketRateLimiter): `burst`
 * retries at once, then `qps` per second. Each when() takes a token, waiting
 * for it if the bucket is empty. Time is monotonic.
 */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(qps > 0) || !(burst >= 1))
      throw new RangeError(`rate limiter: need qps > 0 and burst >= 1, got ${qps}, ${burst}`);
    this.tokens = burst;
    this.last = now();
  }

  when(_key: string): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.qps) / 1000);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.qps);
  }

  forget(_key: string): void {}

  numRequeues(_key: string): number {
    return 0;
  }
}

/** The longest delay of several limiters (client-go's MaxOfRateLimiter). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    let delay = 0;
    for (const l of this.limiters) delay = Math.max(delay, l.when(key));
    return delay;
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    let n = 0;
    for (const l of this.limiters) n = Math.max(n, l.numRequeues(key));
    return n;
  }
}

export interface ControllerRateLimiterOptions {
  /** First retry delay of a key; doubles per consecutive failure. Default 200 ms. */
  baseDelayMs?: number;
  /** Cap of a key's retry delay. Default 30 s. */
  maxDelayMs?: number;
  /** Retries per second over all keys once the burst is used. Default 10 (client-go's). */
  qps?: number;
  /** Retries over all keys without waiting for the bucket. Default 100 (client-go's). */
  burst?: number;
}

/** client-go's DefaultControllerRateLimiter with Grove's per-key delays. */
export function controllerRateLimiter(options: ControllerRateLimiterOptions = {}): RateLimiter {
  return new MaxOfRateLimiter(
    new ItemExponentialRateLimiter(options.baseDelayMs ?? 200, options.maxDelayMs ?? 30_000),
    new BucketRateLimiter(options.qps ?? 10, options.burst ?? 100),
  );
}
