// An OCI bundle's config.json (runtime-spec 1.0) -> a Grove ContainerSpec.
// What Grove cannot honour is refused with the field's path, never ignored
// silently; what Grove always does (its masked/read-only paths, its /proc,
// /dev, /sys mounts) is accepted when the config asks for the same.
import * as fs from "node:fs";
import * as path from "node:path";

import { CAPABILITIES } from "../runtime/security";
import type { ContainerSpec } from "../runtime/types";

export class OciConfigError extends Error {
  override readonly name = "OciConfigError";
}

/** The parts of config.json Grove reads. */
export interface OciConfig {
  ociVersion?: string;
  process?: {
    terminal?: boolean;
    user?: { uid?: number; gid?: number; additionalGids?: number[] };
    capabilities?: {
      bounding?: string[];
      effective?: string[];
      permitted?: string[];
      inheritable?: string[];
      ambient?: string[];
    };
    args?: string[];
    env?: string[];
    cwd?: string;
    rlimits?: { type: string; hard: number; soft: number }[];
    noNewPrivileges?: boolean;
  };
  root?: { path?: string; readonly?: boolean };
  hostname?: string;
  mounts?: { destination: string; type?: string; source?: string; options?: string[] }[];
  annotations?: Record<string, string>;
  linux?: {
    namespaces?: { type: string; path?: string }[];
    uidMappings?: { containerID: number; hostID: number; size: number }[];
    gidMappings?: { containerID: number; hostID: number; size: number }[];
    resources?: {
      memory?: { limit?: number };
      cpu?: { quota?: number; period?: number; shares?: number };
      pids?: { limit?: number };
      devices?: unknown[];
    };
    seccomp?: unknown;
    maskedPaths?: string[];
    readonlyPaths?: string[];
    devices?: { path?: string }[];
    cgroupsPath?: string;
    sysctl?: Record<string, string>;
  };
}

