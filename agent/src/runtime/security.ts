// Security settings of a container, resolved in TypeScript before the native
// core sees them: capability names to a mask, rlimit names to numbers, and a
// user ("name[:group]" or "uid[:gid]") to ids read from the rootfs's own
// /etc/passwd and /etc/group, resolving symlinks inside the rootfs only.
import * as fs from "node:fs";
import * as path from "node:path";

import { DEFAULT_CAPABILITIES } from "@grove/common";
import { RuntimeError } from "./errors";

/** Linux capability numbers (linux/capability.h). */
export const CAPABILITIES: Readonly<Record<string, number>> = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  DAC_READ_SEARCH: 2,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  LINUX_IMMUTABLE: 9,
  NET_BIND_SERVICE: 10,
  NET_BROADCAST: 11,
  NET_ADMIN: 12,
  NET_RAW: 13,
  IPC_LOCK: 14,
  IPC_OWNER: 15,
  SYS_MODULE: 16,
  SYS_RAWIO: 17,
  SYS_CHROOT: 18,
  SYS_PTRACE: 19,
  SYS_PACCT: 20,
  SYS_ADMIN: 21,
  SYS_BOOT: 22,
  SYS_NICE: 23,
  SYS_RESOURCE: 24,
  SYS_TIME: 25,
  SYS_TTY_CONFIG: 26,
  MKNOD: 27,
  LEASE: 28,
  AUDIT_WRITE: 29,
  AUDIT_CONTROL: 30,
  SETFCAP: 31,
  MAC_OVERRIDE: 32,
  MAC_ADMIN: 33,
  SYSLOG: 34,
  WAKE_ALARM: 35,
  BLOCK_SUSPEND: 36,
  AUDIT_READ: 37,
  PERFMON: 38,
  BPF: 39,
  CHECKPOINT_RESTORE: 40,
};

// Docker's default capability set: one list, @grove/api's, which the namespace
// policy checks against too (re-exported: the agent's own modules import it from here).
export { DEFAULT_CAPABILITIES };

export const RLIMITS: Readonly<Record<string, number>> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

function invalid(message: string): never {
  throw new RuntimeError("INVALID_SPEC", message);
}

/** "CAP_NET_ADMIN" | "net_admin" -> "NET_ADMIN"; "ALL" stays. */
function capName(field: string, name: unknown): string {
  if (typeof name !== "string") invalid(`${field}: capability names must be strings`);
  const n = name.toUpperCase().replace(/^CAP_/, "");
  if (n !== "ALL" && CAPABILITIES[n] === undefined) invalid(`${field}: unknown capability ${JSON.stringify(name)}`);
  return n;
}

/** The capability set root keeps: Docker's defaults, then drop, then add ("ALL" allowed in both). */
export function capabilitySet(add: readonly string[] = [], drop: readonly string[] = []): string[] {
  const adds = add.map((c) => capName("capabilities.add", c));
  const drops = drop.map((c) => capName("capabilities.drop", c));
  let set = new Set<string>(drops.includes("ALL") ? [] : DEFAULT_CAPABILITIES);
  for (const d of drops) set.delete(d);
  if (adds.includes("ALL")) set = new Set(Object.keys(CAPABILITIES));
  for (const a of adds) if (a !== "ALL") set.add(a);
  return [...set].sort((a, b) => CAPABILITIES[a]! - CAPABILITIES[b]!);
}

/** Capability names -> bit mask as a decimal string (it may not fit a double). */
export function capabilityMask(names: readonly string[]): string {
  let mask = 0n;
  for (const n of names) mask |= 1n << BigInt(CAPABILITIES[capName("capabilities", n)] ?? 0);
  return mask.toString();
}

export interface Rlimit {
  /** RLIMIT_NOFILE etc. */
  type: string;
  soft: number;
  hard: number;
}

export function rlimitNumber(r: Rlimit, i: number): number {
  const n = RLIMITS[r.type];
  if (n === undefined) invalid(`rlimits[${i}].type: unknown rlimit ${JSON.stringify(r.type)}`);
  for (const k of ["soft", "hard"] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 0) invalid(`rlimits[${i}].${k} must be a non-negative integer`);
  }
  if (r.soft > r.hard) invalid(`rlimits[${i}]: soft ${r.soft} is above hard ${r.hard}`);
  return n;
}

/** The most bytes of a root's /etc/passwd or /etc/group the agent reads. */
export const USER_DB_MAX_BYTES = 1024 * 1024;

/**
 * Docker's RLIMIT_NOFILE on a systemd host (what dockerd and containerd have
 * and their containers inherit): soft 1024, hard 524288.
 */
export const DEFAULT_NOFILE = { soft: 1024, hard: 524288 } as const;

/**
 * The RLIMIT_NOFILE of a container whose spec sets none: DEFAULT_NOFILE, its
 * hard limit lowered to this process's own when that is lower. The shim and
 * the exec helper inherit ours, and a process in a user namespace cannot raise
 * a hard limit (that takes CAP_SYS_RESOURCE in the host's namespace), so a
 * higher one would fail its start or exec.
 */
