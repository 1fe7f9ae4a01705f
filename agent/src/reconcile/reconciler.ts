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
// Register) until their uid leaves the desired set.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { pino, type Logger } from "pino";
import type { DesiredInstances__Output, InstanceSpec__Output, InstanceStatus } from "@grove/proto";
import type {
  ContainerExit,
  ContainerHandle,
  ContainerResources,
  ContainerRuntime,
  ContainerSpec,
} from "../runtime/types";
import type { EgressRule } from "../network/egress";
import type { InstanceNetwork, InstanceNetworkRequest } from "../network/manager";
import { hostsFile, resolvConfFor, writeEtcFiles } from "../network/etc-files";
import { HostPortRefusedError } from "../network/host-ports";
import { WorkQueue } from "./work-queue";
import type { UsernsPool, UsernsRange } from "./userns-pool";
import { mergeRunConfig } from "../images/run-config";
import type { ImageRunConfig, PullProgress } from "../images/types";

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
  /** CNI ADD or the egress rules failed. */
  NetworkFailed: "NetworkFailed",
  /** A host port this node refuses to publish (reserved, privileged or outside its allowed ranges). */
  HostPortRefused: "HostPortRefused",
  /** The agent is pulling the instance's image (state STARTING, progress in `pull`). */
  PullingImage: "PullingImage",
  /** The image could not be pulled, verified, unpacked or mounted; the message says why. */
  ImagePullFailed: "ImagePullFailed",
  /** A running instance got new limits in place (state RUNNING). */
  Resized: "Resized",
  /** The runtime or kernel refused new limits; the instance runs on with the old ones (state RUNNING). */
  ResizeFailed: "ResizeFailed",
  /** Stopped by the agent after spec.disconnect.stopAfter without contact with the control plane. */
  StoppedDisconnected: "StoppedDisconnected",
} as const;

/** What the reconciler needs from instance networking (agent/src/network). */
export interface InstanceNetworks {
  /** False until the node's subnet is known: starts wait (and retry) until then. */
  readonly ready: boolean;
  setup(req: InstanceNetworkRequest): Promise<InstanceNetwork>;
  teardown(uid: string): Promise<void>;
  cleanupStale(keep?: ReadonlySet<string>): Promise<string[]>;
  /** Takes over the network of a running container whose records were lost (NetworkManager.adopt). */
  adopt?(req: InstanceNetworkRequest, pid: number): Promise<InstanceNetwork>;
}

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
  /** Instance networking; without it every container gets an empty network namespace with lo. */
  network?: InstanceNetworks;
  /** Fault injection for tests: wait this long between CNI ADD and the container start. */
  pauseAfterNetworkMs?: number;
  /** OCI images (agent/src/images); without it instances naming an image fail with ImagePullFailed. */
  images?: InstanceImages;
  /**
   * Private roots over root filesystem directories (agent/src/images
   * TemplateRoots): each instance gets its own overlay with the directory as
   * the read-only lower layer. Without it (unit tests with the fake runtime)
   * the container is pointed at the directory itself.
   */
  templates?: InstanceTemplates;
  /** Least time between two pull-progress reports of one instance (default 1000 ms). */
  pullProgressIntervalMs?: number;
  /** A refused resize is tried again (at a resync) no sooner than this (default 60 s). */
  resizeRetryDelayMs?: number;
  /**
   * How long the node has been without contact with the control plane (ms,
   * monotonic; grpc/client.ts). Without it stop_after_ms is never acted on.
   */
  withoutContactMs?: () => number;
  /** How often instances with stop_after_ms are checked against it (default 500 ms). */
  disconnectCheckIntervalMs?: number;
  /**
   * Host id ranges for `security.userNamespace: auto` (--userns-range); without
   * it such instances fail to start. Explicit ranges need no pool.
   */
  userns?: UsernsPool;
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
  /** Its network was (maybe partly) set up and not yet torn down. */
  networkUp?: boolean;
  /** Its image root may be mounted and is not yet released. */
  imageMounted?: boolean;
  /** Its private root over a rootfs directory may be mounted and is not yet released. */
  templateMounted?: boolean;
  /** The cpu, memory and pids limits its container has (set once it runs). */
  applied?: ContainerResources;
  /** The last refused resize: its target and when, so it is not retried in a hot loop. */
  resizeFailure?: { target: string; atMs: number };
  /** To be stopped: the node was without contact this many ms (spec.disconnect.stopAfter). */
  disconnectStopMs?: number;
}

