// The ContainerRuntime interface: what the agent's reconciler needs from the
// runtime core. native.ts implements it over the N-API addon (agent/native);
// fake.ts implements it in memory for unit tests.

import type { Readable, Writable } from "node:stream";

export interface ContainerResources {
  /** CPU limit in millicores: becomes a CFS quota (and a proportional weight). */
  cpuMillis: number;
  /** Memory limit in bytes (no swap beyond it). */
  memoryBytes: number;
  /** Most processes and threads in the container. */
  pids: number;
}

export interface ContainerSpec {
  /** Unique on the node; [A-Za-z0-9_.-], 1..64 characters. Names the cgroup and state. */
  id: string;
  /** Absolute path of the root filesystem directory. */
  rootfs: string;
  command: string[];
  env: Record<string, string>;
  /** Absolute path inside the container; "/" by default. */
  workingDir?: string;
  hostname: string;
  resources: ContainerResources;
  /** stdout and stderr of the container are appended to this host file. */
  logPath: string;
  /**
   * Absolute path of an existing network namespace (e.g. /run/netns/NAME) the
   * container joins instead of getting a new one; unset: a new, empty one with lo up.
   */
  netnsPath?: string;
  /**
   * Opaque key/values kept with the container's state on disk and handed
   * back by recover() after an agent restart (e.g. the instance it runs).
   */
  annotations?: Record<string, string>;
  /**
   * The user the command runs as: "name" or "uid", optionally ":group" or
   * ":gid"; names come from the rootfs's /etc/passwd and /etc/group. Default root.
   */
  user?: string;
  /**
   * Absolute path of the directory whose /etc/passwd and /etc/group resolve
   * `user` (default: rootfs). The agent points it at a rootfs directory, the
   * read-only lower layer of the instance's overlay root, so nothing a
   * container can write decides which ids another instance runs as.
   */
  usersFrom?: string;
  /** Supplementary gids on top of the user's memberships in /etc/group. */
  additionalGids?: number[];
  /** Changes to Docker's default capability set (names with or without CAP_, or "ALL"). */
  capabilities?: { add?: string[]; drop?: string[] };
  /** "default": the default seccomp filter (Docker's semantics); "unconfined": none. */
  seccomp?: "default" | "unconfined";
  /**
   * setrlimit before exec, e.g. { type: "RLIMIT_NOFILE", soft: 1024, hard: 4096 }.
   * Without RLIMIT_NOFILE here the container gets soft 1024, hard 524288 (or
   * the agent's own hard limit when lower).
   */
  rlimits?: { type: string; soft: number; hard: number }[];
  /** Remount the root filesystem read-only inside the container. */
  readonlyRootfs?: boolean;
  /**
   * Bind mounts of existing host files (or directories) onto absolute paths
   * inside the container (at most 16). A missing destination is created in
   * the rootfs; a destination reached through a symlink leading out of the
   * rootfs, or that is itself a symlink, is refused.
   */
  mounts?: ContainerMount[];
  /**
   * Run in a new user namespace: container ids map to host ids as listed (both
   * maps must map container id 0; at most 5 lines each). Container root is then
   * an unprivileged host uid. The rootfs is shown through an idmapped mount
   * (its files owned by host root appear owned by container root), or, on an
   * overlayfs rootfs (an image instance), its ownership is shifted in place.
   */
  userNamespace?: UserNamespace;
  /**
   * Stay in the runtime's cgroup namespace (an OCI bundle that lists none).
   * Default: a private one rooted at the container's cgroups, so its
   * /proc/self/cgroup shows "/".
   */
  hostCgroupNamespace?: boolean;
  /**
   * Run the container through the OCI runtime this name maps to in the
   * runtime's handlers (NativeRuntimeOptions.handlers; e.g. "runc"): the
   * agent writes a bundle and grove-shim drives the runtime's command line.
   * Unset: the native path. A name without a handler fails the start with
   * UNKNOWN_RUNTIME_CLASS.
   */
  runtimeClass?: string;
}

/** Container ids [containerId, containerId + size) are host ids [hostId, hostId + size). */
export interface IdMapping {
  containerId: number;
  hostId: number;
  size: number;
}

export interface UserNamespace {
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  /**
   * Show the rootfs through an idmapped mount (default true). false uses it
   * as it is: its owner prepared it for the mapping (OCI bundles).
   */
  idmapRootfs?: boolean;
}

export interface ContainerMount {
  /** Absolute host path of an existing regular file (or directory). */
  source: string;
  /** Absolute path inside the container, without "." or ".." components. */
  destination: string;
  /** Remount it read-only. */
  readonly?: boolean;
  /** Bind the source's submounts too (MS_REC; an OCI bundle's rbind). Default false. */
  recursive?: boolean;
}

