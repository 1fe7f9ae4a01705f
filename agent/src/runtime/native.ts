// NativeRuntime: the ContainerRuntime over the N-API addon (agent/native) and
// one grove-shim per container.
//
// The agent is never the parent of a container: start() spawns a grove-shim
// (a small static C program), which clones the container's init, owns its
// stdio (the log file, rotated by size), reaps it and writes its exit to the
// container's state directory <stateDir>/<id>/:
//   spec.json   what the agent asked for (written before the shim starts; its
//               resources rewritten by update(), the limits the container has)
//   state       written by the shim once the init runs
//   exit        written by the shim once the init has exited
//   shim.sock   the shim's unix socket: "state", "signal N", "wait", "stats", "start"
// (the records, the requests and their answers, and the shim's configuration
// are typed in shim-protocol.ts).
// So containers outlive the agent: recover() on the next start adopts every
// live shim, reports the exits that happened meanwhile and cleans up what it
// cannot load.
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

import { RuntimeError } from "./errors";
import { loadNativeBinding, SHIM_PATH, type NativeBinding, type NativeError } from "./native-binding";
import type {
  CgroupMode,
  ContainerExit,
  ContainerHandle,
  ContainerRuntime,
  ContainerSpec,
  ContainerStats,
  ExecOptions,
  ExecProcess,
  RecoveredContainer,
} from "./types";
import { signalNumber, validateId, validateSpec } from "./validate";
import { execInContainer, validateExecOptions } from "./exec";
import {
  encodeShimConfig,
  exitFromRecord,
  readRecord,
  shimCall,
  waitForExit,
  writeRecord,
  writeRecordSync,
  type ShimConfig,
  type ShimStateAnswer,
} from "./shim-protocol";
import { shimConfig } from "./spec-to-shim";
import { killAndAwaitShim, loadContainer, recoverAll, type RecoveryHost } from "./native-recovery";
import { removeHandlerCgroups, shimHandler, type RuntimeHandlers } from "./runtime-handlers";
import { writeBundle } from "./oci-bundle";

export { shimRequest } from "./shim-protocol";

const SIGKILL = 9;
const SIGTERM = 15;
const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;

export interface NativeRuntimeOptions {
  /** Where cgroupfs is mounted; a test may point it at a fake tree. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Parent cgroup of all containers of this runtime. Default "grove". */
  cgroupParent?: string;
  /** Skips detection (statfs of cgroupRoot). */
  cgroupMode?: CgroupMode;
  /**
   * Directory holding one directory per container (spec, shim state, exit,
   * shim socket). Default /run/grove/<cgroupParent>. Keep the path short: the
   * shim's socket path must fit in 107 bytes.
   */
  stateDir?: string;
  /** The grove-shim executable; default agent/native/build/Release/grove-shim. */
  shimPath?: string;
  /** A container's log is rotated to <log>.1 when it would pass this size. Default 10 MiB. */
  logMaxBytes?: number;
  /** The addon; loaded from agent/native/build by default. */
  binding?: NativeBinding;
  /**
   * Fault injection for tests: wait this long after the shim reported the
   * container running and before start() resolves (an agent killed then has
   * a container it never recorded).
   */
  pauseInStartMs?: number;
  /** runtimeClass name -> OCI runtime executable (runtime-handlers.ts); none by default. */
  handlers?: RuntimeHandlers;
}

interface Entry {
  handle: ContainerHandle;
  exit: ContainerExit | undefined;
  annotations: Record<string, string>;
  /** The connection waiting for the exit; closed on remove(). */
  waiter: net.Socket | undefined;
}

function wrapNative(err: unknown, code: "START_FAILED" | "CGROUP_FAILED"): RuntimeError {
  const e = err as Partial<NativeError>;
  return new RuntimeError(code, e.message ?? String(err), e.code);
}

export class NativeRuntime implements ContainerRuntime {
  readonly cgroupMode: CgroupMode;
  readonly cgroupRoot: string;
  readonly cgroupParent: string;
  readonly stateDir: string;
  readonly shimPath: string;
  private readonly logMaxBytes: number;
  private readonly pauseInStartMs: number;
  readonly handlers: RuntimeHandlers;
  private readonly native: NativeBinding;
  private readonly containers = new Map<string, Entry>();
  /** Ids between validation and the end of start(), so a concurrent start of the same id fails. */
  private readonly starting = new Set<string>();
  /** detach() was called: closing shim connections says nothing about the containers. */
  private detached = false;
  /** Frozen containers: stop() thaws them first (a frozen process does not die of SIGKILL on v1). */
  private readonly frozen = new Set<string>();
  /** What recovery (native-recovery.ts) and exec (exec.ts) may see and do. */
  private readonly host: RecoveryHost;

