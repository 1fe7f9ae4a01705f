// The one retry policy of Grove: exponential backoff from a first delay up to
// a cap, with optional jitter, as gRPC's connection backoff and client-go's
// wait.Backoff. Reconnect loops, watch re-establishment, supervised restarts
// and bounded retries of one operation all draw their delays from here, so
// "how long until the next try" has one answer and one test.
import { performance } from "node:perf_hooks";

export interface BackoffPolicy {
  /** Delay before the first retry (attempt 0). */
  initialMs: number;
  /** Cap on any delay. */
  maxMs: number;
  /** Growth per attempt; default 2. 1 keeps the delay constant. */
  factor?: number;
  /**
   * Spread of a delay as a fraction: 0.2 draws it from ±20 % around the
   * exponential value (still within [initialMs, maxMs]). Replicas and agents
   * that lost the same peer at the same moment then do not retry in step.
   * Default 0.
   */
  jitter?: number;
}

/** Random numbers in [0, 1); injectable so jittered delays can be tested. */
export type RandomSource = () => number;

/** Delay before retry number `attempt` (0-based): initialMs * factor^attempt, jittered, capped. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: RandomSource = Math.random): number {
  const { initialMs, maxMs } = policy;
  const factor = policy.factor ?? 2;
  const jitter = policy.jitter ?? 0;
  if (!(initialMs >= 0) || !(maxMs >= initialMs)) {
    throw new RangeError(`backoff: need 0 <= initialMs <= maxMs, got initialMs ${initialMs}, maxMs ${maxMs}`);
  }
  if (!(factor >= 1)) throw new RangeError(`backoff: factor must be >= 1, got ${factor}`);
  if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`backoff: jitter must be within [0, 1], got ${jitter}`);
  if (initialMs === 0) return 0;
  // factor ** attempt overflows to Infinity for large attempts; the cap absorbs it.
  const base = Math.min(maxMs, initialMs * factor ** Math.max(0, attempt));
  if (jitter === 0) return base;
  const jittered = base * (1 - jitter + 2 * jitter * random());
  return Math.round(Math.min(maxMs, Math.max(initialMs, jittered)));
}

/** A backoff with its attempt counter: next() for each failure, reset() after a success. */
export class Backoff {
  private attempts = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: RandomSource = Math.random,
  ) {
    backoffDelay(0, policy, random); // refuse a bad policy at construction, not at the first failure
  }

  /** Failures counted since the last reset(). */
  get attempt(): number {
    return this.attempts;
  }

  /** The delay before the next try; counts one more failure. */
  next(): number {
    return backoffDelay(this.attempts++, this.policy, this.random);
  }

  reset(): void {
    this.attempts = 0;
  }
}

/** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export interface RetryOptions extends BackoffPolicy {
  /** Retries after the first try (so at most retries + 1 tries); default unlimited. */
  retries?: number;
  /**
   * Budget for all tries, measured on the monotonic clock from the first try:
   * no retry starts (and no delay is slept) past it. Default unlimited.
   */
  timeoutMs?: number;
  /** Stops waiting and rejects with the signal's reason; a running try is not interrupted. */
  signal?: AbortSignal;
  /** Whether this error is worth another try; default: every error is. */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  /** Told before each delay (for logging). */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  random?: RandomSource;
  /** Monotonic milliseconds; injectable for tests. */
  now?: () => number;
}

/**
 * Runs `fn` until it resolves, sleeping a backoff delay between tries.
 * Rethrows the last error once retries or the time budget are spent, or an
 * error shouldRetry refuses; `attempt` counts from 0.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const backoff = new Backoff(options, options.random);
  const now = options.now ?? (() => performance.now());
  const deadline = options.timeoutMs === undefined ? Infinity : now() + options.timeoutMs;
  const retries = options.retries ?? Infinity;
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw abortReason(options.signal);
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= retries || (options.shouldRetry && !options.shouldRetry(error, attempt))) throw error;
      const delay = backoff.next();
      if (now() + delay > deadline) throw error;
      options.onRetry?.(error, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error("aborted");
}
