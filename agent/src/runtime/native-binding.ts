// The whole native surface of agent/native (grove_native.node), typed in one
// place. Nothing else imports the .node file.
import * as fs from "node:fs";
import * as path from "node:path";

import { RuntimeError } from "./errors";
import type { CgroupMode } from "./types";

export interface NativeResources {
  cpuMillis: number;
  memoryBytes: number;
  pids: number;
}

export interface NativeStartOptions {
  id: string;
  rootfs: string;
  argv: string[];
  /** "KEY=value" strings. */
  env: string[];
  cwd: string;
  hostname: string;
  logPath: string;
  cgroupMode: CgroupMode;
  cgroupRoot: string;
  cgroupParent: string;
  /** Join this network namespace instead of creating one. */
  netnsPath?: string;
  /** Bind mounts of host files (or directories) onto paths inside the rootfs. */
  mounts?: { source: string; destination: string; readonly?: boolean }[];
}

export interface NativeStarted {
  pid: number;
  /** O_CLOEXEC pidfd of the init; the caller closes it with closeFd. */
  pidfd: number;
}

export interface NativeExit {
  exitCode: number;
  signal: number;
  oomKilled: boolean;
  /** Set when waitpid itself failed (should not happen). */
  error?: string;
}

/** Errors from the addon carry the errno. */
export interface NativeError extends Error {
  errno: number;
  code: string;
}

export interface NativeBinding {
  /** statfs(root): cgroup2 magic => "v2", else "v1" (v1 or hybrid). */
  detectCgroupMode(root: string): CgroupMode;
  /** Creates <parent>/<id> and writes its limits (v1: per controller; v2: enables controllers on the parent). */
  setupCgroup(mode: CgroupMode, root: string, parent: string, id: string, resources: NativeResources): Promise<void>;
  /**
   * Loads the cgroup v2 device program (the container device allow list, default
   * deny) and attaches it to the cgroup2 directory dir; setupCgroup("v2") does
   * this for every container cgroup. Extra rules ("c 1:11 r", allowed or denied)
   * come before the allow list; the last matching rule decides.
   */
  attachDeviceProgram(dir: string, rules?: { allow: boolean; rule: string }[]): void;
  /** rmdir <parent>/<id> (id null: the parent), retrying EBUSY briefly; a missing cgroup is fine. */
  removeCgroup(mode: CgroupMode, root: string, parent: string, id: string | null): Promise<void>;
  /** Signals every process in the cgroup (SIGKILL: until it is empty). Resolves to how many were signalled. */
  killCgroup(mode: CgroupMode, root: string, parent: string, id: string, signal: number): Promise<number>;
  /** Child cgroups of the parent (v1: union over memory, cpu, pids). */
  listCgroups(mode: CgroupMode, root: string, parent: string): Promise<string[]>;
  /** v1 memory.oom_control / v2 memory.events "oom_kill N". */
  oomKills(mode: CgroupMode, root: string, parent: string, id: string): Promise<number>;
  /** Starts the container init; onExit is called once from its waiter thread. */
  start(options: NativeStartOptions, onExit: (exit: NativeExit) => void): Promise<NativeStarted>;
  /** pidfd_send_signal: true when sent, false when the process is gone. */
  pidfdSignal(pidfd: number, signal: number): boolean;
  /**
   * Spawns grove-shim with its config (key/value pairs, see agent/native/src/shim.c)
   * and resolves once the container's init runs (or rejects with the shim's error).
   */
  startShim(shimPath: string, id: string, config: string[]): Promise<{ pid: number; shimPid: number }>;
  closeFd(fd: number): void;
}

export const NATIVE_ADDON_PATH = path.resolve(__dirname, "../../native/build/Release/grove_native.node");

/** The grove-shim executable, built with the addon. */
export const SHIM_PATH = path.resolve(__dirname, "../../native/build/Release/grove-shim");

let cached: NativeBinding | undefined;

/** Loads the addon once; throws RuntimeError NATIVE_NOT_BUILT with the fix when it is missing. */
export function loadNativeBinding(addonPath: string = NATIVE_ADDON_PATH): NativeBinding {
  if (addonPath === NATIVE_ADDON_PATH && cached !== undefined) return cached;
  if (!fs.existsSync(addonPath)) {
    throw new RuntimeError(
      "NATIVE_NOT_BUILT",
      `the Grove native addon is not built (${addonPath} is missing): run \`npm run build:native -w @grove/agent\``,
    );
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const binding = require(addonPath) as NativeBinding;
  if (addonPath === NATIVE_ADDON_PATH) cached = binding;
  return binding;
}
