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
// A running instance whose desired resources differ from the limits its
// container has (a resize in place: same uid, new resources) gets them
// through runtime.update() without a restart; the applied limits are
// reported in InstanceStatus.applied_resources and recorded by the runtime,
// so an agent restart knows them. When the kernel refuses (a memory limit
// below what the container uses, on cgroup v1) the instance keeps running
// with its old limits, reported RUNNING with reason ResizeFailed and the
// kernel's message; the same resize is tried again only after
// resizeRetryDelayMs (at a periodic resync), not in a hot loop.
//
// An instance whose spec carries stop_after_ms (the App's
// spec.disconnect.stopAfter) is stopped by the agent itself once the node has
// been without contact with the control plane that long (withoutContactMs,
// monotonic), and reported EXITED with reason StoppedDisconnected when contact
// returns; without it instances keep running however long the outage.
//
// Instances that finished (exited, failed, OOM-killed, failed to start) are
// remembered by uid and never started again: replacing them is the control
// plane's decision. Their last status stays in statuses() (and so in every
// Register) until their uid leaves the desired set; then, once the container
// and what its start set up are gone, one last report says `released`. Their logs
// go then too, unless the set names the uid in keep_logs (a Task's attempts, kept
// until the Task's TTL): those stay until the uid leaves that list.
//
// Starting an instance is the ordered list of prepare steps in
// start-steps.ts (root, network and /etc files, user namespace, container),
// each with its release; what a start set up is held on the instance and
// released in reverse when the start fails or the instance goes. Spec
// translation is in instance-spec.ts, statuses in instance-status.ts,
// adoption after an agent restart in adopt.ts, resize in resize.ts.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { pino, type Logger } from "pino";
import type { DesiredInstances__Output, InstanceSpec__Output, InstanceStatus } from "@grove/proto";
import type { ContainerHandle, ContainerRuntime } from "../runtime/types";
import { traceLinks, WorkQueue } from "@grove/common";
import { startInTrace } from "../observability/agent-traces";
import { releaseHeld, runSteps, StartFailure, type PrepareStep } from "./prepare-steps";
import { containerSpecOf, specProblem } from "./instance-spec";
import { errorMessage, exitStatus, startFailedStatus, StatusReason } from "./instance-status";
import { cleanupLegacyEtcFiles, startSteps, type StartContext } from "./start-steps";
import { adoptLost, adoptRecovered } from "./adopt";
import { resize } from "./resize";
import { keepAsPrevious, prunePreviousLogs, removeLogs, removeOrphanLogs } from "./log-files";
import type { ReconcilerCore, ReconcilerOptions, TrackedInstance } from "./types";
import { startHealth } from "../health/attach";
import { initialReadiness } from "../health/from-spec";

export { StatusReason } from "./instance-status";
export { formatLimits, isPlainName } from "./instance-spec";
export type { InstanceImages, InstanceNetworks, InstanceTemplates, ReconcilerOptions } from "./types";

/** A desired set; keep_logs may be left out (none kept). */
export type DesiredSet = Omit<DesiredInstances__Output, "keepLogs" | "leaderEpoch" | "traceContext"> &
  Partial<Pick<DesiredInstances__Output, "keepLogs" | "traceContext">>;

export class Reconciler {
  private desired = new Map<string, InstanceSpec__Output>();
  /** Uids of finished instances whose logs stay (DesiredInstances.keep_logs). */
  private keepLogs = new Set<string>();
  private readonly tracked = new Map<string, TrackedInstance>();
  private readonly queue: WorkQueue;
  private readonly runtime: ContainerRuntime;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly logDir: string;
  /** What the start steps, adoption and resize use of this reconciler. */
  private readonly core: ReconcilerCore;
  private readonly steps: readonly PrepareStep<StartContext>[];
  private resyncTimer: NodeJS.Timeout | undefined;
  private disconnectTimer: NodeJS.Timeout | undefined;
  private started = false;
  private shuttingDown = false;
  /** No desired set yet (e.g. just after a restart): adopted containers are kept, not stopped. */
  private desiredReceived = false;
  private orphanLogsCollected = false;
  /**
   * Running containers the runtime found on the host without their records
   * (its state directory was removed): adopted with the spec of the first
   * desired set that names them, stopped when it does not.
   */
  private recordsLost = new Map<string, ContainerHandle>();
  private orphanLogs: Promise<void> = Promise.resolve();

