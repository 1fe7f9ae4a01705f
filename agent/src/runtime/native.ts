// NativeRuntime: the ContainerRuntime over the N-API addon (agent/native).
// This file owns the bookkeeping (which ids run, their pidfds, exit promises)
// and the stop sequence; the addon does the system calls.
import * as fs from "node:fs";
import * as path from "node:path";

import { RuntimeError } from "./errors";
import { loadNativeBinding, type NativeBinding, type NativeError, type NativeExit } from "./native-binding";
import type { CgroupMode, ContainerExit, ContainerHandle, ContainerRuntime, ContainerSpec } from "./types";
import { signalNumber, validateId, validateSpec } from "./validate";

const SIGKILL = 9;
const SIGTERM = 15;

export interface NativeRuntimeOptions {
  /** Where cgroupfs is mounted; a test may point it at a fake tree. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Parent cgroup of all containers of this runtime. Default "grove". */
  cgroupParent?: string;
  /** Skips detection (statfs of cgroupRoot). */
  cgroupMode?: CgroupMode;
  /**
   * Directory for one <id>.json record per container (pid, start time, rootfs),
   * written on start and removed on remove(), so operators and a restarted
   * agent can see what ran. Unset: no records.
   */
  stateDir?: string;
  /** The addon; loaded from agent/native/build by default. */
  binding?: NativeBinding;
}

interface Entry {
  handle: ContainerHandle;
  pidfd: number;
  exit: ContainerExit | undefined;
}

function wrapNative(err: unknown, code: "START_FAILED" | "CGROUP_FAILED"): RuntimeError {
  const e = err as Partial<NativeError>;
  return new RuntimeError(code, e.message ?? String(err), e.code);
}

export class NativeRuntime implements ContainerRuntime {
  readonly cgroupMode: CgroupMode;
  readonly cgroupRoot: string;
  readonly cgroupParent: string;
  readonly stateDir: string | undefined;
  private readonly native: NativeBinding;
  private readonly containers = new Map<string, Entry>();
  /** Ids between validation and the end of start(), so a concurrent start of the same id fails. */
  private readonly starting = new Set<string>();

  constructor(opts: NativeRuntimeOptions = {}) {
    this.native = opts.binding ?? loadNativeBinding();
    this.cgroupRoot = opts.cgroupRoot ?? "/sys/fs/cgroup";
    this.cgroupParent = opts.cgroupParent ?? "grove";
    validateId(this.cgroupParent);
    this.stateDir = opts.stateDir;
    this.cgroupMode = opts.cgroupMode ?? this.native.detectCgroupMode(this.cgroupRoot);
  }

  async start(spec: ContainerSpec): Promise<ContainerHandle> {
    validateSpec(spec, { checkFilesystem: true });
    if (this.containers.has(spec.id) || this.starting.has(spec.id)) {
      throw new RuntimeError("CONTAINER_EXISTS", `container ${spec.id} already exists`);
    }
    this.starting.add(spec.id);
    try {
      return await this.startValidated(spec);
    } finally {
      this.starting.delete(spec.id);
    }
  }

  private async startValidated(spec: ContainerSpec): Promise<ContainerHandle> {
    const { id } = spec;
    try {
      await this.native.setupCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id, spec.resources);
    } catch (err) {
      await this.removeCgroupQuietly(id);
      throw wrapNative(err, "CGROUP_FAILED");
    }

    let resolveExit!: (exit: ContainerExit) => void;
    const exited = new Promise<ContainerExit>((resolve) => (resolveExit = resolve));
    // The waiter may report before start() resolves (a command that exits at once).
    const pending: { entry?: Entry; early?: NativeExit } = {};
    const onExit = (raw: NativeExit): void => {
      if (pending.entry === undefined) {
        pending.early = raw;
        return;
      }
      this.settle(pending.entry, raw, resolveExit);
    };

    let started;
    try {
      started = await this.native.start(
        {
          id,
          rootfs: spec.rootfs,
          argv: spec.command,
          env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
          cwd: spec.workingDir ?? "/",
          hostname: spec.hostname,
          logPath: spec.logPath,
          cgroupMode: this.cgroupMode,
          cgroupRoot: this.cgroupRoot,
          cgroupParent: this.cgroupParent,
          ...(spec.netnsPath !== undefined ? { netnsPath: spec.netnsPath } : {}),
        },
        onExit,
      );
    } catch (err) {
      await this.removeCgroupQuietly(id);
      throw wrapNative(err, "START_FAILED");
    }