  constructor(opts: NativeRuntimeOptions = {}) {
    this.native = opts.binding ?? loadNativeBinding();
    this.cgroupRoot = opts.cgroupRoot ?? "/sys/fs/cgroup";
    this.cgroupParent = opts.cgroupParent ?? "grove";
    validateId(this.cgroupParent);
    this.stateDir = path.resolve(opts.stateDir ?? path.join("/run/grove", this.cgroupParent));
    this.shimPath = opts.shimPath ?? SHIM_PATH;
    this.logMaxBytes = opts.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.pauseInStartMs = opts.pauseInStartMs ?? 0;
    this.handlers = { ...(opts.handlers ?? {}) };
    this.cgroupMode = opts.cgroupMode ?? this.native.detectCgroupMode(this.cgroupRoot);
    this.host = {
      stateDir: this.stateDir,
      cgroup: { mode: this.cgroupMode, root: this.cgroupRoot, parent: this.cgroupParent },
      native: this.native,
      containerDir: (id) => this.containerDir(id),
      socketPath: (id) => this.socketPath(id),
      shimState: (id) => this.shimState(id),
      known: (id) => this.containers.has(id) || this.starting.has(id),
      track: (id, pid, startedAt, annotations) => this.track(id, pid, startedAt, annotations),
      addExited: (handle, exit, annotations) =>
        this.containers.set(handle.id, { handle, exit, annotations, waiter: undefined }),
    };
    // The core refuses every v1 container without it (cgroup.c v1_setup); an
    // agent says so when it starts rather than at its first container.
    if (this.cgroupMode === "v1" && !fs.existsSync(path.join(this.cgroupRoot, "devices"))) {
      throw new RuntimeError(
        "CGROUP_FAILED",
        `cgroup v1: the devices controller is not mounted (no ${this.cgroupRoot}/devices); without it a container could open any device node it creates, so Grove refuses to run containers`,
      );
    }
  }

  /** The directory of one container's records and its shim's socket. */
  containerDir(id: string): string {
    return path.join(this.stateDir, id);
  }

  private socketPath(id: string): string {
    return path.join(this.containerDir(id), "shim.sock");
  }

  async start(spec: ContainerSpec): Promise<ContainerHandle> {
    return this.startOrCreate(spec, false);
  }

  /**
   * OCI create: namespaces, cgroups, mounts and security set up, the init
   * waiting before execve until startCreated(id) (another process may do it,
   * through the shim's socket).
   */
  async create(spec: ContainerSpec): Promise<ContainerHandle> {
    return this.startOrCreate(spec, true);
  }