/** A container's resource usage, as its cgroups count it. -1: not available. */
export interface ContainerStats {
  cpuUsageNs: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  pids: number;
  oomKills: number;
}

/** A container found again after an agent restart (running, or exited meanwhile). */
export interface RecoveredContainer {
  handle: ContainerHandle;
  annotations: Record<string, string>;
  /**
   * The limits the container has, as last recorded: those it started with,
   * or those of its last successful update(). Unset when the runtime does not know.
   */
  resources?: ContainerResources;
  /**
   * Its records were gone (the runtime's state directory was removed while it
   * ran): found from the host (its cgroup and its shim), it has no spec and
   * no annotations until the caller records them again (recordSpec).
   */
  recordsLost?: boolean;
}

export interface ContainerExit {
  /** Exit status when the process exited normally, else 128 + signal. */
  exitCode: number;
  /** The signal that ended it, 0 when it exited normally. */
  signal: number;
  /** The kernel's OOM killer killed a process of the container. */
  oomKilled: boolean;
  finishedAt: Date;
}

export interface ContainerHandle {
  id: string;
  /** Host PID of the container's init (PID 1 inside). */
  pid: number;
  startedAt: Date;
  /** Resolves once the container's init has exited and been reaped. */
  exited: Promise<ContainerExit>;
}

/** A command to run inside a running container (`grove exec`). */
export interface ExecOptions {
  /** Program and arguments; a program without "/" is looked up in the container's PATH. */
  command: string[];
  /** Added to (and overriding) the container's environment. */
  env?: Record<string, string>;
  /** Absolute path inside the container; default: the container's working directory. */
  workingDir?: string;
  /** "user[:group]" as in ContainerSpec.user; default: the container's user. */
  user?: string;
  /** Run on a new pseudo-terminal of the container (stdout then carries both streams). */
  tty?: boolean;
  /** Initial terminal size with tty (default 80x24). */
  cols?: number;
  rows?: number;
}

/** A process started by exec: joined the container's namespaces, cgroup and security settings. */
export interface ExecProcess {
  /** Host PID of the process. */
  pid: number;
  stdin: Writable;
  stdout: Readable;
  /** null with a tty (the terminal carries stderr too). */
  stderr: Readable | null;
  /** Changes the terminal size (tty only; ignored otherwise). */
  resize(cols: number, rows: number): void;
  /** Sends a signal to the process. */
  kill(signal: NodeJS.Signals | number): void;
  /** Resolves when the process has exited; exitCode is 128 + signal when a signal ended it. */
  exited: Promise<{ exitCode: number; signal: number }>;
}

export type CgroupMode = "v1" | "v2";

export interface ContainerRuntime {
  readonly cgroupMode: CgroupMode;
  /** Creates cgroups and namespaces, pivots into the rootfs and execs the command. */
  start(spec: ContainerSpec): Promise<ContainerHandle>;
  /** Sends a signal to the container's init. A container that already exited is not an error. */
  kill(id: string, signal: NodeJS.Signals | number): Promise<void>;
  /** SIGTERM, then SIGKILL to every process of the container after the grace period. */
  stop(id: string, graceSeconds: number): Promise<ContainerExit>;
  /** Removes what an exited container left (its cgroups). Throws when it still runs. */
  remove(id: string): Promise<void>;
  /** Containers started by this runtime that have not been removed. */
  list(): ContainerHandle[];
  /**
   * Kills and removes containers a previous agent run left behind (their
   * cgroups under this runtime's parent cgroup). Returns their ids.
   */
  cleanupStale(): Promise<string[]>;
  /**
   * Adopts the containers a previous agent run left running (they outlive
   * the agent) and returns them with those that exited meanwhile; optional
   * for runtimes whose containers die with the agent. Call before cleanupStale().
   */
  recover?(): Promise<RecoveredContainer[]>;
  /**
   * Records the spec (and annotations) of a container recovered with
   * recordsLost, as start() would have, so exec and the next recover() work.
   */
  recordSpec?(spec: ContainerSpec): Promise<void>;
  /** Current resource usage of a container. */
  stats?(id: string): Promise<ContainerStats>;
  /**
   * Changes a running container's memory, cpu and pids limits in place and
   * records them (recover() hands them back). When the kernel refuses one
   * (e.g. a memory limit below what the container uses on cgroup v1) it
   * throws and the recorded limits stay as they were.
   */
  update?(id: string, resources: ContainerResources): Promise<void>;
  /** Runs a command inside a running container. */
  exec?(id: string, opts: ExecOptions): Promise<ExecProcess>;
  /**
   * A new unconnected TCP socket (its fd) made inside the running
   * container's network namespace, for health probes from inside it (its
   * 127.0.0.1). Without it, probes connect from the agent's namespace.
   */
  netnsSocket?(id: string): number;
}
