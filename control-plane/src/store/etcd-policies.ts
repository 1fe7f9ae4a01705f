// The etcd3 client's fault handling for the store, split from etcd-store.ts:
// each call runs once per endpoint and goes to the next member only when its
// own could not serve it; watch reconnects are ours (etcd-watch.ts).
import type { IOptions } from "etcd3";

type FaultPolicy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

/**
 * A policy that runs the call once (per endpoint). etcd3's defaults retry
 * three times and open a per-host circuit breaker for 5 s after three
 * failures; we would rather fail fast (the caller decides) and talk to etcd
 * again the moment it is back.
 */
export function runOncePolicy(): FaultPolicy {
  const noEvent = () => ({ dispose() {} });
  const policy = {
    onSuccess: noEvent,
    onFailure: noEvent,
    execute<T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
      return Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal }));
    },
  };
  return policy as unknown as FaultPolicy;
}

/** Errors after which the same call goes to the next endpoint: that member was not reached or cannot serve. */
export function isFailoverError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (code === 14 || err.name === "GRPCUnavailableError" || err.constructor.name === "GRPCUnavailableError")
    return true;
  return /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|No connection established|etcdserver: (no leader|leader changed)/i.test(
    err.message,
  );
}

/**
 * Per-call failover: etcd3 hands each attempt of one call the next endpoint
 * of a shuffled list, so retrying a call whose member was down (connection
 * refused, UNAVAILABLE) or had no leader (cut off from the others) sends it
 * to another member at once, up to one attempt per endpoint. A deadline
 * exceeded is not retried: the call's time is spent, and the API should say
 * 503 rather than wait once more per member. Replaying a write is safe here:
 * every Grove write is a compare-and-swap (a replay after an unseen success
 * fails its compare) or an idempotent put.
 */
export function failoverPolicy(attempts: number): FaultPolicy {
  const noEvent = () => ({ dispose() {} });
  const policy = {
    onSuccess: noEvent,
    onFailure: noEvent,
    async execute<T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
      const ctx = { signal: signal ?? new AbortController().signal };
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn(ctx);
        } catch (err) {
          if (attempt >= attempts || !isFailoverError(err)) throw err;
        }
      }
    },
  };
  return policy as unknown as FaultPolicy;
}

type WatchBackoff = NonNullable<NonNullable<IOptions["faultHandling"]>["watchBackoff"]>;

/**
 * etcd3's own watch-stream reconnect delay. We drop etcd3 watchers on
 * disconnect and re-create them on our own backoff, so etcd3's timer only
 * finds an empty stream; keep it short (its default grows to 30 s and keeps
 * the process alive after close()).
 */
export function shortConstantBackoff(): WatchBackoff {
  const backoff = { duration: 100, next: () => backoff };
  return backoff as unknown as WatchBackoff;
}
