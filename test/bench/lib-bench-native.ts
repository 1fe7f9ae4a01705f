// grove_bench.node: the runtime core's container start without a shim (the
// init is a child of this process), built beside the product addon but only
// loaded here, by test/bench/runtime-start.ts. The agent's own surface is
// agent/src/runtime/native-binding.ts.
import * as fs from "node:fs";
import * as path from "node:path";
import { NATIVE_ADDON_PATH, type CgroupMode } from "@grove/agent";

export interface BenchStartOptions {
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
  netnsPath: string | null;
  /** Bind mounts of host files (or directories) onto paths inside the rootfs. */
  mounts: { source: string; destination: string; readonly: boolean }[] | null;
}

export interface BenchStarted {
  pid: number;
  /** O_CLOEXEC pidfd of the init; close it with closeFd. */
  pidfd: number;
}

export interface BenchExit {
  exitCode: number;
  signal: number;
  oomKilled: boolean;
  /** Set when waitpid itself failed (should not happen). */
  error?: string;
}

export interface BenchBinding {
  /** Starts the container init (cgroup set up already); onExit is called once from its waiter thread. */
  start(options: BenchStartOptions, onExit: (exit: BenchExit) => void): Promise<BenchStarted>;
  /** pidfd_send_signal: true when sent, false when the process is gone. */
  pidfdSignal(pidfd: number, signal: number): boolean;
  closeFd(fd: number): void;
}

export const BENCH_ADDON_PATH = path.join(path.dirname(NATIVE_ADDON_PATH), "grove_bench.node");

export function loadBenchBinding(): BenchBinding {
  if (!fs.existsSync(BENCH_ADDON_PATH)) {
    throw new Error(`${BENCH_ADDON_PATH} is missing: run \`npm run build:native -w @grove/agent\``);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(BENCH_ADDON_PATH) as BenchBinding;
}
