// Hand-offs between asynchronous stages inside one process. An HTTP request
// writes an App; a controller reacts to the watch event later, outside that
// request. For the controller's work to join the request's trace, the writer
// remembers its trace context under the key it wrote (the store does this for
// every write made inside a span) and the next stage takes it when it handles
// that key: the App controller the App's, the scheduler each Instance's, the
// agent gateway each bound Instance's, the agent's reconciler each uid's.
//
// Only process-local, bounded (oldest dropped first) and short-lived: a hand-off
// to another replica (the leader is not the replica that took the request)
// starts a new trace there (docs/observability.md, "Traces").
import type { Context } from "@opentelemetry/api";
import { activeTraceContext, tracingOn } from "./tracing";

const MAX_ENTRIES = 4096;
const TTL_MS = 60_000;

export class TraceLinks {
  private readonly entries = new Map<string, { ctx: Context; at: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Remembers the active trace context (when a span is recording) for `key`. */
  remember(key: string, ctx: Context | undefined = activeTraceContext()): void {
    if (!ctx) return;
    this.entries.delete(key); // re-inserted last: the map's order is age
    this.entries.set(key, { ctx, at: this.now() });
    if (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  /** The context remembered for `key` (once: it is forgotten), unless older than a minute. */
  take(key: string): Context | undefined {
    if (!tracingOn()) return undefined;
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    return this.now() - e.at <= TTL_MS ? e.ctx : undefined;
  }

  /** The first context remembered for any of `keys` (all of them are taken). */
  takeAny(keys: Iterable<string>): Context | undefined {
    let found: Context | undefined;
    for (const k of keys) {
      const ctx = this.take(k);
      found ??= ctx;
    }
    return found;
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The process's hand-offs (one per process: the store, controllers and gateway share it). */
export const traceLinks = new TraceLinks();
