// The whole native surface of agent/native (grove_native.node), typed in one
// place. Nothing else imports the .node file. (Starting a container without a
// shim is bench-only: grove_bench.node, test/bench/lib-bench-native.ts.)
import * as fs from "node:fs";
import * as path from "node:path";

import { RuntimeError } from "./errors";
import type { CgroupMode, IdMapping } from "./types";

export interface NativeResources {
  cpuMillis: number;
  memoryBytes: number;
  pids: number;
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
  /**
   * Spawns grove-shim with its configuration (flattened key/value pairs of
   * encodeShimConfig, shim-protocol.ts) and resolves once the container's init
   * runs (or rejects with the shim's error).
   */
  startShim(shimPath: string, id: string, config: string[]): Promise<{ pid: number; shimPid: number }>;
  /**
   * A new unconnected socket made inside the network namespace bound at
   * netnsPath (a short-lived thread enters it; netns.c): its fd,
   * non-blocking and close-on-exec, for net.Socket({ fd }) to connect.
   * Throws (with errno) when the namespace cannot be entered.
   */
  netnsSocket(netnsPath: string, family: 4 | 6, type: "tcp" | "udp"): number;
}

/** A bundle's config.json as Grove's one OCI front end reads it (agent/native/src/oci_config.c). */
export interface OciBundle {
  /** Absolute, below the bundle when config.json gave it relative. */
  rootfs: string;
  readonlyRootfs: boolean;
  /** config.json's hostname, else the container id (at most 63 characters). */
  hostname: string;
  process: OciProcess;
  /** Bind mounts (those Grove makes itself, /proc, /dev, /sys, ..., left out); sources absolute. */
  mounts: { source: string; destination: string; readonly: boolean; recursive: boolean }[];
  /** A network namespace to join. */
  netnsPath: string | null;
  /** The bundle lists no cgroup namespace: the container stays in the runtime's. */
  hostCgroupNamespace: boolean;
  userNamespace: { uidMap: IdMapping[]; gidMap: IdMapping[] } | null;
  /** 0: no limit asked for. */
  resources: {
    cpuMillis: number;
    cpuQuotaUs: number;
    cpuPeriodUs: number;
    cpuShares: number;
    memoryBytes: number;
    pids: number;
    /** linux.resources.devices as rules ("c 10:229 rw"), in order. */
    devices: { allow: boolean; rule: string }[];
  };
  /** config.json's annotations object as JSON text ("{}" when none). */
  annotations: string;
  /** Fields the config sets that the static grove-runtime applies and NativeRuntime does not
   * ("process.oomScoreAdj", "linux.sysctl", ...). */
  staticOnly: string[];
}

export interface OciProcess {
  args: string[];
  /** "KEY=value", HOME added from the rootfs's /etc/passwd when missing. */
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  /** Capability mask (decimal), the bounding set; null: none asked for (Docker's defaults). */
  caps: string | null;
  /** The other sets as config.json gave them (decimal masks), null when absent. grove-runtime
   * applies all five; the TypeScript command line gives one set and refuses others. */
  capsGiven: { effective: string | null; permitted: string | null; inheritable: string | null };
  /** "default" when the annotation org.grove.seccomp says so. */
  seccomp: "default" | "unconfined";
  /** resource is an RLIMIT_* number. */
  rlimits: { resource: number; soft: number; hard: number }[];
}

/** The addon's OCI front end, used by the TypeScript grove-runtime (agent/src/oci). */
export interface OciFrontEnd {
  /** Reads <bundle>/config.json for container id; throws the refusal naming the field. */
  readOciBundle(bundle: string, id: string): OciBundle;
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

/** The addon's OCI front end (the same grove_native.node). */
export function loadOciFrontEnd(addonPath: string = NATIVE_ADDON_PATH): OciFrontEnd {
  return loadNativeBinding(addonPath) as unknown as OciFrontEnd;
}
