// The runtime boundary, typed once: what NativeRuntime hands grove-shim and the
// exec helper (ShimConfig, ExecConfig and their shared ProcessConfig), the
// shim socket's requests and answers, the exec helper's status lines and the
// records a container's state directory holds. The C side is
// agent/native/src/shim_protocol.h: the same key names (WIRE_KEYS below;
// shim-protocol.test.ts reads the header and fails when they differ) and one
// parser of the process keys for grove-shim and grove-shim exec.
//
// A configuration travels as NUL-terminated "key" "value" pairs. Each type has
// one table saying which key each of its fields becomes and how; the tables
// are typed over every field, so a field without a key does not compile, and
// encode() is the only encoder.
import * as net from "node:net";
import * as fs from "node:fs";

import type { CgroupMode, ContainerExit, ContainerSpec, ContainerStats, IdMapping } from "./types";

/**
 * Field name -> wire key, for every key of the protocol. Where the names
 * differ (logPath -> log, hostCgroupNamespace -> cgroupns, args -> arg, ...)
 * this is the one place that says so.
 */
export const WIRE_KEYS = {
  // both configurations
  id: "id",
  cwd: "cwd",
  cgroupMode: "cgroup_mode",
  cgroupRoot: "cgroup_root",
  cgroupParent: "cgroup_parent",
  // the process keys (ProcessConfig), shared
  caps: "caps",
  seccomp: "seccomp",
  uid: "uid",
  gid: "gid",
  groups: "group",
  rlimits: "rlimit",
  args: "arg",
  env: "env",
  // grove-shim only
  rootfs: "rootfs",
  hostname: "hostname",
  logPath: "log",
  logMaxBytes: "log_max",
  dir: "dir",
  netnsPath: "netns",
  mountSource: "mount_src",
  mountDestination: "mount_dst",
  mountReadonly: "mount_ro",
  readonlyRootfs: "readonly_rootfs",
  hostCgroupNamespace: "cgroupns",
  uidMap: "uid_map",
  gidMap: "gid_map",
  idmapRootfs: "userns_idmap",
  hold: "hold",
  // grove-shim of a runtime handler instance only (shim_runtime.c)
  runtime: "runtime",
  bundle: "bundle",
  runtimeRoot: "runtime_root",
  // grove-shim, written by the static grove-runtime only (OCI bundles; no ShimConfig field)
  oomScoreAdj: "oom_score_adj",
  umask: "umask",
  noNewPrivs: "no_new_privs",
  sysctl: "sysctl",
  mountType: "mount_type",
  mountFlags: "mount_flags",
  mountData: "mount_data",
  mountOwn: "mount_own",
  mountField: "mount_field",
  mountPropagation: "mount_propagation",
  rootfsPropagation: "rootfs_propagation",
  hooks: "hooks",
  device: "device",
  utsNs: "uts_ns",
  ipcNs: "ipc_ns",
  pidNs: "pid_ns",
  mntNs: "mnt_ns",
  cgroupNs: "cgroup_ns",
  userNs: "user_ns",
  timeNs: "time_ns",
  timeOffset: "time_offset",
  seccompFlags: "seccomp_flags",
  maskedPath: "masked_path",
  readonlyPath: "readonly_path",
  cgroupName: "cgroup_name",
  procAttr: "proc_attr",
  cgroupV1Join: "cgroup_v1_join",
  cgroupPrefix: "cgroup_prefix",
  consoleSocket: "console_socket",
  // grove-shim exec only (rows and cols also grove-shim's, with console_socket)
  pid: "pid",
  tty: "tty",
  cols: "cols",
  rows: "rows",
} as const;

const K = WIRE_KEYS;

export interface CgroupRef {
  mode: CgroupMode;
  root: string;
  parent: string;
}

/** setrlimit(resource, {soft, hard}); resource is an RLIMIT_* number. */
export interface WireRlimit {
  resource: number;
  soft: number;
  hard: number;
}

/** What the container's init and an exec'd process both get (the C grove_process_config_t). */
export interface ProcessConfig {
  /** Capability mask as a decimal string (a u64 may not fit a double). */
  caps: string;
  seccomp: "default" | "unconfined";
  uid: number;
  gid: number;
  /** Supplementary gids. */
  groups: number[];
  rlimits: WireRlimit[];
  args: string[];
  /** "KEY=value" strings. */
  env: string[];
}

export interface ShimMount {
  source: string;
  destination: string;
  readonly: boolean;
  /** With the source's submounts (MS_REC): an OCI bundle's rbind. */
  recursive: boolean;
}

/** mount(2)'s MS_REC, the one flag a bind mount's mount_flags carries. */
const MS_REC = 0x4000;

export interface ShimUserNamespace {
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  idmapRootfs: boolean;
}

