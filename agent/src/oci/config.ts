// An OCI bundle's config.json (runtime-spec 1.0) -> a Grove ContainerSpec.
// What Grove cannot honour is refused with the field's path, never ignored
// silently; what Grove always does (its masked/read-only paths, its /proc,
// /dev, /sys mounts) is accepted when the config asks for the same.
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
    args?: string[];
    env?: string[];
    cwd?: string;
    capabilities?: { bounding?: string[]; effective?: string[]; permitted?: string[] };
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
    devices?: unknown[];
    cgroupsPath?: string;
  };
}

/** The mounts Grove sets up itself (as runc's default spec lists them). */
const BUILTIN_MOUNTS = new Set(["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]);
const SUPPORTED_NAMESPACES = new Set(["pid", "mount", "uts", "ipc", "network", "cgroup", "user"]);

function fail(field: string, message: string): never {
  throw new OciConfigError(`config.json ${field}: ${message}`);
}

export function bundleToSpec(config: OciConfig, bundle: string, id: string, logPath: string): ContainerSpec {
  if (config === null || typeof config !== "object") fail("(root)", "must be an object");
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

  for (const [i, m] of (config.mounts ?? []).entries()) {
    if (!BUILTIN_MOUNTS.has(path.posix.normalize(m.destination))) {
      fail(
        `mounts[${i}]`,
        `mounting ${m.destination} is not supported (Grove sets up ${[...BUILTIN_MOUNTS].join(", ")})`,
      );
    }
  }
  let netnsPath: string | undefined;
  let userns = false;
  for (const [i, ns] of (config.linux?.namespaces ?? []).entries()) {
    if (ns.type === "user") userns = true;
    if (!SUPPORTED_NAMESPACES.has(ns.type))
      fail(`linux.namespaces[${i}].type`, `${ns.type} namespaces are not supported`);
    if (ns.path !== undefined && ns.path !== "") {
      if (ns.type !== "network") fail(`linux.namespaces[${i}].path`, `joining a ${ns.type} namespace is not supported`);
      netnsPath = ns.path;
    }
  }

  const res = config.linux?.resources ?? {};
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

  const caps = proc.capabilities?.bounding ?? proc.capabilities?.effective;
  const capabilities =
    caps === undefined
      ? undefined
      : {
          drop: ["ALL"],
          add: caps.map((c, i) => {
            const n = c.toUpperCase().replace(/^CAP_/, "");
            if (CAPABILITIES[n] === undefined) fail(`process.capabilities.bounding[${i}]`, `unknown capability ${c}`);
            return n;
          }),
        };

  const uid = proc.user?.uid ?? 0;
  const gid = proc.user?.gid ?? 0;
  const spec: ContainerSpec = {
    id,
    rootfs: path.resolve(bundle, rootPath),
    command: proc.args,
    env,
    workingDir: proc.cwd ?? "/",
    hostname: config.hostname !== undefined && config.hostname !== "" ? config.hostname : id.slice(0, 63),
    resources: { cpuMillis, memoryBytes, pids },
    logPath,
    user: `${uid}:${gid}`,
    additionalGids: proc.user?.additionalGids ?? [],
    seccomp: config.linux?.seccomp !== undefined ? "default" : "unconfined",
    rlimits: (proc.rlimits ?? []).map((r) => ({ type: r.type, soft: r.soft, hard: r.hard })),
    annotations: { "grove.oci.annotations": JSON.stringify(config.annotations ?? {}) },
  };
  if (capabilities !== undefined) spec.capabilities = capabilities;
  if (config.root?.readonly === true) spec.readonlyRootfs = true;
  if (netnsPath !== undefined) spec.netnsPath = netnsPath;
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
