// Runs an instance's health checks. Each check probes every periodSeconds on
// a monotonic clock (performance.now), with at most one probe in flight: the
// next is timed from the start of the last and never starts before it ended.
// successThreshold consecutive passes make a check pass, failureThreshold
// consecutive failures make it fail. A startup check gates the others: they
// start only once it passed; if it fails, the instance counts as not alive.
// stop() clears every timer; probes in flight settle on their own timeout
// and their results are dropped.
import { performance } from "node:perf_hooks";
import type { Probe, ProbeOutcome } from "./probes";

export type CheckRole = "startup" | "liveness" | "readiness";

export interface CheckTiming {
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
}

export interface RunnableCheck extends CheckTiming {
  kind: "http" | "tcp" | "exec";
  probe: Probe;
}

export interface CheckResultEvent {
  check: CheckRole;
  kind: string;
  ok: boolean;
  message: string;
  /** Wall-clock time of the result, for status (timers use the monotonic clock). */
  time: string;
}

export interface HealthCallbacks {
  /** Readiness changed (false until a readiness or startup check has passed). */
  onReady(ready: boolean): void;
  /** Liveness (or startup) reached failureThreshold consecutive failures; the checks have stopped. */
  onNotAlive(role: CheckRole, message: string): void;
  /** Every probe result. */
  onResult?(r: CheckResultEvent): void;
}

/** Timings with Kubernetes' defaults filled in. */
export function withDefaults(t: Partial<CheckTiming>): CheckTiming {
  return {
    initialDelaySeconds: t.initialDelaySeconds ?? 0,
    periodSeconds: t.periodSeconds ?? 10,
    timeoutSeconds: t.timeoutSeconds ?? 1,
    successThreshold: t.successThreshold ?? 1,
    failureThreshold: t.failureThreshold ?? 3,
  };
}

class CheckLoop {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  /** undefined until the thresholds decided it. */
  passing: boolean | undefined;

  constructor(
    readonly role: CheckRole,
    private readonly check: RunnableCheck,
    private readonly onOutcome: (loop: CheckLoop, o: ProbeOutcome, changed: boolean) => void,
  ) {}

  start(): void {
    this.schedule(performance.now() + this.check.initialDelaySeconds * 1000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(atMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(), Math.max(0, atMs - performance.now()));
  }

  private async run(): Promise<void> {
    this.timer = undefined;
    const started = performance.now();
    const o = await this.check.probe(this.check.timeoutSeconds * 1000);
    if (this.stopped) return;
    let changed = false;
    if (o.ok) {
      this.failures = 0;
      this.successes++;
      if (this.passing !== true && this.successes >= this.check.successThreshold) {
        this.passing = true;
        changed = true;
      }
    } else {
      this.successes = 0;
      this.failures++;
      if (this.passing !== false && this.failures >= this.check.failureThreshold) {
        this.passing = false;
        changed = true;
      }
    }
    this.onOutcome(this, o, changed);
    this.schedule(started + this.check.periodSeconds * 1000);
  }
}

/** The checks of one running instance. */
export class InstanceHealth {
  private loops: CheckLoop[] = [];
  private ready: boolean | undefined;
  private stopped = false;

  constructor(
    private readonly checks: Partial<Record<CheckRole, RunnableCheck>>,
    private readonly cb: HealthCallbacks,
  ) {}

  /** Whether there is anything to run. */
  get empty(): boolean {
    return !this.checks.startup && !this.checks.liveness && !this.checks.readiness;
  }

  start(): void {
    if (this.checks.startup || this.checks.readiness) this.setReady(false);
    if (this.checks.startup) this.begin("startup");
    else this.beginMain();
  }

  stop(): void {
    this.stopped = true;
    for (const l of this.loops) l.stop();
    this.loops = [];
  }

  private beginMain(): void {
    if (this.checks.liveness) this.begin("liveness");
    if (this.checks.readiness) this.begin("readiness");
    else if (this.checks.startup) this.setReady(true);
  }

  private begin(role: CheckRole): void {
    const check = this.checks[role];
    if (!check) return;
    const loop = new CheckLoop(role, check, (l, o, changed) => this.outcome(l, check, o, changed));
    this.loops.push(loop);
    loop.start();
  }

  private outcome(loop: CheckLoop, check: RunnableCheck, o: ProbeOutcome, changed: boolean): void {
    if (this.stopped) return;
    this.cb.onResult?.({
      check: loop.role,
      kind: check.kind,
      ok: o.ok,
      message: o.message,
      time: new Date().toISOString(),
    });
    if (!changed) return;
    if (loop.role === "readiness") {
      this.setReady(loop.passing === true);
    } else if (loop.passing === false) {
      this.stop();
      this.setReady(false);
      this.cb.onNotAlive(loop.role, `${loop.role} check failed ${check.failureThreshold} times: ${o.message}`);
    } else if (loop.role === "startup") {
      // Passed once: the startup check is done and the others take over.
      loop.stop();
      this.loops = this.loops.filter((l) => l !== loop);
      this.beginMain();
    }
  }

  private setReady(ready: boolean): void {
    if (this.ready === ready || (this.stopped && ready)) return;
    this.ready = ready;
    this.cb.onReady(ready);
  }
}