  constructor(private readonly options: ReconcilerOptions) {
    this.runtime = options.runtime;
    this.log = options.logger ?? pino({ level: "silent" });
    this.now = options.now ?? Date.now;
    this.logDir = path.join(options.stateDir, "logs");
    this.core = {
      options,
      runtime: this.runtime,
      log: this.log,
      now: this.now,
      logDir: this.logDir,
      report: (tracked, status) => this.report(tracked, status),
      trackRunning: (tracked) => this.trackRunning(tracked),
    };
    this.steps = startSteps(this.core);
    this.queue = new WorkQueue((uid) => this.sync(uid), {
      concurrency: options.concurrency ?? 16,
      baseDelayMs: options.retryBaseDelayMs ?? 200,
      maxDelayMs: options.retryMaxDelayMs ?? 30_000,
      onError: (uid, error, retryInMs) => this.log.warn({ uid, err: error, retryInMs }, "sync failed; will retry"),
    });
  }

  /**
   * Prepares the state directory, adopts the containers a previous agent run
   * left (and learns the exits that happened meanwhile), removes what else
   * it left behind, then starts syncing. setDesired() before start() is
   * kept and acted on here.
   */
  async start(): Promise<void> {
    if (this.started) return;
    await fs.mkdir(this.logDir, { recursive: true });
    // Containers outlive the agent: adopt those still running (and learn the
    // exits that happened meanwhile) before removing anything else.
    const { uids, recordsLost } = await adoptRecovered(this.core, this.steps);
    this.recordsLost = recordsLost;
    const adopted = new Set(uids);
    const stale = await this.runtime.cleanupStale();
    if (stale.length > 0) this.log.info({ containers: stale }, "removed containers left by a previous agent run");
    if (this.options.images) {
      const roots = await this.options.images.cleanupContainers(adopted);
      if (roots.length > 0) this.log.info({ containers: roots }, "removed image roots left by a previous agent run");
    }
    if (this.options.templates) {
      const roots = await this.options.templates.cleanup(adopted);
      if (roots.length > 0) this.log.info({ containers: roots }, "removed private roots left by a previous agent run");
    }
    if (this.options.network) {
      const nets = await this.options.network.cleanupStale(adopted);
      if (nets.length > 0) this.log.info({ instances: nets }, "removed instance networks left by a previous agent run");
      const etcs = await cleanupLegacyEtcFiles(this.options.stateDir, adopted);
      if (etcs.length > 0) this.log.info({ instances: etcs }, "removed /etc files left by a previous agent run");
    }
    this.started = true;
    this.startOrphanLogCollection();
    const interval = this.options.resyncIntervalMs ?? 30_000;
    if (interval > 0) {
      this.resyncTimer = setInterval(() => this.enqueueAll(), interval);
      this.resyncTimer.unref();
    }
    if (this.options.withoutContactMs) {
      this.disconnectTimer = setInterval(() => this.checkDisconnected(), this.options.disconnectCheckIntervalMs ?? 500);
      this.disconnectTimer.unref();
    }
    this.enqueueAll();
  }

  /** Marks running instances whose stop_after_ms has passed without contact, and syncs them. */
  checkDisconnected(): void {
    const silentMs = this.options.withoutContactMs?.() ?? 0;
    if (silentMs <= 0 || this.shuttingDown) return;
    for (const t of this.tracked.values()) {
      const stopAfterMs = Number(t.spec.stopAfterMs ?? 0);
      if (!(stopAfterMs > 0) || silentMs < stopAfterMs) continue;
      if (t.finished || !t.handle || t.stopRequested || t.disconnectStopMs !== undefined) continue;
      t.disconnectStopMs = silentMs;
      this.queue.add(t.uid);
    }
  }