/** grove-shim's configuration (agent/native/src/shim.c). */
export interface ShimConfig {
  id: string;
  rootfs: string;
  cwd: string;
  hostname: string;
  logPath: string;
  logMaxBytes: number;
  /** The container's state directory (records and shim.sock). */
  dir: string;
  cgroup: CgroupRef;
  netnsPath: string | null;
  mounts: ShimMount[];
  readonlyRootfs: boolean;
  hostCgroupNamespace: boolean;
  userNamespace: ShimUserNamespace | null;
  /** OCI create: the init waits before execve until the shim is asked to "start". */
  hold: boolean;
  /** A runtime handler instance: the OCI runtime grove-shim drives instead of the core. */
  handler?: ShimHandler | null;
  process: ProcessConfig;
}

/** What grove-shim needs to run a container through an OCI runtime's command line. */
export interface ShimHandler {
  /** The runtime's executable. */
  runtime: string;
  /** The bundle directory (config.json). */
  bundle: string;
  /** The runtime's --root. */
  root: string;
}

/** The exec helper's configuration (`grove-shim exec`, agent/native/src/exec.c). */
export interface ExecConfig {
  id: string;
  /** Host pid of the container's init, whose namespaces the command joins. */
  pid: number;
  cgroup: CgroupRef;
  cwd: string;
  tty: boolean;
  cols: number;
  rows: number;
  process: ProcessConfig;
}

// ---- the encoder -----------------------------------------------------------

export type Pairs = [string, string][];
type Encoder<V> = (value: V) => Pairs;
/** One encoder per field: the compiler refuses a table that misses a field. */
type Table<T> = { [F in keyof T]-?: Encoder<T[F]> };

const text =
  (key: string): Encoder<string> =>
  (v) => [[key, v]];
const int =
  (key: string): Encoder<number> =>
  (v) => [[key, String(v)]];
/** Present ("1", or `on`) only when true. */
const flag =
  (key: string, on = "1"): Encoder<boolean> =>
  (v) =>
    v ? [[key, on]] : [];
const optional =
  <V>(e: Encoder<V>): Encoder<V | null> =>
  (v) =>
    v === null ? [] : e(v);
const each =
  <V>(e: Encoder<V>): Encoder<readonly V[]> =>
  (vs) =>
    vs.flatMap(e);
const idMap =
  (key: string): Encoder<IdMapping> =>
  (m) => [[key, `${m.containerId}:${m.hostId}:${m.size}`]];
/** The fields of a record in the table's order. */
function record<T>(table: Table<T>): Encoder<T> {
  const fields = Object.keys(table) as (keyof T)[];
  return (v) => fields.flatMap((f) => table[f](v[f]));
}

const CGROUP: Table<CgroupRef> = {
  mode: text(K.cgroupMode),
  root: text(K.cgroupRoot),
  parent: text(K.cgroupParent),
};

const PROCESS: Table<ProcessConfig> = {
  caps: text(K.caps),
  seccomp: text(K.seccomp),
  uid: int(K.uid),
  gid: int(K.gid),
  groups: each(int(K.groups)),
  rlimits: each((r) => [[K.rlimits, `${r.resource}:${r.soft}:${r.hard}`]]),
  args: each(text(K.args)),
  env: each(text(K.env)),
};

const SHIM: Table<ShimConfig> = {
  id: text(K.id),
  rootfs: text(K.rootfs),
  cwd: text(K.cwd),
  hostname: text(K.hostname),
  logPath: text(K.logPath),
  logMaxBytes: int(K.logMaxBytes),
  dir: text(K.dir),
  cgroup: record(CGROUP),
  netnsPath: optional(text(K.netnsPath)),
  // "mount_src" starts a mount; its "mount_dst" and "mount_ro" follow it
  // (and "mount_flags" with MS_REC for a recursive bind).
  mounts: each((m) => [
    [K.mountSource, m.source],
    [K.mountDestination, m.destination],
    [K.mountReadonly, m.readonly ? "1" : "0"],
    ...flag(K.mountFlags, String(MS_REC))(m.recursive),
  ]),
  readonlyRootfs: flag(K.readonlyRootfs),
  hostCgroupNamespace: flag(K.hostCgroupNamespace, "host"),
  userNamespace: optional(
    record<ShimUserNamespace>({
      uidMap: each(idMap(K.uidMap)),
      gidMap: each(idMap(K.gidMap)),
      idmapRootfs: flag(K.idmapRootfs),
    }),
  ),
  hold: flag(K.hold),
  handler: (v) =>
    v === undefined || v === null
      ? []
      : record<ShimHandler>({ runtime: text(K.runtime), bundle: text(K.bundle), root: text(K.runtimeRoot) })(v),
  process: record(PROCESS),
};

const EXEC: Table<ExecConfig> = {
  id: text(K.id),
  pid: int(K.pid),
  cgroup: record(CGROUP),
  cwd: text(K.cwd),
  tty: (v) => [[K.tty, v ? "1" : "0"]],
  cols: int(K.cols),
  rows: int(K.rows),
  process: record(PROCESS),
};

export const encodeShimConfig: Encoder<ShimConfig> = record(SHIM);
export const encodeExecConfig: Encoder<ExecConfig> = record(EXEC);

