// The agent's reconciler: converges the node's containers to the whole
// desired instance set the control plane last sent.
//
// Level-triggered in the manner of Kubernetes' sample-controller: every input
// (a new desired set, a container exit, a periodic resync) only enqueues
// instance uids; sync(uid) compares desired and actual state for one uid,
// acts idempotently, and throws to be retried with backoff. The work queue
// never runs two syncs of the same uid at once, so a uid is never started
// and stopped concurrently.
//
// Instances that finished (exited, failed, OOM-killed, failed to start) are
// remembered by uid and never started again: replacing them is the control
// plane's decision. Their last status stays in statuses() (and so in every
// Register) until their uid leaves the desired set.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { pino, type Logger } from "pino";
import type { DesiredInstances__Output, InstanceSpec__Output, InstanceStatus } from "@grove/proto";
import type { ContainerExit, ContainerHandle, ContainerRuntime, ContainerSpec } from "../runtime/types";
import { WorkQueue } from "./work-queue";

/** Reasons the agent puts on InstanceStatus.reason. */
export const StatusReason = {
  InvalidRootfs: "InvalidRootfs",
  InvalidUid: "InvalidUid",
  StartFailed: "StartFailed",
  OOMKilled: "OOMKilled",
  Completed: "Completed",
  Error: "Error",
  /** The agent stopped it because its uid left the desired set (or the agent shut down). */
  Stopped: "Stopped",
  /** The runtime lost track of the container's exit. */
  RuntimeError: "RuntimeError",
} as const;

export interface ReconcilerOptions {
  runtime: ContainerRuntime;
  /** Directory holding the root filesystems named by InstanceSpec.rootfs. */
  rootfsDir: string;
  /** The agent's state directory; container logs go to <stateDir>/logs/<uid>.log. */
  stateDir: string;
  /** Told about every status change, in order per uid. */
  onStatus?: (status: InstanceStatus) => void;
  logger?: Logger;
  /** Distinct uids synced at the same time (default 16). */
  concurrency?: number;
  /** Backoff of a failing sync: first delay, doubling up to the max (default 200 ms .. 30 s). */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Re-syncs every known uid this often as a safety net; 0 turns it off (default 30 s). */
  resyncIntervalMs?: number;
  now?: () => number;
}

/** What the reconciler knows about one instance it started (or refused to start). */
interface TrackedInstance {
  uid: string;
  spec: InstanceSpec__Output;
  /** Last status reported. */
  status: InstanceStatus;
  /** The status is terminal: the instance is never started again. */
  finished: boolean;
  handle?: ContainerHandle;
  /** The container's exit, once observed and not yet folded into `status`. */
  exit?: ContainerExit;
  exitError?: unknown;
  /** The agent asked the runtime to stop it. */
  stopRequested: boolean;
  /** Nothing of it is left in the runtime (never created, or removed). */
  removed: boolean;
}