  /** Replaces the whole desired set. Idempotent: the same set again changes nothing. */
  setDesired(desired: DesiredSet): void {
    const next = new Map<string, InstanceSpec__Output>();
    for (const spec of desired.instances) {
      if (spec.uid === "") {
        this.log.warn({ name: spec.name }, "ignoring desired instance without uid");
        continue;
      }
      next.set(spec.uid, spec);
    }
    const previous = this.desired;
    const previousKeep = this.keepLogs;
    const first = !this.desiredReceived;
    this.desired = next;
    this.keepLogs = new Set(desired.keepLogs ?? []);
    this.desiredReceived = true;
    this.log.debug({ revision: desired.revision, instances: next.size }, "desired set received");
    // A new instance's start joins the trace of the set that brought it (grpc/client.ts made it active).
    for (const uid of next.keys()) if (!previous.has(uid)) traceLinks.remember(uid);
    if (!this.started) return;
    // Until the first set, syncs of containers adopted from an earlier run
    // kept them as they were; now each is converged (one the control plane
    // dropped while no agent ran is stopped now, not at the next resync).
    if (first) this.enqueueAll();
    for (const uid of new Set([...previous.keys(), ...next.keys(), ...previousKeep])) this.queue.add(uid);
    this.startOrphanLogCollection();
  }

  /** The App (or Task) of an instance the agent knows (metrics labels). */
  appOf(uid: string): string | undefined {
    return this.tracked.get(uid)?.spec.app ?? this.desired.get(uid)?.app;
  }

  /** The current status of every instance the agent knows of (for Register.instances). */
  statuses(): InstanceStatus[] {
    return [...this.tracked.values()].map((t) => ({ ...t.status }));
  }

  /** Resolves when no sync is queued, running or waiting for a retry. */
  async idle(): Promise<void> {
    await this.orphanLogs;
    await this.queue.idle();
  }