  /** OCI start of a created container: the init execs its command. */
  async startCreated(id: string): Promise<void> {
    validateId(id);
    let answer: { started?: boolean; error?: string };
    try {
      answer = await shimCall(this.socketPath(id), { op: "start" });
    } catch (err) {
      throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} has no live shim: ${(err as Error).message}`);
    }
    if (answer.started !== true) {
      throw new RuntimeError("CONTAINER_RUNNING", `container ${id}: ${answer.error ?? "cannot start"}`);
    }
  }

  /** The shim's view: "created" | "running" | "stopped"; undefined when there is no live shim. */
  async shimState(id: string): Promise<ShimStateAnswer | undefined> {
    try {
      return await shimCall(this.socketPath(id), { op: "state" }, 5_000);
    } catch {
      return undefined;
    }
  }

  private async startOrCreate(spec: ContainerSpec, hold: boolean): Promise<ContainerHandle> {
    validateSpec(spec, { checkFilesystem: true });
    if (this.containers.has(spec.id) || this.starting.has(spec.id)) {
      throw new RuntimeError("CONTAINER_EXISTS", `container ${spec.id} already exists`);
    }
    const sock = this.socketPath(spec.id);
    if (Buffer.byteLength(sock) > 107) {
      throw new RuntimeError(
        "INVALID_SPEC",
        `the shim socket path ${sock} is longer than 107 bytes; use a shorter stateDir`,
      );
    }
    const config = shimConfig(spec, {
      dir: this.containerDir(spec.id),
      cgroup: { mode: this.cgroupMode, root: this.cgroupRoot, parent: this.cgroupParent },
      logMaxBytes: this.logMaxBytes,
      hold,
      handler: shimHandler(this.handlers, spec, this.containerDir(spec.id), hold),
    });
    this.starting.add(spec.id);
    try {
      return await this.startValidated(spec, config);
    } finally {
      this.starting.delete(spec.id);
    }
  }

  private async startValidated(spec: ContainerSpec, config: ShimConfig): Promise<ContainerHandle> {
    const { id } = spec;
    const dir = this.containerDir(id);
    try {
      await this.native.setupCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id, spec.resources);
    } catch (err) {
      await this.removeCgroupQuietly(id);
      throw wrapNative(err, "CGROUP_FAILED");
    }
    let started: { pid: number; shimPid: number };
    try {
      // Synchronous: a few system calls on a directory of a few small files,
      // each of which would otherwise be a thread-pool round trip of the start.
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeRecordSync(dir, "spec.json", { spec, createdAtMs: Date.now() });
      if (config.handler) await writeBundle(config.handler.bundle, spec, this.host.cgroup);
      started = await this.native.startShim(this.shimPath, id, encodeShimConfig(config).flat());
    } catch (err) {
      await this.removeCgroupQuietly(id);
      await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw wrapNative(err, "START_FAILED");
    }
    if (this.pauseInStartMs > 0) await new Promise((r) => setTimeout(r, this.pauseInStartMs));
    const state = readRecord(dir, "state");
    const startedAt = new Date(state?.startedAtMs ?? Date.now());
    return this.track(id, started.pid, startedAt, spec.annotations ?? {});
  }

  /** Registers a container whose shim runs and starts waiting for its exit. */
  private track(id: string, pid: number, startedAt: Date, annotations: Record<string, string>): ContainerHandle {
    let resolveExit!: (exit: ContainerExit) => void;
    let rejectExit!: (err: Error) => void;
    const exited = new Promise<ContainerExit>((resolve, reject) => {
      resolveExit = resolve;
      rejectExit = reject;
    });
    // A rejection nobody awaits must not crash the agent.
    exited.catch(() => undefined);
    const entry: Entry = { handle: { id, pid, startedAt, exited }, exit: undefined, annotations, waiter: undefined };
    this.containers.set(id, entry);

    const settle = (exit: ContainerExit | undefined, err?: Error): void => {
      if (entry.exit !== undefined) return;
      if (exit !== undefined) {
        entry.exit = exit;
        resolveExit(exit);
        return;
      }
      // The shim is gone without an answer: the exit record is the truth.
      const record = readRecord(this.containerDir(id), "exit");
      if (record !== undefined) {
        entry.exit = exitFromRecord(record);
        resolveExit(entry.exit);
        return;
      }
      const lost: ContainerExit = { exitCode: 255, signal: 0, oomKilled: false, finishedAt: new Date() };
      entry.exit = lost;
      rejectExit(err ?? new Error(`the grove-shim of ${id} died without recording the exit`));
    };

    entry.waiter = waitForExit(this.socketPath(id), (record) => {
      // A connection closed by detach() says nothing about the container.
      if (record !== undefined) settle(exitFromRecord(record));
      else if (!this.detached) settle(undefined);
    });
    return entry.handle;
  }

  private entry(id: string): Entry {
    const entry = this.containers.get(id);
    if (entry === undefined) throw new RuntimeError("CONTAINER_NOT_FOUND", `no container ${id}`);
    return entry;
  }

  async kill(id: string, signal: NodeJS.Signals | number): Promise<void> {
    const sig = signalNumber(signal);
    const entry = this.entry(id);
    if (entry.exit !== undefined) return;
    try {
      await shimCall(this.socketPath(id), { op: "signal", signal: sig });
    } catch {
      // The shim is gone: the container has exited (its waiter settles it).
    }
  }

  async stop(id: string, graceSeconds: number): Promise<ContainerExit> {
    const entry = this.entry(id);
    if (entry.exit !== undefined) return entry.exit;
    if (this.frozen.has(id)) await this.setFrozen(id, false);
    await this.kill(id, SIGTERM);
    // An init (pid 1 of its namespace) without a SIGTERM handler ignores it:
    // the grace period ends in SIGKILL for every process of the cgroup.
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(0, graceSeconds) * 1000);
    });
    const first = await Promise.race([entry.handle.exited.catch(() => entry.exit), graceOver]);
    clearTimeout(timer);
    if (first !== "timeout" && first !== undefined) return first;
    await this.kill(id, SIGKILL);
    try {
      await this.native.killCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id, SIGKILL);
    } catch (err) {
      throw wrapNative(err, "CGROUP_FAILED");
    }
    try {
      return await entry.handle.exited;
    } catch {
      return entry.exit ?? { exitCode: 137, signal: SIGKILL, oomKilled: false, finishedAt: new Date() };
    }
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    const entry = this.containers.get(id);
    if (entry !== undefined && entry.exit === undefined) {
      throw new RuntimeError("CONTAINER_RUNNING", `container ${id} is still running; stop it first`);
    }
    try {
      await this.native.removeCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id);
    } catch (err) {
      throw wrapNative(err, "CGROUP_FAILED");
    }
    entry?.waiter?.destroy();
    this.containers.delete(id);
    // Synchronous for the same reason as in startValidated: spec.json, state, exit (and a handler's bundle).
    fs.rmSync(this.containerDir(id), { recursive: true, force: true });
  }

  list(): ContainerHandle[] {
    return [...this.containers.values()].map((e) => e.handle);
  }

  /** Annotations the container was started with (also after adoption). */
  annotations(id: string): Record<string, string> {
    return { ...this.entry(id).annotations };
  }

  /**
   * Live update of a running container's memory, cpu and pids limits (no
   * restart). Validated like a spec; the kernel may refuse (e.g. a memory
   * limit below what the container uses now on v1): CGROUP_FAILED naming the file.
   */
  async update(id: string, resources: ContainerSpec["resources"]): Promise<void> {
    const entry = this.entry(id);
    if (entry.exit !== undefined) throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} has exited`);
    for (const k of ["cpuMillis", "memoryBytes", "pids"] as const) {
      const v = resources?.[k];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
        throw new RuntimeError("INVALID_SPEC", `resources.${k} must be a positive integer, got ${String(v)}`);
      }
    }
    try {
      await this.native.setupCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id, resources);
    } catch (err) {
      throw wrapNative(err, "CGROUP_FAILED");
    }
    // Recorded after the kernel took them, so a restarted agent knows the
    // limits the container has (recover()): a crash in between only makes
    // the next agent apply the same limits again.
    await this.recordResources(id, resources);
  }

  /** Rewrites spec.json with the container's current limits (atomically: exec reads it). */
  private async recordResources(id: string, resources: ContainerSpec["resources"]): Promise<void> {
    const record = readRecord(this.containerDir(id), "spec.json");
    if (record === undefined) return;
    record.spec.resources = {
      cpuMillis: resources.cpuMillis,
      memoryBytes: resources.memoryBytes,
      pids: resources.pids,
    };
    await writeRecord(this.containerDir(id), "spec.json", record);
  }

  /** Freezes (true) or thaws (false) every process of a container (v1 freezer / v2 cgroup.freeze). */
  async setFrozen(id: string, frozen: boolean): Promise<void> {
    const entry = this.entry(id);
    if (entry.exit !== undefined) throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} has exited`);
    const file =
      this.cgroupMode === "v1"
        ? path.join(this.cgroupRoot, "freezer", this.cgroupParent, id, "freezer.state")
        : path.join(this.cgroupRoot, this.cgroupParent, id, "cgroup.freeze");
    const value = this.cgroupMode === "v1" ? (frozen ? "FROZEN" : "THAWED") : frozen ? "1" : "0";
    try {
      await fs.promises.writeFile(file, value);
    } catch (err) {
      throw new RuntimeError("CGROUP_FAILED", `write ${file}: ${(err as Error).message}`);
    }
    if (frozen) this.frozen.add(id);
    else this.frozen.delete(id);
  }

  /** cpu, memory, pids and OOM figures of a running container, from its shim. */
  async stats(id: string): Promise<ContainerStats> {
    this.entry(id);
    try {
      return await shimCall(this.socketPath(id), { op: "stats" });
    } catch (err) {
      throw new RuntimeError("CONTAINER_NOT_FOUND", `no stats for ${id}: ${(err as Error).message}`);
    }
  }

  /**
   * After an agent restart: adopts every container whose shim still runs,
   * returns those that exited meanwhile (their handle's `exited` resolves at
   * once with the recorded exit) and removes what cannot be loaded (a
   * directory without a spec or whose shim died without an exit record:
   * its processes are killed, its cgroup and directory removed). Then the
   * containers whose records were lost (native-recovery.ts).
   */
  async recover(): Promise<RecoveredContainer[]> {
    return recoverAll(this.host);
  }

  /** Writes spec.json for a container recovered with recordsLost (what start() writes). */
  async recordSpec(spec: ContainerSpec): Promise<void> {
    const entry = this.entry(spec.id);
    await writeRecord(this.containerDir(spec.id), "spec.json", { spec, createdAtMs: Date.now() });
    entry.annotations = { ...(spec.annotations ?? {}) };
  }

  /**
   * Loads one container of the state directory (another process started it:
   * an earlier agent, or `grove-runtime create`). Unlike recover(), never
   * removes anything; undefined when it has no spec or neither a live shim
   * nor an exit record.
   */
  async load(id: string): Promise<RecoveredContainer | undefined> {
    validateId(id);
    const known = this.containers.get(id);
    if (known !== undefined) return { handle: known.handle, annotations: known.annotations };
    return loadContainer(this.host, id, false);
  }

  async cleanupStale(): Promise<string[]> {
    let ids: string[];
    try {
      ids = await this.native.listCgroups(this.cgroupMode, this.cgroupRoot, this.cgroupParent);
    } catch (err) {
      throw wrapNative(err, "CGROUP_FAILED");
    }
    const stale = ids.filter((id) => !this.containers.has(id) && !this.starting.has(id)).sort();
    for (const id of stale) {
      try {
        // The shim writes its exit record into the directory after the kill: remove it only then.
        await killAndAwaitShim(this.host, id);
        await this.native.removeCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id);
      } catch (err) {
        throw wrapNative(err, "CGROUP_FAILED");
      }
      await removeHandlerCgroups(this.host.cgroup, id);
      await fs.promises.rm(this.containerDir(id), { recursive: true, force: true });
    }
    return stale;
  }

  /** The OOM killer's count for a container's cgroup (diagnostics, tests). */
  async oomKills(id: string): Promise<number> {
    validateId(id);
    return this.native.oomKills(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id);
  }

  /** Removes the (empty) parent cgroup and the (empty) state directory, e.g. when a test ends. */
  async removeParentCgroup(): Promise<void> {
    try {
      await this.native.removeCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, null);
    } catch (err) {
      throw wrapNative(err, "CGROUP_FAILED");
    }
    await removeHandlerCgroups(this.host.cgroup);
    try {
      await fs.promises.rmdir(this.stateDir);
    } catch {
      // not empty (containers left) or never created
    }
  }

  /**
   * Runs a command inside a running container (`grove exec`): `grove-shim exec`
   * (a sealed memfd copy, never node) joins the init's cgroups and namespaces
   * and applies the security settings recorded in the container's spec.json at
   * start (so it works on an adopted container too); opts.user, env and
   * workingDir override the container's. The helper, a child of the agent, is
   * the command's parent: the session ends with it (and with the agent).
   */
  async exec(id: string, opts: ExecOptions): Promise<ExecProcess> {
    validateId(id);
    validateExecOptions(opts);
    const entry = this.entry(id);
    if (entry.exit !== undefined) {
      throw new RuntimeError(
        "CONTAINER_NOT_RUNNING",
        `cannot exec in container ${id}: it is not running (it exited with code ${entry.exit.exitCode})`,
      );
    }
    if (this.frozen.has(id)) {
      throw new RuntimeError("CONTAINER_NOT_RUNNING", `cannot exec in container ${id}: it is frozen; thaw it first`);
    }
    return execInContainer({ ...this.host, shimPath: this.shimPath }, id, opts);
  }

  /** A TCP socket made in the container's network namespace (its init's: /proc/PID/ns/net). */
  netnsSocket(id: string): number {
    const { handle, exit } = this.entry(id);
    if (exit !== undefined) throw new RuntimeError("CONTAINER_NOT_RUNNING", `container ${id} is not running`);
    return this.native.netnsSocket(`/proc/${handle.pid}/ns/net`, 4, "tcp");
  }

  /** Stops waiting on shims (the containers keep running); for an agent that exits. */
  detach(): void {
    this.detached = true;
    for (const entry of this.containers.values()) entry.waiter?.destroy();
  }

  private async removeCgroupQuietly(id: string): Promise<void> {
    try {
      await this.native.removeCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id);
    } catch {
      // The original error matters more; cleanupStale() catches leftovers.
    }
  }
}