/** Container ids are uids: the runtime accepts [A-Za-z0-9_.-]{1,64}. */
const UID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export class Reconciler {
  private desired = new Map<string, InstanceSpec__Output>();
  private readonly tracked = new Map<string, TrackedInstance>();
  private readonly queue: WorkQueue;
  private readonly runtime: ContainerRuntime;
  private readonly log: Logger;
  private readonly now: () => number;
  private resyncTimer: NodeJS.Timeout | undefined;
  private started = false;
  private shuttingDown = false;

  constructor(private readonly options: ReconcilerOptions) {
    this.runtime = options.runtime;
    this.log = options.logger ?? pino({ level: "silent" });
    this.now = options.now ?? Date.now;
    this.queue = new WorkQueue((uid) => this.sync(uid), {
      concurrency: options.concurrency ?? 16,
      baseDelayMs: options.retryBaseDelayMs ?? 200,
      maxDelayMs: options.retryMaxDelayMs ?? 30_000,
      onError: (uid, error, retryInMs) => this.log.warn({ uid, err: error, retryInMs }, "sync failed; will retry"),
    });
  }

  /**
   * Prepares the state directory and removes containers a previous agent run
   * left behind (this skeleton does not adopt them), then starts syncing.
   * setDesired() before start() is kept and acted on here.
   */
  async start(): Promise<void> {
    if (this.started) return;
    await fs.mkdir(this.logDir(), { recursive: true });
    const stale = await this.runtime.cleanupStale();
    if (stale.length > 0) this.log.info({ containers: stale }, "removed containers left by a previous agent run");
    this.started = true;
    const interval = this.options.resyncIntervalMs ?? 30_000;
    if (interval > 0) {
      this.resyncTimer = setInterval(() => this.enqueueAll(), interval);
      this.resyncTimer.unref();
    }
    this.enqueueAll();
  }

  /** Replaces the whole desired set. Idempotent: the same set again changes nothing. */
  setDesired(desired: DesiredInstances__Output): void {
    const next = new Map<string, InstanceSpec__Output>();
    for (const spec of desired.instances) {
      if (spec.uid === "") {
        this.log.warn({ name: spec.name }, "ignoring desired instance without uid");
        continue;
      }
      next.set(spec.uid, spec);
    }
    const previous = this.desired;
    this.desired = next;
    this.log.debug({ revision: desired.revision, instances: next.size }, "desired set received");
    if (!this.started) return;
    for (const uid of new Set([...previous.keys(), ...next.keys()])) this.queue.add(uid);
  }

  /** The current status of every instance the agent knows of (for Register.instances). */
  statuses(): InstanceStatus[] {
    return [...this.tracked.values()].map((t) => ({ ...t.status }));
  }

  /** Resolves when no sync is queued, running or waiting for a retry. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * Stops and removes every container (desired or not) and resolves when
   * done; nothing is started afterwards. A stop that keeps failing keeps
   * this pending, so callers bound it with a timeout.
   */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (!this.started) return;
    this.enqueueAll();
    await this.queue.idle();
  }

  /** Stops background work without touching containers (tests, fatal errors). */
  close(): void {
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.queue.close();
  }

  private enqueueAll(): void {
    const uids = new Set([...this.desired.keys(), ...this.tracked.keys(), ...this.runtime.list().map((h) => h.id)]);
    for (const uid of uids) this.queue.add(uid);
  }

  /** Converges one uid. Throws to be retried with backoff. */
  private async sync(uid: string): Promise<void> {
    const spec = this.shuttingDown ? undefined : this.desired.get(uid);
    const tracked = this.tracked.get(uid);

    if (tracked && !tracked.finished && (tracked.exit || tracked.exitError !== undefined)) {
      this.finish(tracked, this.exitStatus(tracked));
    }

    if (spec) {
      // Desired and never seen: start it. Known: running stays running,
      // finished stays finished (only its leftovers are removed).
      if (!tracked) return this.startInstance(spec);
      if (tracked.finished && !tracked.removed) await this.removeContainer(tracked);
      return;
    }

    if (!tracked) {
      // Not desired and not ours (nothing should get here after cleanupStale,
      // but level-triggered means we converge whatever the runtime has).
      if (this.runtime.list().some((h) => h.id === uid)) {
        this.log.info({ uid }, "stopping unknown container");
        await this.runtime.stop(uid, 0);
        await this.runtime.remove(uid);
      }
      return;
    }

    if (!tracked.finished) {
      tracked.stopRequested = true;
      const grace = Math.max(0, tracked.spec.stopGraceSeconds);
      this.log.info({ uid, graceSeconds: grace }, "stopping instance");
      const exit = await this.runtime.stop(uid, grace);
      tracked.exit ??= exit;
      this.finish(tracked, this.exitStatus(tracked));
    }
    if (!tracked.removed) await this.removeContainer(tracked);
    this.tracked.delete(uid);
  }

  private async startInstance(spec: InstanceSpec__Output): Promise<void> {
    const uid = spec.uid;
    const base = { uid, namespace: spec.namespace, name: spec.name };
    const tracked: TrackedInstance = {
      uid,
      spec,
      status: { ...base, state: "PENDING" },
      finished: false,
      stopRequested: false,
      removed: true,
    };
    this.tracked.set(uid, tracked);

    // Both become path components on the host: refuse anything but plain names.
    if (!UID_PATTERN.test(uid)) {
      return this.finish(tracked, {
        ...base,
        state: "FAILED",
        reason: StatusReason.InvalidUid,
        message: `uid ${JSON.stringify(uid)} is not 1..64 characters of [A-Za-z0-9_.-]`,
        finishedAtMs: this.now(),
      });
    }
    if (!isPlainName(spec.rootfs)) {
      return this.finish(tracked, {
        ...base,
        state: "FAILED",
        reason: StatusReason.InvalidRootfs,
        message: `rootfs ${JSON.stringify(spec.rootfs)} must be the plain name of a directory in ${this.options.rootfsDir}`,
        finishedAtMs: this.now(),
      });
    }

    this.report(tracked, { ...base, state: "STARTING" });
    const containerSpec = this.containerSpecOf(spec);
    tracked.removed = false;
    let handle: ContainerHandle;
    try {
      this.log.info({ uid, name: spec.name, rootfs: containerSpec.rootfs }, "starting instance");
      handle = await this.runtime.start(containerSpec);
    } catch (error) {
      this.log.warn({ uid, err: error }, "instance failed to start");
      this.finish(tracked, {
        ...base,
        state: "FAILED",
        reason: StatusReason.StartFailed,
        message: errorMessage(error),
        finishedAtMs: this.now(),
      });
      // A half-made container may be left; removing it can be retried.
      if (!this.runtime.list().some((h) => h.id === uid)) tracked.removed = true;
      else await this.removeContainer(tracked);
      return;
    }

    tracked.handle = handle;
    this.report(tracked, {
      ...base,
      state: "RUNNING",
      pid: handle.pid,
      startedAtMs: handle.startedAt.getTime(),
    });
    handle.exited.then(
      (exit) => {
        tracked.exit = exit;
        this.queue.add(uid);
      },
      (error: unknown) => {
        tracked.exitError = error ?? new Error("exit lost");
        this.queue.add(uid);
      },
    );
  }

  private containerSpecOf(spec: InstanceSpec__Output): ContainerSpec {
    const containerSpec: ContainerSpec = {
      id: spec.uid,
      rootfs: path.join(this.options.rootfsDir, spec.rootfs),
      command: [...spec.command],
      env: { ...spec.env },
      hostname: spec.hostname || spec.name,
      resources: {
        cpuMillis: Number(spec.resources?.cpuMillis ?? 0),
        memoryBytes: Number(spec.resources?.memoryBytes ?? 0),
        pids: Number(spec.resources?.pids ?? 0),
      },
      logPath: path.join(this.logDir(), `${spec.uid}.log`),
    };
    if (spec.workingDir) containerSpec.workingDir = spec.workingDir;
    return containerSpec;
  }

  /** The terminal status for an observed exit. */
  private exitStatus(tracked: TrackedInstance): InstanceStatus {
    const { uid, spec, status } = tracked;
    const base: InstanceStatus = {
      uid,
      namespace: spec.namespace,
      name: spec.name,
      pid: status.pid ?? 0,
      startedAtMs: status.startedAtMs ?? 0,
    };
    const exit = tracked.exit;
    if (!exit) {
      return {
        ...base,
        state: "FAILED",
        reason: StatusReason.RuntimeError,
        message: `lost the container's exit: ${errorMessage(tracked.exitError)}`,
        finishedAtMs: this.now(),
      };
    }
    const result = { ...base, exitCode: exit.exitCode, signal: exit.signal, finishedAtMs: exit.finishedAt.getTime() };
    const ended = exit.signal !== 0 ? `killed by signal ${exit.signal}` : `exited with code ${exit.exitCode}`;
    if (exit.oomKilled) {
      return {
        ...result,
        state: "OOM_KILLED",
        reason: StatusReason.OOMKilled,
        message: `${ended} after the OOM killer fired`,
      };
    }
    if (tracked.stopRequested) {
      return { ...result, state: "EXITED", reason: StatusReason.Stopped, message: `stopped by the agent; ${ended}` };
    }
    if (exit.exitCode === 0 && exit.signal === 0) {
      return { ...result, state: "EXITED", reason: StatusReason.Completed, message: ended };
    }
    return { ...result, state: "FAILED", reason: StatusReason.Error, message: ended };
  }

  private async removeContainer(tracked: TrackedInstance): Promise<void> {
    await this.runtime.remove(tracked.uid);
    tracked.removed = true;
  }

  private finish(tracked: TrackedInstance, status: InstanceStatus): void {
    tracked.finished = true;
    this.log.info(
      { uid: tracked.uid, state: status.state, reason: status.reason, message: status.message },
      "instance finished",
    );
    this.report(tracked, status);
  }

  private report(tracked: TrackedInstance, status: InstanceStatus): void {
    tracked.status = status;
    try {
      this.options.onStatus?.({ ...status });
    } catch (error) {
      this.log.error({ uid: tracked.uid, err: error }, "status listener threw");
    }
  }

  private logDir(): string {
    return path.join(this.options.stateDir, "logs");
  }
}

/** A single path component: not empty, not "." or "..", no separator or NUL. */
export function isPlainName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !/[/\\\0]/.test(name);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