  /**
   * Stops and removes every container (desired or not) and resolves when
   * done; nothing is started afterwards. A stop that keeps failing keeps
   * this pending, so callers bound it with a timeout.
   */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.disconnectTimer) clearInterval(this.disconnectTimer);
    if (!this.started) return;
    this.enqueueAll();
    await this.queue.idle();
  }

  /** Stops background work without touching containers (tests, fatal errors). */
  close(): void {
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.disconnectTimer) clearInterval(this.disconnectTimer);
    this.queue.shutdown();
  }

  /** Records a status as the instance's last and tells onStatus. */
  private report(tracked: TrackedInstance, status: InstanceStatus): void {
    tracked.status = status;
    try {
      this.options.onStatus?.({ ...status });
    } catch (error) {
      this.log.error({ uid: tracked.uid, err: error }, "status listener threw");
    }
  }

  /** Tells onReleased that an instance left the node with everything its start set up. */
  private released(tracked: TrackedInstance): void {
    try {
      this.options.onReleased?.({ ...tracked.status, released: true });
    } catch (error) {
      this.log.error({ uid: tracked.uid, err: error }, "release listener threw");
    }
  }

  /** Tracks an instance whose container runs; its exit (or the loss of it) enqueues a sync. */
  private trackRunning(tracked: TrackedInstance): void {
    this.tracked.set(tracked.uid, tracked);
    // Started or adopted: its checks run from now on (agent/src/health).
    startHealth(tracked, this.runtime, {
      report: (status) => {
        if (!tracked.finished && !tracked.stopRequested) this.report(tracked, status);
      },
      notAlive: (message) => {
        tracked.livenessFailure = message;
        this.queue.add(tracked.uid);
      },
    });
    tracked.handle?.exited.then(
      (exit) => {
        tracked.exit = exit;
        this.queue.add(tracked.uid);
      },
      (error: unknown) => {
        tracked.exitError = error ?? new Error("exit lost");
        this.queue.add(tracked.uid);
      },
    );
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
      this.finish(tracked, exitStatus(tracked, this.now()));
    }

    // The App asked to be stopped after this long without the control plane
    // (desired or not: an agent restarted during an outage has no set yet).
    if (tracked && tracked.disconnectStopMs !== undefined && !tracked.finished) {
      return this.stopDisconnected(tracked, tracked.disconnectStopMs);
    }
    if (tracked && tracked.livenessFailure !== undefined && !tracked.finished) {
      return this.stopUnhealthy(tracked, tracked.livenessFailure);
    }

    const lost = tracked ? undefined : this.recordsLost.get(uid);
    if (lost) {
      if (!spec && !this.desiredReceived && !this.shuttingDown) return;
      if (spec && !this.shuttingDown) {
        await adoptLost(this.core, this.steps, spec, lost);
        this.recordsLost.delete(uid);
        return;
      }
      // Not desired: stopped below as an unknown container.
      this.recordsLost.delete(uid);
    }

    // Until the control plane has said what it wants, keep what runs.
    if (!spec && !this.desiredReceived && !this.shuttingDown) return;

    if (spec) {
      // Desired and never seen: start it. Known: running stays running,
      // finished stays finished (only its leftovers are released).
      if (!tracked) return startInTrace(spec, () => this.startInstance(spec));
      if (tracked.finished) await releaseHeld(tracked.held);
      else if (tracked.handle && !tracked.stopRequested) await resize(this.core, tracked, spec);
      return;
    }

    if (!tracked) {
      // Not desired and not ours (nothing should get here after cleanupStale,
      // but level-triggered means we converge whatever the runtime has).
      if (this.runtime.list().some((h) => h.id === uid)) {
        this.log.info({ uid }, "stopping unknown container");
        await this.runtime.stop(uid, 0);
        await this.runtime.remove(uid);
        await this.options.network?.teardown(uid);
        await this.options.images?.unmountRootfs(uid);
        await this.options.templates?.unmount(uid);
      }
      if (!this.shuttingDown && !this.keepLogs.has(uid)) await removeLogs(this.logDir, uid);
      return;
    }

    if (!tracked.finished) {
      tracked.stopRequested = true;
      tracked.health?.stop();
      const grace = Math.max(0, tracked.spec.stopGraceSeconds);
      this.log.info({ uid, graceSeconds: grace }, "stopping instance");
      const exit = await this.runtime.stop(uid, grace);
      tracked.exit ??= exit;
      this.finish(tracked, exitStatus(tracked, this.now()));
    }
    await releaseHeld(tracked.held);
    this.tracked.delete(uid);
    // Its container, network and host ports are gone: the scheduler may hand
    // its host ports to another instance on this node from now on. (Not on a
    // shutdown: the stream goes too; the next Register, without it, says so.)
    if (!this.shuttingDown) this.released(tracked);
    // The instance is gone from the control plane: its log becomes the previous
    // log of its name (kept while a finished instance is still desired or named
    // in keep_logs, and on an agent shutdown).
    if (!this.shuttingDown && !this.keepLogs.has(uid)) {
      await keepAsPrevious(this.logDir, uid, tracked.spec.namespace, tracked.spec.name);
      await prunePreviousLogs(this.logDir, (ns, name) => this.isDesiredName(ns, name));
    }
  }

  /**
   * Starts a desired instance never seen before: checks its spec, reports
   * STARTING, runs the start steps; a failing step ends it FAILED with the
   * step's reason and what the start set up is released (in reverse).
   */
  private async startInstance(spec: InstanceSpec__Output): Promise<void> {
    const uid = spec.uid;
    // Nothing is recorded yet: throwing retries the start with backoff.
    if (this.options.network && !this.options.network.ready) {
      throw new Error("waiting for the node's subnet from the control plane");
    }
    const base = { uid, namespace: spec.namespace, name: spec.name };
    const tracked: TrackedInstance = {
      uid,
      spec,
      status: { ...base, state: "PENDING" },
      finished: false,
      stopRequested: false,
      held: [],
    };
    this.tracked.set(uid, tracked);

    // Both become path components on the host: refuse anything but plain names.
    const problem = specProblem(spec, this.options.rootfsDir);
    if (problem) return this.finish(tracked, startFailedStatus(spec, problem.reason, problem.message, this.now()));

    this.report(tracked, { ...base, state: "STARTING" });
    const ctx: StartContext = {
      tracked,
      spec,
      container: containerSpecOf(spec, { rootfsDir: this.options.rootfsDir, logDir: this.logDir }),
      ownRoot: false,
    };
    try {
      await runSteps(this.steps, ctx, tracked.held);
    } catch (error) {
      const failure =
        error instanceof StartFailure ? error : new StartFailure(StatusReason.StartFailed, errorMessage(error));
      this.finish(tracked, startFailedStatus(spec, failure.reason, failure.message, this.now()));
      // Throws to be retried (the next sync of this finished uid releases the rest).
      await releaseHeld(tracked.held);
      return;
    }

    const handle = ctx.handle!;
    const { network, container } = ctx;
    tracked.handle = handle;
    tracked.applied = { ...container.resources };
    this.report(tracked, {
      ...base,
      state: "RUNNING",
      pid: handle.pid,
      startedAtMs: handle.startedAt.getTime(),
      ...(network ? { ip: network.ip, ports: network.ports } : {}),
      appliedResources: { ...container.resources },
      ...initialReadiness(spec),
    });
    this.trackRunning(tracked);
  }

  /** Stops an instance whose liveness check failed; FAILED, so its restart policy replaces it. */
  private async stopUnhealthy(tracked: TrackedInstance, why: string): Promise<void> {
    tracked.stopRequested = true;
    tracked.health?.stop();
    this.log.warn({ uid: tracked.uid, name: tracked.spec.name, why }, "stopping instance: liveness check failed");
    const exit = await this.runtime.stop(tracked.uid, Math.max(0, tracked.spec.stopGraceSeconds));
    tracked.exit ??= exit;
    const status = exitStatus(tracked, this.now());
    this.finish(tracked, { ...status, state: "FAILED", reason: StatusReason.LivenessFailed, message: why });
    await releaseHeld(tracked.held);
  }

  /** Stops an instance for spec.disconnect.stopAfter; it stays finished (the control plane replaces it). */
  private async stopDisconnected(tracked: TrackedInstance, silentMs: number): Promise<void> {
    const { uid } = tracked;
    tracked.stopRequested = true;
    const stopAfterMs = Number(tracked.spec.stopAfterMs);
    const grace = Math.max(0, tracked.spec.stopGraceSeconds);
    this.log.warn(
      { uid, name: tracked.spec.name, stopAfterMs, withoutContactMs: Math.round(silentMs) },
      "stopping instance: its App's disconnect.stopAfter passed without contact with the control plane",
    );
    const exit = await this.runtime.stop(uid, grace);
    tracked.exit ??= exit;
    const status = exitStatus(tracked, this.now());
    this.finish(tracked, {
      ...status,
      reason: StatusReason.StoppedDisconnected,
      message:
        `stopped by the agent after ${(silentMs / 1000).toFixed(1)}s without contact with the control plane ` +
        `(spec.disconnect.stopAfter ${stopAfterMs / 1000}s); ${status.message ?? ""}`,
    });
    await releaseHeld(tracked.held);
  }

  private finish(tracked: TrackedInstance, status: InstanceStatus): void {
    tracked.finished = true;
    tracked.health?.stop();
    this.log.info(
      { uid: tracked.uid, state: status.state, reason: status.reason, message: status.message },
      "instance finished",
    );
    this.report(tracked, status);
  }

  private startOrphanLogCollection(): void {
    this.orphanLogs = this.collectOrphanLogs().catch((err: unknown) =>
      this.log.warn({ err }, "could not remove orphaned logs"),
    );
  }

  /**
   * Once per agent run, on the first desired set: deletes the logs of
   * instances neither desired nor tracked (removed while the agent was down).
   */
  /** Whether an instance of this namespace and name is desired here (its previous log is then kept). */
  private isDesiredName(namespace: string, name: string): boolean {
    return [...this.desired.values()].some((d) => d.namespace === namespace && d.name === name);
  }

  private async collectOrphanLogs(): Promise<void> {
    if (this.orphanLogsCollected || !this.started || !this.desiredReceived || this.shuttingDown) return;
    this.orphanLogsCollected = true;
    const removed = await removeOrphanLogs(
      this.logDir,
      (uid) => this.desired.has(uid) || this.tracked.has(uid) || this.keepLogs.has(uid),
    );
    await prunePreviousLogs(this.logDir, (ns, name) => this.isDesiredName(ns, name));
    if (removed.length > 0) this.log.info({ files: removed }, "removed logs of instances that are gone");
  }
}