    const entry: Entry = {
      handle: { id, pid: started.pid, startedAt: new Date(), exited },
      pidfd: started.pidfd,
      exit: undefined,
    };
    pending.entry = entry;
    this.containers.set(id, entry);
    if (pending.early !== undefined) this.settle(entry, pending.early, resolveExit);
    await this.writeState(spec, entry.handle);
    return entry.handle;
  }

  private settle(entry: Entry, raw: NativeExit, resolve: (exit: ContainerExit) => void): void {
    const exit: ContainerExit = {
      exitCode: raw.exitCode,
      signal: raw.signal,
      oomKilled: raw.oomKilled,
      finishedAt: new Date(),
    };
    entry.exit = exit;
    // Reaped: the pidfd is of no further use.
    this.native.closeFd(entry.pidfd);
    entry.pidfd = -1;
    resolve(exit);
  }

  private entry(id: string): Entry {
    const entry = this.containers.get(id);
    if (entry === undefined) throw new RuntimeError("CONTAINER_NOT_FOUND", `no container ${id}`);
    return entry;
  }

  async kill(id: string, signal: NodeJS.Signals | number): Promise<void> {
    const sig = signalNumber(signal);
    const entry = this.entry(id);
    if (entry.exit !== undefined || entry.pidfd < 0) return;
    this.native.pidfdSignal(entry.pidfd, sig);
  }

  async stop(id: string, graceSeconds: number): Promise<ContainerExit> {
    const entry = this.entry(id);
    if (entry.exit !== undefined) return entry.exit;
    await this.kill(id, SIGTERM);
    // An init (pid 1 of its namespace) without a SIGTERM handler ignores it:
    // the grace period ends in SIGKILL for every process of the cgroup.
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(0, graceSeconds) * 1000);
    });
    const first = await Promise.race([entry.handle.exited, graceOver]);
    clearTimeout(timer);
    if (first !== "timeout") return first;
    await this.kill(id, SIGKILL);
    try {
      await this.native.killCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id, SIGKILL);
    } catch (err) {
      throw wrapNative(err, "CGROUP_FAILED");
    }
    return entry.handle.exited;
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
    this.containers.delete(id);
    if (this.stateDir !== undefined) await fs.promises.rm(this.statePath(id), { force: true });
  }

  list(): ContainerHandle[] {
    return [...this.containers.values()].map((e) => e.handle);
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
        await this.native.killCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id, SIGKILL);
        await this.native.removeCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id);
      } catch (err) {
        throw wrapNative(err, "CGROUP_FAILED");
      }
      if (this.stateDir !== undefined) await fs.promises.rm(this.statePath(id), { force: true });
    }
    return stale;
  }

  /** The OOM killer's count for a container's cgroup (diagnostics, tests). */
  async oomKills(id: string): Promise<number> {
    validateId(id);
    return this.native.oomKills(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id);
  }

  /** Removes the (empty) parent cgroup, e.g. when a node is decommissioned or a test ends. */
  async removeParentCgroup(): Promise<void> {
    try {
      await this.native.removeCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, null);
    } catch (err) {
      throw wrapNative(err, "CGROUP_FAILED");
    }
  }

  private statePath(id: string): string {
    return path.join(this.stateDir ?? "", `${id}.json`);
  }

  private async writeState(spec: ContainerSpec, handle: ContainerHandle): Promise<void> {
    if (this.stateDir === undefined) return;
    const record = { id: spec.id, pid: handle.pid, startedAt: handle.startedAt.toISOString(), rootfs: spec.rootfs };
    try {
      await fs.promises.mkdir(this.stateDir, { recursive: true });
      await fs.promises.writeFile(this.statePath(spec.id), JSON.stringify(record) + "\n");
    } catch {
      // Records are informational; the container runs regardless.
    }
  }

  private async removeCgroupQuietly(id: string): Promise<void> {
    try {
      await this.native.removeCgroup(this.cgroupMode, this.cgroupRoot, this.cgroupParent, id);
    } catch {
      // The original error matters more; cleanupStale() catches leftovers.
    }
  }
}