/** NUL-terminated keys and values, as grove-shim and the exec helper read them on fd 3. */
export function pairsToBlob(pairs: Pairs): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}\0${v}\0`).join(""));
}

// ---- the shim's socket ------------------------------------------------------

/** One request line to <dir>/shim.sock. */
export type ShimRequest =
  { op: "state" } | { op: "start" } | { op: "signal"; signal: number } | { op: "wait" } | { op: "stats" };

export interface ShimStateAnswer {
  id: string;
  pid: number;
  shimPid: number;
  running: boolean;
  status: "created" | "running" | "stopped";
  startedAtMs: number;
}

/** Each request's answer line (JSON written by shim.c's answer()). */
export interface ShimAnswers {
  state: ShimStateAnswer;
  start: { started?: true; error?: string };
  signal: { sent?: boolean; error?: string };
  /** Sent once the init has exited: the exit record. */
  wait: ExitRecord;
  stats: ContainerStats;
}

export function requestLine(r: ShimRequest): string {
  return r.op === "signal" ? `signal ${r.signal}` : r.op;
}

/** One request to a shim, one line of JSON back. Rejects when the shim is not there. */
export function shimCall<R extends ShimRequest>(
  socketPath: string,
  request: R,
  timeoutMs = 10_000,
): Promise<ShimAnswers[R["op"]]> {
  return shimRequest(socketPath, requestLine(request), timeoutMs);
}

/** The untyped form of shimCall (kept for callers of the earlier API). */
export function shimRequest<T>(socketPath: string, request: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`shim ${socketPath} did not answer ${JSON.stringify(request)} in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(`${request}\n`));
    sock.on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      sock.destroy();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as T);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    sock.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      reject(new Error(`shim ${socketPath} closed the connection`));
    });
  });
}

/**
 * Asks the shim to "wait" and calls onExit once: with the exit record it
 * answers when the init has exited, or undefined when the connection ends
 * without one (the shim died, or the caller destroyed the returned socket).
 */
export function waitForExit(socketPath: string, onExit: (exit: ExitRecord | undefined) => void): net.Socket {
  const sock = net.createConnection(socketPath);
  let buf = "";
  let done = false;
  const once = (exit: ExitRecord | undefined): void => {
    if (done) return;
    done = true;
    onExit(exit);
  };
  sock.setEncoding("utf8");
  sock.on("connect", () => sock.write(`${requestLine({ op: "wait" })}\n`));
  sock.on("data", (chunk: string) => {
    buf += chunk;
    const nl = buf.indexOf("\n");
    if (nl < 0) return;
    try {
      once(JSON.parse(buf.slice(0, nl)) as ExitRecord);
    } catch {
      once(undefined);
    }
    sock.destroy();
  });
  sock.on("error", () => undefined);
  sock.on("close", () => once(undefined));
  return sock;
}

/** The exec helper's status lines on fd 5 (exec.c). */
export type ExecStatusLine = { pid: number } | { exitCode: number; signal: number } | { error: string; errno: number };

// ---- the records of a container's state directory ---------------------------

/** spec.json: what the agent asked for (written before the shim starts). */
export interface SpecRecord {
  spec: ContainerSpec;
  createdAtMs: number;
}

/** state: written by the shim once the init runs. */
export interface StateRecord {
  pid: number;
  shimPid: number;
  startedAtMs: number;
}

/** exit: written by the shim once the init has exited (also the "wait" answer). */
export interface ExitRecord {
  exitCode: number;
  signal: number;
  oomKilled: boolean;
  finishedAtMs: number;
}

export function exitFromRecord(r: ExitRecord): ContainerExit {
  return { exitCode: r.exitCode, signal: r.signal, oomKilled: r.oomKilled, finishedAt: new Date(r.finishedAtMs) };
}

export interface Records {
  "spec.json": SpecRecord;
  state: StateRecord;
  exit: ExitRecord;
}

/**
 * writeRecord without the event loop: a start writes spec.json synchronously
 * (three system calls on a file of a few hundred bytes), where the promise
 * version costs a thread-pool round trip per call on the path a start waits on.
 */
export function writeRecordSync<N extends keyof Records>(dir: string, name: N, record: Records[N]): void {
  const file = `${dir}/${name}`;
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(record) + "\n", { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

/** Writes a record of <dir> atomically (tmp + rename: readers never see half of one). */
export async function writeRecord<N extends keyof Records>(dir: string, name: N, record: Records[N]): Promise<void> {
  const file = `${dir}/${name}`;
  await fs.promises.writeFile(`${file}.tmp`, JSON.stringify(record) + "\n", { mode: 0o600 });
  await fs.promises.rename(`${file}.tmp`, file);
}

/** A record of <dir>; undefined when it is missing or unreadable. */
export function readRecord<N extends keyof Records>(dir: string, name: N): Records[N] | undefined {
  try {
    return JSON.parse(fs.readFileSync(`${dir}/${name}`, "utf8")) as Records[N];
  } catch {
    return undefined;
  }
}