/** Container annotations the reconciler reads back after an agent restart. */
const INSTANCE_ANNOTATION = "grove.instance";
const NETWORK_ANNOTATION = "grove.network";
/** The host id range of a container in a user namespace (JSON UsernsRange). */
const USERNS_ANNOTATION = "grove.userns";

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
  private readonly recordsLost = new Map<string, ContainerHandle>();
  private orphanLogs: Promise<void> = Promise.resolve();

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
    // Containers outlive the agent: adopt those still running (and learn the
    // exits that happened meanwhile) before removing anything else.
    const adopted = await this.adopt();
    const stale = await this.runtime.cleanupStale();
    if (stale.length > 0) this.log.info({ containers: stale }, "removed containers left by a previous agent run");
    if (this.options.images) {
      const roots = await this.options.images.cleanupContainers(new Set(adopted));
      if (roots.length > 0) this.log.info({ containers: roots }, "removed image roots left by a previous agent run");
    }
    if (this.options.templates) {
      const roots = await this.options.templates.cleanup(new Set(adopted));
      if (roots.length > 0) this.log.info({ containers: roots }, "removed private roots left by a previous agent run");
    }
    if (this.options.network) {
      const nets = await this.options.network.cleanupStale(new Set(adopted));
      if (nets.length > 0) this.log.info({ instances: nets }, "removed instance networks left by a previous agent run");
      const etcs = await this.cleanupEtcFiles(new Set(adopted));
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
    this.desiredReceived = true;
    this.log.debug({ revision: desired.revision, instances: next.size }, "desired set received");
    if (!this.started) return;
    for (const uid of new Set([...previous.keys(), ...next.keys()])) this.queue.add(uid);
    this.startOrphanLogCollection();
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

    // The App asked to be stopped after this long without the control plane
    // (desired or not: an agent restarted during an outage has no set yet).
    if (tracked && tracked.disconnectStopMs !== undefined && !tracked.finished) {
      return this.stopDisconnected(tracked, tracked.disconnectStopMs);
    }

    const lost = tracked ? undefined : this.recordsLost.get(uid);
    if (lost) {
      if (!spec && !this.desiredReceived && !this.shuttingDown) return;
      if (spec && !this.shuttingDown) {
        await this.adoptLost(spec, lost);
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
      // finished stays finished (only its leftovers are removed).
      if (!tracked) return this.startInstance(spec);
      if (tracked.finished && !tracked.removed) await this.removeContainer(tracked);
      else if (!tracked.finished && tracked.handle && !tracked.stopRequested) await this.resize(tracked, spec);
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
      if (!this.shuttingDown) await this.removeLogs(uid);
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
    // The instance is gone from the control plane: so are its logs (kept while
    // a finished instance is still desired, and on an agent shutdown).
    if (!this.shuttingDown) await this.removeLogs(uid);
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
    const status = this.exitStatus(tracked);
    this.finish(tracked, {
      ...status,
      reason: StatusReason.StoppedDisconnected,
      message:
        `stopped by the agent after ${(silentMs / 1000).toFixed(1)}s without contact with the control plane ` +
        `(spec.disconnect.stopAfter ${stopAfterMs / 1000}s); ${status.message ?? ""}`,
    });
    if (!tracked.removed) await this.removeContainer(tracked);
  }

  /** Deletes an instance's log and its rotated predecessor. */
  private async removeLogs(uid: string): Promise<void> {
    if (!isPlainName(uid)) return;
    for (const name of [`${uid}.log`, `${uid}.log.1`]) await fs.rm(path.join(this.logDir(), name), { force: true });
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
  private async collectOrphanLogs(): Promise<void> {
    if (this.orphanLogsCollected || !this.started || !this.desiredReceived || this.shuttingDown) return;
    this.orphanLogsCollected = true;
    let names: string[];
    try {
      names = await fs.readdir(this.logDir());
    } catch {
      return;
    }
    const removed: string[] = [];
    for (const name of names) {
      const m = /^(.+)\.log(\.1)?$/.exec(name);
      const uid = m?.[1];
      if (!uid || this.desired.has(uid) || this.tracked.has(uid)) continue;
      await fs.rm(path.join(this.logDir(), name), { force: true });
      removed.push(name);
    }
    if (removed.length > 0) this.log.info({ files: removed }, "removed logs of instances that are gone");
  }

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
      removed: true,
    };
    this.tracked.set(uid, tracked);

    // Both become path components on the host: refuse anything but plain names.
    if (!UID_PATTERN.test(uid)) {
      return this.failStart(
        tracked,
        StatusReason.InvalidUid,
        `uid ${JSON.stringify(uid)} is not 1..64 characters of [A-Za-z0-9_.-]`,
      );
    }
    if (!spec.image && !isPlainName(spec.rootfs)) {
      return this.failStart(
        tracked,
        StatusReason.InvalidRootfs,
        `rootfs ${JSON.stringify(spec.rootfs)} must be the plain name of a directory in ${this.options.rootfsDir}`,
      );
    }

    this.report(tracked, { ...base, state: "STARTING" });
    const containerSpec = this.containerSpecOf(spec);
    if (spec.image) {
      if (!(await this.prepareImage(tracked, spec, containerSpec))) return;
    } else if (!(await this.prepareTemplate(tracked, spec, containerSpec))) return;
    let network: InstanceNetwork | undefined;
    if (this.options.network) {
      tracked.networkUp = true;
      try {
        network = await this.options.network.setup(networkRequestOf(spec));
      } catch (error) {
        this.log.warn({ uid, err: error }, "instance network setup failed");
        const reason =
          error instanceof HostPortRefusedError ? StatusReason.HostPortRefused : StatusReason.NetworkFailed;
        this.failStart(tracked, reason, errorMessage(error));
        await this.releasePrepared(tracked);
        return;
      }
      containerSpec.netnsPath = network.netnsPath;
      if (spec.image || tracked.templateMounted) {
        // The root (an image's or a rootfs directory's overlay) is this
        // instance's alone: its /etc/hosts and /etc/resolv.conf go into it.
        const hostResolv = await fs.readFile("/etc/resolv.conf", "utf8").catch(() => "");
        await writeEtcFiles(containerSpec.rootfs, {
          hosts: hostsFile(containerSpec.hostname, network.ip),
          resolvConf: resolvConfFor(hostResolv),
        }).catch((err: unknown) => this.log.warn({ uid, err }, "could not write /etc/hosts and /etc/resolv.conf"));
      }
      const pause = this.options.pauseAfterNetworkMs ?? 0;
      if (pause > 0) {
        this.log.info({ uid, pauseMs: pause }, "network ready; pausing before the container start");
        await new Promise((r) => setTimeout(r, pause));
      }
    }
    let usernsRange: UsernsRange | undefined;
    try {
      usernsRange = this.userNamespaceRange(spec);
    } catch (error) {
      this.failStart(tracked, StatusReason.StartFailed, errorMessage(error));
      await this.releasePrepared(tracked);
      return;
    }
    if (usernsRange !== undefined) {
      containerSpec.userNamespace = {
        uidMap: [{ containerId: 0, hostId: usernsRange.hostUid, size: usernsRange.size }],
        gidMap: [{ containerId: 0, hostId: usernsRange.hostGid, size: usernsRange.size }],
      };
    }
    tracked.removed = false;
    let handle: ContainerHandle;
    try {
      this.log.info({ uid, name: spec.name, rootfs: containerSpec.rootfs }, "starting instance");
      containerSpec.annotations = {
        [INSTANCE_ANNOTATION]: JSON.stringify(spec),
        ...(network ? { [NETWORK_ANNOTATION]: JSON.stringify({ ip: network.ip, ports: network.ports }) } : {}),
        ...(usernsRange ? { [USERNS_ANNOTATION]: JSON.stringify(usernsRange) } : {}),
      };
      handle = await this.runtime.start(containerSpec);
    } catch (error) {
      this.log.warn({ uid, err: error }, "instance failed to start");
      this.failStart(tracked, StatusReason.StartFailed, errorMessage(error));
      // A half-made container may be left; removing it can be retried.
      if (!this.runtime.list().some((h) => h.id === uid)) {
        tracked.removed = true;
        this.options.userns?.release(uid);
        await this.releasePrepared(tracked);
      } else await this.removeContainer(tracked);
      return;
    }

    tracked.handle = handle;
    tracked.applied = { ...containerSpec.resources };
    this.report(tracked, {
      ...base,
      state: "RUNNING",
      pid: handle.pid,
      startedAtMs: handle.startedAt.getTime(),
      ...(network ? { ip: network.ip, ports: network.ports } : {}),
      appliedResources: { ...containerSpec.resources },
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

  /**
   * Takes over the containers a previous agent run left (runtime.recover()):
   * running ones are tracked as RUNNING with their pid, exited ones get
   * their recorded exit reported. Returns the adopted uids.
   */
  private async adopt(): Promise<string[]> {
    if (this.runtime.recover === undefined) return [];
    const uids: string[] = [];
    for (const { handle, annotations, resources, recordsLost } of await this.runtime.recover()) {
      if (recordsLost) {
        // Known again once the desired set names it (adoptLost); kept until then.
        this.recordsLost.set(handle.id, handle);
        uids.push(handle.id);
        this.log.warn(
          { uid: handle.id, pid: handle.pid },
          "found a running container whose records were lost; the desired set decides whether it is adopted",
        );
        continue;
      }
      const raw = annotations[INSTANCE_ANNOTATION];
      if (raw === undefined) continue; // not started by a reconciler: sync() stops it as unknown
      let spec: InstanceSpec__Output;
      let net: { ip?: string; ports?: InstanceStatus["ports"] } = {};
      try {
        spec = JSON.parse(raw) as InstanceSpec__Output;
        const rawNet = annotations[NETWORK_ANNOTATION];
        if (rawNet !== undefined) net = JSON.parse(rawNet) as typeof net;
      } catch {
        continue;
      }
      const uid = handle.id;
      const rawUserns = annotations[USERNS_ANNOTATION];
      if (rawUserns !== undefined && this.options.userns) {
        try {
          if (!this.options.userns.claim(uid, JSON.parse(rawUserns) as UsernsRange)) {
            this.log.warn(
              { uid, range: rawUserns },
              "adopted container's user namespace range is not a free slot of the pool",
            );
          }
        } catch {
          this.log.warn({ uid, range: rawUserns }, "adopted container has an unreadable user namespace range");
        }
      }
      // The limits it has: as the runtime recorded them (a live update
      // changes them), else those it was started with.
      const applied = resources ? { ...resources } : resourcesOf(spec);
      this.trackAdopted(uid, spec, handle, applied, {
        ...(net.ip !== undefined ? { ip: net.ip, ports: net.ports ?? [] } : {}),
        networkUp: this.options.network !== undefined && annotations[NETWORK_ANNOTATION] !== undefined,
      });
      uids.push(uid);
      this.log.info({ uid, pid: handle.pid }, "adopted container from a previous agent run");
    }
    return uids;
  }

  /**
   * Adopts a running container whose records were lost, with its desired
   * spec: its network is taken over from the host (namespace, address,
   * allocation, CNI cache), its spec recorded again, and it is reported
   * RUNNING with the same pid: no restart, no second copy, no second IP.
   * Throws to be retried (e.g. before the node's subnet is known).
   */
  private async adoptLost(spec: InstanceSpec__Output, handle: ContainerHandle): Promise<void> {
    const { uid } = spec;
    let network: InstanceNetwork | undefined;
    const networks = this.options.network;
    if (networks) {
      if (!networks.ready) throw new Error("waiting for the node's subnet from the control plane");
      if (!networks.adopt) throw new Error("this agent's networking cannot adopt a running container");
      network = await networks.adopt(networkRequestOf(spec), handle.pid);
    }
    const containerSpec = this.containerSpecOf(spec);
    if (network) containerSpec.netnsPath = network.netnsPath;
    containerSpec.annotations = {
      [INSTANCE_ANNOTATION]: JSON.stringify(spec),
      ...(network ? { [NETWORK_ANNOTATION]: JSON.stringify({ ip: network.ip, ports: network.ports }) } : {}),
    };
    await this.runtime.recordSpec?.(containerSpec);
    const tracked = this.trackAdopted(uid, spec, handle, resourcesOf(spec), {
      ...(network ? { ip: network.ip, ports: network.ports } : {}),
      networkUp: network !== undefined,
    });
    this.log.info(
      { uid, pid: handle.pid, ip: network?.ip },
      "adopted a container whose records were lost, from the host and the desired set",
    );
    this.report(tracked, tracked.status);
  }

  /**
   * Tracks a running container this agent did not start (adopt, adoptLost):
   * RUNNING with its pid, its limits, its network, and its root still
   * mounted (the container runs on it), so removing it releases them all.
   */
  private trackAdopted(
    uid: string,
    spec: InstanceSpec__Output,
    handle: ContainerHandle,
    applied: ContainerResources,
    net: { ip?: string; ports?: InstanceStatus["ports"]; networkUp: boolean },
  ): TrackedInstance {
    const tracked: TrackedInstance = {
      uid,
      spec,
      status: {
        uid,
        namespace: spec.namespace,
        name: spec.name,
        state: "RUNNING",
        pid: handle.pid,
        startedAtMs: handle.startedAt.getTime(),
        ...(net.ip !== undefined ? { ip: net.ip, ports: net.ports ?? [] } : {}),
        appliedResources: { ...applied },
      },
      finished: false,
      handle,
      applied,
      stopRequested: false,
      removed: false,
      networkUp: net.networkUp,
      imageMounted: this.options.images !== undefined && Boolean(spec.image),
      templateMounted: this.options.templates !== undefined && !spec.image,
    };
    this.tracked.set(uid, tracked);
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
    return tracked;
  }

  /**
   * Gives a running instance the limits its desired spec asks for, when they
   * differ from those its container has (a resize in place). A refusal is
   * reported (RUNNING, ResizeFailed) and the same target is tried again
   * only after resizeRetryDelayMs.
   */
  private async resize(tracked: TrackedInstance, spec: InstanceSpec__Output): Promise<void> {
    const want = resourcesOf(spec);
    const applied = tracked.applied;
    if (applied === undefined || sameLimits(want, applied)) {
      tracked.resizeFailure = undefined;
      // Asked to go back to the limits it has after a refused resize: nothing to
      // change, but the refusal no longer holds.
      if (tracked.status.reason === StatusReason.ResizeFailed) {
        this.report(tracked, { ...tracked.status, reason: "", message: "" });
      }
      return;
    }
    const target = JSON.stringify(want);
    const failed = tracked.resizeFailure;
    if (failed?.target === target && this.now() - failed.atMs < (this.options.resizeRetryDelayMs ?? 60_000)) return;
    const { uid } = tracked;
    try {
      if (this.runtime.update === undefined) throw new Error("this runtime cannot change a container's limits");
      this.log.info({ uid, from: applied, to: want }, "resizing instance in place");
      await this.runtime.update(uid, want);
    } catch (error) {
      tracked.resizeFailure = { target, atMs: this.now() };
      const message =
        `could not resize to ${formatLimits(want)}: ${errorMessage(error)}; ` +
        `running on with ${formatLimits(applied)}`;
      this.log.warn({ uid, from: applied, to: want, err: error }, "resize in place refused");
      if (tracked.status.reason !== StatusReason.ResizeFailed || tracked.status.message !== message) {
        this.report(tracked, {
          ...tracked.status,
          reason: StatusReason.ResizeFailed,
          message,
          appliedResources: { ...applied },
        });
      }
      return;
    }
    tracked.applied = want;
    tracked.resizeFailure = undefined;
    tracked.spec = spec;
    this.report(tracked, {
      ...tracked.status,
      reason: StatusReason.Resized,
      message: `limits changed in place from ${formatLimits(applied)} to ${formatLimits(want)}`,
      appliedResources: { ...want },
    });
  }

  /**
   * The host id range of an instance with a user namespace: an allocation of
   * the pool (auto), or the App's explicit range. Throws why it has none.
   */
  private userNamespaceRange(spec: InstanceSpec__Output): UsernsRange | undefined {
    const u = spec.security?.userNamespace;
    if (!u) return undefined;
    const pool = this.options.userns;
    if (u.auto) {
      if (!pool) throw new Error("security.userNamespace: true needs the agent's --userns-range pool");
      return pool.allocate(spec.uid);
    }
    const range = { hostUid: u.hostUid, hostGid: u.hostGid, size: u.size };
    if (range.hostUid < 1 || range.hostGid < 1 || range.size < 1) {
      throw new Error(
        `security.userNamespace: hostUid, hostGid and size must be positive (got ${range.hostUid}, ${range.hostGid}, ${range.size})`,
      );
    }
    if (pool?.overlaps(range)) {
      throw new Error(
        `security.userNamespace: host ids ${range.hostUid}/${range.hostGid} (+${range.size}) overlap this node's --userns-range pool`,
      );
    }
    return range;
  }

  private containerSpecOf(spec: InstanceSpec__Output): ContainerSpec {
    const containerSpec: ContainerSpec = {
      id: spec.uid,
      rootfs: path.join(this.options.rootfsDir, spec.rootfs),
      command: [...spec.command],
      env: { ...spec.env },
      hostname: spec.hostname || spec.name,
      resources: resourcesOf(spec),
      logPath: path.join(this.logDir(), `${spec.uid}.log`),
    };
    if (spec.workingDir) containerSpec.workingDir = spec.workingDir;
    const sec = spec.security;
    if (sec) {
      if (sec.user) containerSpec.user = sec.user;
      if (sec.capabilitiesAdd.length > 0 || sec.capabilitiesDrop.length > 0) {
        containerSpec.capabilities = { add: [...sec.capabilitiesAdd], drop: [...sec.capabilitiesDrop] };
      }
      if (sec.seccomp === "default" || sec.seccomp === "unconfined") containerSpec.seccomp = sec.seccomp;
      if (sec.readOnlyRootFilesystem) containerSpec.readonlyRootfs = true;
    }
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
    this.options.userns?.release(tracked.uid);
    await this.releasePrepared(tracked);
  }

  /** Ends an instance that could not start: FAILED with the reason and message. */
  private failStart(tracked: TrackedInstance, reason: string, message: string): void {
    const { uid, namespace, name } = tracked.spec;
    this.finish(tracked, { uid, namespace, name, state: "FAILED", reason, message, finishedAtMs: this.now() });
  }

  /** Releases what a start prepares before the container: its network and its root. */
  private async releasePrepared(tracked: TrackedInstance): Promise<void> {
    await this.teardownNetwork(tracked);
    await this.releaseImage(tracked);
    await this.releaseTemplate(tracked);
  }

  /**
   * Mounts the instance's private root over its rootfs directory and points
   * the container spec at it; users and groups are resolved from the
   * directory itself (the read-only lower layer), never from a writable one.
   * On failure finishes the instance (InvalidRootfs or StartFailed) and
   * returns false.
   */
  private async prepareTemplate(
    tracked: TrackedInstance,
    spec: InstanceSpec__Output,
    containerSpec: ContainerSpec,
  ): Promise<boolean> {
    const templates = this.options.templates;
    if (!templates) return true;
    let template: string;
    try {
      template = await templates.template(spec.rootfs);
    } catch (error) {
      this.failStart(tracked, StatusReason.InvalidRootfs, errorMessage(error));
      return false;
    }
    try {
      tracked.templateMounted = true;
      containerSpec.rootfs = await templates.mount(spec.uid, template);
      containerSpec.usersFrom = template;
      return true;
    } catch (error) {
      this.log.warn({ uid: spec.uid, rootfs: spec.rootfs, err: error }, "could not mount the instance's root");
      this.failStart(tracked, StatusReason.StartFailed, errorMessage(error));
      await this.releaseTemplate(tracked);
      return false;
    }
  }

  /** Unmounts and removes an instance's private root; throws to be retried. */
  private async releaseTemplate(tracked: TrackedInstance): Promise<void> {
    if (!tracked.templateMounted || !this.options.templates) return;
    await this.options.templates.unmount(tracked.uid);
    tracked.templateMounted = false;
  }

  /**
   * Pulls the instance's image and mounts its overlay root, then points the
   * container spec at it with the image config merged in. Reports progress
   * while pulling; on failure finishes the instance ImagePullFailed and
   * returns false.
   */
  private async prepareImage(
    tracked: TrackedInstance,
    spec: InstanceSpec__Output,
    containerSpec: ContainerSpec,
  ): Promise<boolean> {
    const base = { uid: spec.uid, namespace: spec.namespace, name: spec.name };
    const images = this.options.images;
    const interval = this.options.pullProgressIntervalMs ?? 1000;
    let lastReport = 0;
    const onProgress = (p: PullProgress) => {
      const now = this.now();
      const complete = p.layersDone === p.layersTotal;
      if (!complete && now - lastReport < interval) return;
      lastReport = now;
      this.report(tracked, {
        ...base,
        state: "STARTING",
        reason: StatusReason.PullingImage,
        message: `pulling ${p.image}: ${p.layersDone}/${p.layersTotal} layers, ${p.bytesDone} of ${p.bytesTotal} bytes`,
        pull: { ...p },
      });
    };
    try {
      if (!images) throw new Error("this agent has no image store");
      tracked.imageMounted = true;
      this.log.info({ uid: spec.uid, image: spec.image }, "pulling image");
      const opts = spec.imagePullSecret ? { pullSecret: spec.imagePullSecret, onProgress } : { onProgress };
      const { rootfs, image } = await images.prepareRootfs(spec.uid, spec.image, opts);
      const merged = mergeRunConfig(
        image.config,
        { entrypoint: spec.entrypoint, command: spec.command, env: spec.env, workingDir: spec.workingDir },
        image.reference,
      );
      containerSpec.rootfs = rootfs;
      containerSpec.command = merged.command;
      containerSpec.env = merged.env;
      containerSpec.workingDir = merged.workingDir;
      // The App's security.user wins over the image's User, as `docker run --user` does.
      if (merged.user && !containerSpec.user) containerSpec.user = merged.user;
      return true;
    } catch (error) {
      this.log.warn({ uid: spec.uid, image: spec.image, err: error }, "image pull failed");
      this.finish(tracked, {
        ...base,
        state: "FAILED",
        reason: StatusReason.ImagePullFailed,
        message: `${spec.image}: ${errorMessage(error)}`,
        finishedAtMs: this.now(),
      });
      await this.releaseImage(tracked);
      return false;
    }
  }

  /** Unmounts and removes an instance's image root; throws to be retried. */
  private async releaseImage(tracked: TrackedInstance): Promise<void> {
    if (!tracked.imageMounted || !this.options.images) return;
    await this.options.images.unmountRootfs(tracked.uid);
    tracked.imageMounted = false;
  }

  /**
   * <stateDir>/network/etc/<uid>: where agents before private roots kept the
   * /etc files of rootfs-directory instances (bind-mounted into them); only
   * removed now, for instances adopted from such an agent.
   */
  private etcDir(uid?: string): string {
    const dir = path.join(this.options.stateDir, "network", "etc");
    if (uid === undefined) return dir;
    if (!UID_PATTERN.test(uid) || uid === "." || uid === "..")
      throw new Error(`uid ${JSON.stringify(uid)} is no path name`);
    return path.join(dir, uid);
  }

  /** Removes the /etc files of every instance but those of `keep`; returns their uids. */
  private async cleanupEtcFiles(keep: ReadonlySet<string>): Promise<string[]> {
    const uids = await fs.readdir(this.etcDir()).catch(() => [] as string[]);
    const stale = uids.filter((uid) => !keep.has(uid) && uid !== "." && uid !== "..");
    for (const uid of stale) await fs.rm(this.etcDir(uid), { recursive: true, force: true });
    return stale;
  }

  /** CNI DEL, egress chain and namespace of an instance; throws to be retried. */
  private async teardownNetwork(tracked: TrackedInstance): Promise<void> {
    if (!this.options.network || !tracked.networkUp) return;
    await fs.rm(this.etcDir(tracked.uid), { recursive: true, force: true });
    await this.options.network.teardown(tracked.uid);
    tracked.networkUp = false;
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

/** The limits an instance spec asks for. */
function resourcesOf(spec: InstanceSpec__Output): ContainerResources {
  return {
    cpuMillis: Number(spec.resources?.cpuMillis ?? 0),
    memoryBytes: Number(spec.resources?.memoryBytes ?? 0),
    pids: Number(spec.resources?.pids ?? 0),
  };
}

function sameLimits(a: ContainerResources, b: ContainerResources): boolean {
  return a.cpuMillis === b.cpuMillis && a.memoryBytes === b.memoryBytes && a.pids === b.pids;
}

/** "cpu 500m, memory 128Mi, pids 64" (0: no limit). */
export function formatLimits(r: ContainerResources): string {
  const mem = r.memoryBytes % 2 ** 20 === 0 ? `${r.memoryBytes / 2 ** 20}Mi` : `${r.memoryBytes} bytes`;
  return `cpu ${r.cpuMillis}m, memory ${mem}, pids ${r.pids}`;
}

function networkRequestOf(spec: InstanceSpec__Output): InstanceNetworkRequest {
  return {
    uid: spec.uid,
    ports: (spec.ports ?? []).map((p) => ({
      name: p.name,
      protocol: p.protocol === "udp" ? "udp" : "tcp",
      containerPort: p.containerPort,
      hostPort: p.hostPort,
    })),
    egress: (spec.egress ?? []).map((r): EgressRule => {
      const protocol = r.protocol === "tcp" || r.protocol === "udp" || r.protocol === "icmp" ? r.protocol : "all";
      return r.portFirst > 0
        ? { cidr: r.cidr, protocol, ports: { first: r.portFirst, last: r.portLast || r.portFirst } }
        : { cidr: r.cidr, protocol };
    }),
  };
}

/** What the reconciler needs from the image store (agent/src/images ImageService). */
export interface InstanceImages {
  prepareRootfs(
    id: string,
    reference: string,
    opts: { pullSecret?: string; onProgress?: (progress: PullProgress) => void },
  ): Promise<{ rootfs: string; image: { reference: string; config: ImageRunConfig } }>;
  unmountRootfs(id: string): Promise<void>;
  /** Unmounts and removes every container root but those of `keep` (adopted containers). */
  cleanupContainers(keep?: ReadonlySet<string>): Promise<string[]>;
}

/** What the reconciler needs for private roots over rootfs directories (agent/src/images TemplateRoots). */
export interface InstanceTemplates {
  /** The real path of the rootfs directory `name`; throws why it cannot be used. */
  template(name: string): Promise<string>;
  /** Mounts a fresh private root over `template` for container `id`; resolves with its path. */
  mount(id: string, template: string): Promise<string>;
  unmount(id: string): Promise<void>;
  /** Unmounts and removes every private root but those of `keep` (adopted containers). */
  cleanup(keep?: ReadonlySet<string>): Promise<string[]>;
}

/** A single path component: not empty, not "." or "..", no separator or NUL. */
export function isPlainName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !/[/\\\0]/.test(name);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