/** The mounts Grove sets up itself (as runc's default spec lists them). */
const BUILTIN_MOUNTS = new Set(["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]);
const SUPPORTED_NAMESPACES = new Set(["pid", "mount", "uts", "ipc", "network", "user", "cgroup"]);
const REQUIRED_NAMESPACES = ["pid", "network", "ipc", "uts", "mount"];
/** What the core always does (container.c): a bundle may ask for these, not for others. */
const GROVE_MASKED = new Set([
  "/proc/asound",
  "/proc/acpi",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
]);
/** The core also masks /sys/devices/system/cpu/cpu<N>/thermal_throttle for every N. */
const THERMAL_THROTTLE = /^\/sys\/devices\/system\/cpu\/cpu\d+\/thermal_throttle$/;
const GROVE_READONLY = new Set(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
const GROVE_DEVICES = new Set(["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]);
const BIND_OPTIONS = new Set(["bind", "rbind", "ro", "rw", "private", "rprivate"]);
/** The fields grove-runtime honours, per object; any other key is refused by name. */
const KNOWN_KEYS: [string, (c: OciConfig) => unknown, string[]][] = [
  ["", (c) => c, ["ociVersion", "process", "root", "hostname", "mounts", "annotations", "linux"]],
  [
    "process.",
    (c) => c.process,
    ["terminal", "user", "args", "env", "cwd", "capabilities", "rlimits", "noNewPrivileges"],
  ],
  ["process.user.", (c) => c.process?.user, ["uid", "gid", "additionalGids"]],
  [
    "linux.",
    (c) => c.linux,
    [
      "namespaces",
      "uidMappings",
      "gidMappings",
      "resources",
      "cgroupsPath",
      "maskedPaths",
      "readonlyPaths",
      "devices",
      "sysctl",
      "seccomp",
    ],
  ],
  ["linux.resources.", (c) => c.linux?.resources, ["memory", "cpu", "pids", "devices"]],
  ["linux.resources.memory.", (c) => c.linux?.resources?.memory, ["limit"]],
  ["linux.resources.cpu.", (c) => c.linux?.resources?.cpu, ["quota", "period", "shares"]],
  ["linux.resources.pids.", (c) => c.linux?.resources?.pids, ["limit"]],
];

function fail(field: string, message: string): never {
  throw new OciConfigError(`config.json ${field}: ${message}`);
}

/** HOME from the rootfs's /etc/passwd for uid, "/" when it has none (as runc). */
function homeOf(rootfs: string, uid: number): string {
  let text = "";
  try {
    text = fs.readFileSync(path.join(rootfs, "etc", "passwd"), "utf8");
  } catch {
    return "/";
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 6 && f[2] !== "" && Number(f[2]) === uid) return f[5]!;
  }
  return "/";
}

/** A capability list as names without CAP_ (sorted); undefined when absent. */
function capSet(caps: Record<string, string[] | undefined>, set: string): string[] | undefined {
  const list = caps[set];
  if (list === undefined) return undefined;
  return [
    ...new Set(
      list.map((c, i) => {
        const n = String(c).toUpperCase().replace(/^CAP_/, "");
        if (CAPABILITIES[n] === undefined) fail(`process.capabilities.${set}[${i}]`, `unknown capability ${c}`);
        return n;
      }),
    ),
  ].sort();
}

export function bundleToSpec(config: OciConfig, bundle: string, id: string, logPath: string): ContainerSpec {
  if (config === null || typeof config !== "object") fail("(root)", "must be an object");
  for (const [prefix, get, keys] of KNOWN_KEYS) {
    const o = get(config);
    if (o === null || typeof o !== "object" || Array.isArray(o)) continue;
    for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${prefix}${k}`, "is not supported by grove-runtime");
  }
  const proc = config.process;
  if (proc === undefined) fail("process", "is required");
  if (proc.terminal === true) fail("process.terminal", "a terminal is not supported; set it to false");
  if (!Array.isArray(proc.args) || proc.args.length === 0) fail("process.args", "must be a non-empty array");
  const rootPath = config.root?.path;
  if (typeof rootPath !== "string" || rootPath === "") fail("root.path", "is required");

  const env: Record<string, string> = {};
  (proc.env ?? []).forEach((e, i) => {
    const eq = typeof e === "string" ? e.indexOf("=") : -1;
    if (eq <= 0) fail(`process.env[${i}]`, `${JSON.stringify(e)} is not KEY=value`);
    env[e.slice(0, eq)] = e.slice(eq + 1);
  });

  const mounts: { source: string; destination: string; readonly: boolean }[] = [];
  for (const [i, m] of (config.mounts ?? []).entries()) {
    if (typeof m.destination === "string" && BUILTIN_MOUNTS.has(m.destination)) continue; // Grove sets it up
    if (typeof m.destination !== "string" || !m.destination.startsWith("/")) {
      fail(`mounts[${i}].destination`, "must be an absolute path");
    }
    const options = m.options ?? [];
    if (m.type !== "bind" && !options.includes("bind") && !options.includes("rbind")) {
      fail(
        `mounts[${i}]`,
        `mounting ${m.destination} (type ${m.type ?? "none"}) is not supported: grove-runtime makes bind mounts and its own /proc, /dev, /sys`,
      );
    }
    let readonly = false;
    options.forEach((o, k) => {
      if (!BIND_OPTIONS.has(o))
        fail(`mounts[${i}].options[${k}]`, `${o} is not supported on a bind mount (bind, rbind, ro, rw)`);
      if (o === "ro") readonly = true;
      if (o === "rw") readonly = false;
    });
    if (typeof m.source !== "string" || m.source === "") fail(`mounts[${i}].source`, "is required for a bind mount");
    mounts.push({ source: path.resolve(bundle, m.source), destination: m.destination, readonly });
  }
  const linux = config.linux ?? {};
  if (linux.sysctl !== undefined && Object.keys(linux.sysctl).length > 0) {
    fail("linux.sysctl", "setting sysctls is not supported by grove-runtime");
  }
  if (linux.seccomp !== undefined) {
    fail(
      "linux.seccomp",
      "a bundle's own seccomp profile is not supported; without linux.seccomp grove-runtime applies Grove's default filter when the annotation org.grove.seccomp is \"default\", none otherwise",
    );
  }
  (linux.maskedPaths ?? []).forEach((p, k) => {
    if (!GROVE_MASKED.has(p) && !THERMAL_THROTTLE.test(p)) {
      fail(`linux.maskedPaths[${k}]`, `${p} is not one of the paths Grove masks (it always masks its fixed list)`);
    }
  });
  (linux.readonlyPaths ?? []).forEach((p, k) => {
    if (!GROVE_READONLY.has(p)) {
      fail(
        `linux.readonlyPaths[${k}]`,
        `${p} is not one of the paths Grove makes read-only (it always protects its fixed list)`,
      );
    }
  });
  (linux.devices ?? []).forEach((d, k) => {
    if (!GROVE_DEVICES.has(String(d?.path))) {
      fail(
        `linux.devices[${k}]`,
        `creating ${d?.path} is not supported (Grove's /dev has null, zero, full, random, urandom, tty, ptmx, pts, shm, mqueue)`,
      );
    }
  });
  for (const t of REQUIRED_NAMESPACES) {
    if (!(linux.namespaces ?? []).some((n) => n.type === t)) {
      fail(
        "linux.namespaces",
        `has no ${t} namespace; grove-runtime always gives a container its own pid, ipc, uts and mount namespaces and a new or joined network namespace`,
      );
    }
  }
  let netnsPath: string | undefined;
  let userns = false;
  let cgroupns = false;
  for (const [i, ns] of (config.linux?.namespaces ?? []).entries()) {
    if (ns.type === "user") userns = true;
    if (ns.type === "cgroup") cgroupns = true;
    if (!SUPPORTED_NAMESPACES.has(ns.type))
      fail(`linux.namespaces[${i}].type`, `${ns.type} namespaces are not supported`);
    if (ns.path !== undefined && ns.path !== "") {
      if (ns.type !== "network") fail(`linux.namespaces[${i}].path`, `joining a ${ns.type} namespace is not supported`);
      netnsPath = ns.path;
    }
  }

  const res = config.linux?.resources ?? {};
  // Grove's own allow list after deny-all is what runc spec's one rule (deny all) asks for; the
  // C grove-runtime applies further rules, this one does not.
  (res.devices ?? []).forEach((d, k) => {
    const r = d as { allow?: boolean; type?: string; major?: number; minor?: number; access?: string };
    const denyAll =
      r.allow === false &&
      (r.type === undefined || r.type === "a") &&
      r.major === undefined &&
      r.minor === undefined &&
      (r.access === undefined || r.access === "rwm");
    if (!denyAll) {
      fail(
        `linux.resources.devices[${k}]`,
        "the TypeScript grove-runtime applies Grove's device allow list only (bin/grove-runtime applies rules)",
      );
    }
  });
  if (res.cpu?.quota !== undefined && res.cpu.quota > 0 && (res.cpu.period ?? 100_000) !== 100_000) {
    fail("linux.resources.cpu.period", "the TypeScript grove-runtime applies a 100000 µs period only");
  }
  const quota = res.cpu?.quota;
  const period = res.cpu?.period ?? 100_000;
  const cpuMillis =
    quota !== undefined && quota > 0
      ? Math.max(1, Math.round((quota * 1000) / period))
      : res.cpu?.shares !== undefined
        ? Math.max(1, Math.round((res.cpu.shares * 1000) / 1024))
        : 1_000_000; // no CPU limit asked for: effectively none
  const memoryBytes = res.memory?.limit !== undefined && res.memory.limit > 0 ? res.memory.limit : 2 ** 52;
  const pids = res.pids?.limit !== undefined && res.pids.limit > 0 ? res.pids.limit : 4_194_304;

  // The core gives one set as bounding, permitted and effective and leaves
  // inheritable (hence ambient) empty: other sets are refused, not run differently.
  const sets = (proc.capabilities ?? {}) as Record<string, string[] | undefined>;
  const eff = capSet(sets, "effective");
  const prm = capSet(sets, "permitted");
  const inh = capSet(sets, "inheritable");
  capSet(sets, "ambient"); // raised only from inheritable: empty, as with runc
  const caps = capSet(sets, "bounding") ?? eff;
  const same = (a: string[] | undefined): boolean => a === undefined || a.join() === caps?.join();
  if (!same(eff)) fail("process.capabilities.effective", "must equal bounding (grove-runtime gives one set)");
  if (!same(prm)) fail("process.capabilities.permitted", "must equal bounding (grove-runtime gives one set)");
  if (inh !== undefined && inh.length > 0) {
    fail("process.capabilities.inheritable", "must be empty (grove-runtime gives no inheritable capabilities)");
  }
  const capabilities = caps === undefined ? undefined : { drop: ["ALL"], add: caps };

  const uid = proc.user?.uid ?? 0;
  const rootfs = path.resolve(bundle, rootPath);
  if (env.HOME === undefined) env.HOME = homeOf(rootfs, uid);
  const gid = proc.user?.gid ?? 0;
  const spec: ContainerSpec = {
    id,
    rootfs,
    command: proc.args,
    env,
    workingDir: proc.cwd ?? "/",
    hostname: config.hostname !== undefined && config.hostname !== "" ? config.hostname : id.slice(0, 63),
    resources: { cpuMillis, memoryBytes, pids },
    logPath,
    user: `${uid}:${gid}`,
    additionalGids: proc.user?.additionalGids ?? [],
    seccomp: config.annotations?.["org.grove.seccomp"] === "default" ? "default" : "unconfined",
    rlimits: (proc.rlimits ?? []).map((r) => ({ type: r.type, soft: r.soft, hard: r.hard })),
    annotations: { "grove.oci.annotations": JSON.stringify(config.annotations ?? {}) },
  };
  if (capabilities !== undefined) spec.capabilities = capabilities;
  if (config.root?.readonly === true) spec.readonlyRootfs = true;
  if (mounts.length > 0) spec.mounts = mounts;
  if (netnsPath !== undefined) spec.netnsPath = netnsPath;
  // runtime-spec: a namespace the bundle does not list is the runtime's.
  if (!cgroupns) spec.hostCgroupNamespace = true;
  const maps = (field: "uidMappings" | "gidMappings") =>
    (config.linux?.[field] ?? []).map((m, i) => {
      if (m === null || typeof m !== "object") fail(`linux.${field}[${i}]`, "must be an object");
      return { containerId: m.containerID, hostId: m.hostID, size: m.size };
    });
  if (userns) {
    const uidMap = maps("uidMappings");
    const gidMap = maps("gidMappings");
    if (uidMap.length === 0 || gidMap.length === 0) {
      fail("linux.uidMappings and gidMappings", "required with a user namespace");
    }
    // The bundle's owner prepared the rootfs for the mapping (runtime-spec): no idmapped mount.
    spec.userNamespace = { uidMap, gidMap, idmapRootfs: false };
  } else if (config.linux?.uidMappings !== undefined || config.linux?.gidMappings !== undefined) {
    fail("linux.uidMappings", "needs a user namespace in linux.namespaces");
  }
  return spec;
}
