// Whether etcd answers, known before a caller waits for it. Without this, a
// store with no quorum (members alive, none able to commit) makes every call
// hang until its deadline (5 s): the API would answer 503 only then, each
// request again, and a replica cut off from etcd would keep serving from
// caches it cannot refresh.
//
// A cheap probe (a linearizable one-key read: it needs a quorum, as writes
// do) runs every `intervalMs`, and at once when a real call fails to reach
// etcd. Two failures in a row (a failed call and a failed probe, or two
// probes, the second one half a second after the first) mark the store down;
// while it is down calls fail at once with
// StoreUnavailable saying for how long and why, and the probe runs every
// `downIntervalMs` so the first success marks it up again. One slow answer on
// a loaded machine does not mark it down: it takes a second failure.
//
// Our own pauses are not etcd's failures: when this process's event loop was
// blocked (a long synchronous step at start-up on a starved machine was seen
// to block it for 12 s), call deadlines and gRPC keepalive timeouts expire
// during the pause and fail calls etcd would have answered. A real call that
// fails in or right after such a pause only asks for a probe; the probe
// decides.
//
// Nor is a call that was sent before etcd was last seen to come back: its
// deadline ran out over the outage that has ended. A replica cut off for a
// few seconds has calls in flight whose deadlines expire only after the cut
// ends, and two of them marked the store down again right after it came back
// (a join answered 503 at once, test/src/ha-store-health.test.ts). Such a
// failure only asks for a probe too.
import { performance } from "node:perf_hooks";
import type { StoreLogger } from "./etcd-watch";

export interface StoreHealthOptions {
  /** Resolves when etcd answers (with a quorum); rejects otherwise. */
  probe(): Promise<void>;
  /** Probe period while up (ms). Default 1000. */
  intervalMs?: number;
  /** Probe period while down (ms). Default 500. */
  downIntervalMs?: number;
  /** Failures in a row that mark the store down. Default 2. */
  failuresToDown?: number;
  logger?: StoreLogger;
  /** Called on every change: true when etcd answers again, false when it went down. */
  onChange?(up: boolean): void;
  /** An event-loop gap at least this long is a pause of ours (ms). Default 1000. */
  pauseMs?: number;
  /** How long after a pause a failed call is not counted (ms). Default 5000 (a call's deadline). */
  pauseGraceMs?: number;
}

/** The event loop's tick used to see pauses (ms). */
const TICK_MS = 100;

export type StoreState = { up: true } | { up: false; sinceMs: number; reason: string };

export class StoreHealth {
  private current: StoreState = { up: true };
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private stopped = true;
  /** performance.now() of the pause monitor's last tick, and of the end of the last pause seen. */
  private lastTick = performance.now();
  private lastPauseEnd = -Infinity;
  /** performance.now() when the store was last marked up again after being down. */
  private upAgainAt = -Infinity;
  private monitor: NodeJS.Timeout | undefined;
  private readonly listeners: Array<(up: boolean) => void> = [];

  constructor(private readonly opts: StoreHealthOptions) {
    if (opts.onChange) this.listeners.push(opts.onChange);
  }

  get state(): StoreState {
    return this.current;
  }

  get up(): boolean {
    return this.current.up;
  }

  /** How long the store has been known down (ms), 0 while up. */
  get downForMs(): number {
    return this.current.up ? 0 : performance.now() - this.current.sinceMs;
  }

  onChange(fn: (up: boolean) => void): void {
    this.listeners.push(fn);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.lastTick = performance.now();
    this.monitor = setInterval(() => this.tick(), TICK_MS);
    this.monitor.unref();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.monitor);
    this.monitor = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * A real call could not reach etcd: one failure, and a probe now to confirm it. `startedMs`
   * (performance.now() when the call was sent): a call sent before etcd last came back counts
   * for nothing, only the probe does.
   */
  callFailed(err: unknown, startedMs?: number): void {
    this.tick();
    // Failed in or right after a pause of ours: its deadline or keepalive may have run out while we were stopped.
    const paused = performance.now() - this.lastPauseEnd < (this.opts.pauseGraceMs ?? 5000);
    const sentBeforeBack = startedMs !== undefined && startedMs < this.upAgainAt;
    if (!paused && !sentBeforeBack) this.failed(err);
    this.probeSoon();
  }

  /** Notes a pause when the event loop did not run for pauseMs (also called when a call fails, before the monitor's tick). */
  private tick(): void {
    const now = performance.now();
    if (this.monitor && now - this.lastTick >= (this.opts.pauseMs ?? 1000)) this.lastPauseEnd = now;
    this.lastTick = now;
  }

  /** A real call was answered: etcd is there. */
  callSucceeded(): void {
    this.succeeded();
  }

  private failed(err: unknown): void {
    this.failures++;
    const reason = err instanceof Error ? err.message : String(err);
    if (this.current.up && this.failures >= (this.opts.failuresToDown ?? 2)) {
      this.current = { up: false, sinceMs: performance.now(), reason };
      this.opts.logger?.warn({ reason }, "etcd is down: answering StoreUnavailable at once until it answers again");
      this.notify(false);
    } else if (!this.current.up) {
      this.current = { ...this.current, reason };
    }
  }

  private succeeded(): void {
    this.failures = 0;
    if (this.current.up) return;
    const downMs = Math.round(this.downForMs);
    this.current = { up: true };
    this.upAgainAt = performance.now();
    this.opts.logger?.info({ downMs }, "etcd answers again");
    this.notify(true);
  }

  private notify(up: boolean): void {
    for (const fn of this.listeners) {
      try {
        fn(up);
      } catch (err) {
        this.opts.logger?.error({ err: (err as Error).message }, "store health listener threw");
      }
    }
  }

  private probeSoon(): void {
    if (this.stopped || this.probing) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    void this.runProbe();
  }

  private async runProbe(): Promise<void> {
    this.probing = this.opts.probe().then(
      () => this.succeeded(),
      (err: unknown) => this.failed(err),
    );
    await this.probing;
    this.probing = undefined;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.probing || this.timer) return;
    // Suspect (one failure) or down: probe at the faster pace.
    const ms =
      this.current.up && this.failures === 0 ? (this.opts.intervalMs ?? 1000) : (this.opts.downIntervalMs ?? 500);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runProbe();
    }, ms);
    this.timer.unref();
  }
}