export function defaultNofile(limitsFile = "/proc/self/limits"): Rlimit {
  let hard: number = DEFAULT_NOFILE.hard;
  try {
    const m = /^Max open files\s+\S+\s+(\d+)/m.exec(fs.readFileSync(limitsFile, "utf8"));
    if (m !== null) hard = Math.min(hard, Number(m[1]));
  } catch {
    // No procfs: Docker's.
  }
  return { type: "RLIMIT_NOFILE", soft: Math.min(DEFAULT_NOFILE.soft, hard), hard };
}

/**
 * Opens root/rel resolving every symlink inside root (an absolute link target
 * means root-relative), like openat2(RESOLVE_IN_ROOT). Returns the file's
 * text, or undefined when it does not exist. The file itself is opened
 * O_NOFOLLOW and O_NONBLOCK (a symlink swapped in meanwhile or a FIFO is
 * not followed or waited on) and read only up to maxBytes: a bigger one is
 * refused naming the file and the limit.
 */
export function readFileInRoot(root: string, rel: string, maxBytes = USER_DB_MAX_BYTES): string | undefined {
  const parts = rel.split("/").filter((p) => p !== "" && p !== ".");
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const host = path.join(root, ...resolved, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(host);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) invalid(`too many symlinks resolving ${rel} in ${root}`);
      const target = fs.readlinkSync(host);
      if (target.startsWith("/")) resolved.length = 0;
      parts.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
      continue;
    }
    resolved.push(part);
    if (parts.length === 0) {
      if (!st.isFile()) return undefined;
      return readCapped(host, maxBytes);
    }
    if (!st.isDirectory()) return undefined;
  }
  return undefined;
}

function readCapped(file: string, maxBytes: number): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return undefined;
    const tooBig = () => invalid(`${file} is larger than the ${maxBytes}-byte limit for user and group files`);
    if (st.size > maxBytes) tooBig();
    // It may grow after the fstat: read one byte more than it had to notice.
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    while (n < buf.length) {
      const got = fs.readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    if (n > maxBytes) tooBig();
    return buf.subarray(0, n).toString("utf8");
  } finally {
    fs.closeSync(fd);
  }
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups: the user's memberships in /etc/group plus additional ones. */
  groups: number[];
}

const ID = /^\d{1,10}$/;

function parseDb(text: string | undefined): string[][] {
  return (text ?? "")
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.split(":"));
}

/**
 * "name" | "uid" with an optional ":group" | ":gid", looked up in the
 * rootfs's /etc/passwd and /etc/group. A numeric uid missing from passwd
 * runs with gid = the given gid or 0 (as Docker does).
 */
export function resolveUser(rootfs: string, user: string | undefined, additionalGids: number[] = []): ResolvedUser {
  for (const [i, g] of additionalGids.entries()) {
    if (!Number.isSafeInteger(g) || g < 0 || g > 0xfffffffe) invalid(`additionalGids[${i}] must be a valid gid`);
  }
  if (user === undefined || user === "") return { uid: 0, gid: 0, groups: [...new Set(additionalGids)] };
  const m = /^([^:]+)(?::([^:]+))?$/.exec(user);
  if (!m) invalid(`user ${JSON.stringify(user)} must be "name", "uid", "name:group" or "uid:gid"`);
  const [, u, g] = m;
  const passwd = parseDb(readFileInRoot(rootfs, "/etc/passwd"));
  const group = parseDb(readFileInRoot(rootfs, "/etc/group"));

  let uid: number;
  let gid: number | undefined;
  let name: string | undefined;
  const byName = passwd.find((e) => e[0] === u);
  if (ID.test(u!)) {
    uid = Number(u);
    const entry = passwd.find((e) => e[2] === u);
    if (entry) {
      gid = Number(entry[3]);
      name = entry[0];
    }
  } else if (byName) {
    uid = Number(byName[2]);
    gid = Number(byName[3]);
    name = byName[0];
  } else {
    invalid(`user: no user ${JSON.stringify(u)} in ${rootfs}/etc/passwd`);
  }
  if (g !== undefined) {
    if (ID.test(g)) gid = Number(g);
    else {
      const entry = group.find((e) => e[0] === g);
      if (!entry) invalid(`user: no group ${JSON.stringify(g)} in ${rootfs}/etc/group`);
      gid = Number(entry[2]);
    }
  }
  gid ??= 0;
  if (!Number.isSafeInteger(uid) || uid > 0xfffffffe || !Number.isSafeInteger(gid) || gid > 0xfffffffe) {
    invalid(`user ${JSON.stringify(user)} resolves to an invalid uid/gid`);
  }
  const groups = new Set<number>();
  if (name !== undefined) {
    for (const e of group) if ((e[3] ?? "").split(",").includes(name) && ID.test(e[2] ?? "")) groups.add(Number(e[2]));
  }
  for (const x of additionalGids) groups.add(x);
  return { uid, gid, groups: [...groups].sort((a, b) => a - b) };
}
