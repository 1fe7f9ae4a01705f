// A runtime handler instance's OCI bundle: the ContainerSpec written as the
// config.json an OCI runtime (runc, crun, grove-runtime) runs, with the same
// settings the native path gives the container (Docker's capabilities,
// masked and read-only paths and seccomp profile, Grove's /dev, the cgroup
// limits under the runtime's own cgroup tree, the CNI network namespace
// joined by path). root.path is the rootfs the agent prepared (an absolute
// path: the bundle directory holds only config.json, the runtime's log and
// the pid file).
import * as fs from "node:fs";
import * as path from "node:path";

import { mountinfoOnce, readMountinfoSync } from "../mountinfo";
import { RuntimeError } from "./errors";
import { sourceMountFlags } from "./mount-flags";
import { capabilitySet, defaultNofile, RLIMITS, resolveUser } from "./security";
import { envList } from "./spec-to-shim";
import type { CgroupRef } from "./shim-protocol";
import type { ContainerSpec } from "./types";

/** Grove's default seccomp profile, in Docker's format (agent/native/seccomp/default.json). */
export const SECCOMP_PROFILE_PATH = path.resolve(__dirname, "../../native/seccomp/default.json");

/** Docker's masked and read-only paths, as the native core applies them (container.c). */
const MASKED_PATHS = [
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
];
const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** Tells grove-runtime that its caller reaps the container's init (native/src/oci_reaped.h). */
export const REAPER_ANNOTATION = "org.grove.runtime.reaper";

/** The CFS period the native path uses (cgroup.c CFS_PERIOD_US). */
const CFS_PERIOD_US = 100_000;

/** The runtime's cgroups: the container's cgroupsPath is /<parent>/<id>, where the native path puts it. */
export type BundlePlacement = CgroupRef;

interface DockerRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
  includes?: { caps?: string[]; arches?: string[] };
  excludes?: { caps?: string[]; arches?: string[] };
}

/** Docker's names for this machine's architecture (a profile's includes.arches). */
function dockerArch(): string {
  return process.arch === "x64" ? "amd64" : process.arch;
}

/**
 * Grove's default profile resolved for one capability set and this
 * architecture into the OCI form (linux.seccomp): the rules whose
 * includes/excludes do not hold are left out, as Docker does.
 */
export function ociSeccomp(caps: readonly string[], profilePath = SECCOMP_PROFILE_PATH): Record<string, unknown> {
  const profile = JSON.parse(fs.readFileSync(profilePath, "utf8")) as {
    defaultAction: string;
    defaultErrnoRet?: number;
    archMap: { architecture: string; subArchitectures: string[] }[];
    syscalls: DockerRule[];
  };
  const have = new Set(caps.map((c) => (c.startsWith("CAP_") ? c : `CAP_${c}`)));
  const arch = dockerArch();
  const holds = (r: DockerRule): boolean =>
    (r.includes?.caps ?? []).every((c) => have.has(c)) &&
    !(r.excludes?.caps ?? []).some((c) => have.has(c)) &&
    (r.includes?.arches === undefined || r.includes.arches.includes(arch)) &&
    !(r.excludes?.arches ?? []).includes(arch);
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures: profile.archMap.flatMap((a) => [a.architecture, ...a.subArchitectures]),
    syscalls: profile.syscalls.filter(holds).map((r) => ({
      names: r.names,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args !== undefined ? { args: r.args } : {}),
    })),
  };
}

/** The rlimits of the spec, with the native path's default RLIMIT_NOFILE. */
function rlimits(spec: ContainerSpec): { type: string; soft: number; hard: number }[] {
  const given = spec.rlimits ?? [];
  for (const [i, r] of given.entries()) {
    if (RLIMITS[r.type] === undefined) {
      throw new RuntimeError("INVALID_SPEC", `rlimits[${i}].type ${r.type} is not an RLIMIT_* name`);
    }
  }
  if (given.some((r) => r.type === "RLIMIT_NOFILE")) return given;
  const d = defaultNofile();
  return [...given, { type: "RLIMIT_NOFILE", soft: d.soft, hard: d.hard }];
}

/** Whether v1 swap accounting is on (memory.memsw.*): runc refuses a swap limit without it. */
function hasSwapAccounting(at: BundlePlacement): boolean {
  return at.mode === "v1" && fs.existsSync(path.join(at.root, "memory", "memory.memsw.limit_in_bytes"));
}

/**
 * The OCI runtime configuration (config.json) of a validated spec. `readMountinfo`: the mount
 * table's reader (read at most once, only for read-only volumes).
 */
export function ociConfig(
  spec: ContainerSpec,
  at: BundlePlacement,
  readMountinfo: () => string = readMountinfoSync,
): Record<string, unknown> {
  const caps = capabilitySet(spec.capabilities?.add ?? [], spec.capabilities?.drop ?? []).map((c) =>
    c.startsWith("CAP_") ? c : `CAP_${c}`,
  );
  const user = resolveUser(spec.usersFrom ?? spec.rootfs, spec.user, spec.additionalGids ?? []);
  const { cpuMillis, memoryBytes, pids } = spec.resources;
  const userns = spec.userNamespace;
  const mountinfo = mountinfoOnce(readMountinfo);
  const namespaces: { type: string; path?: string }[] = [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
    spec.netnsPath !== undefined ? { type: "network", path: spec.netnsPath } : { type: "network" },
    ...(spec.hostCgroupNamespace === true ? [] : [{ type: "cgroup" }]),
    ...(userns !== undefined ? [{ type: "user" }] : []),
  ];
  const idMaps = (maps: { containerId: number; hostId: number; size: number }[]) =>
    maps.map((m) => ({ containerID: m.containerId, hostID: m.hostId, size: m.size }));
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.groups },
      args: spec.command,
      env: envList(spec.env),
      cwd: spec.workingDir ?? "/",
      // One set as bounding, permitted and effective, as the native path.
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: rlimits(spec),
      noNewPrivileges: true,
    },
    root: { path: spec.rootfs, readonly: spec.readonlyRootfs === true },
    hostname: spec.hostname,
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      // As the native path binds them: the source's submounts only with `recursive`
      // (a read-only rbind leaves its submounts writable), every mount private; a read-only
      // one keeps its source's nosuid/nodev/noexec (the runtime's remount clears what it is
      // not told: mount-flags.ts).
      ...(spec.mounts ?? []).map((m) => ({
        destination: m.destination,
        type: "bind",
        source: m.source,
        options: [
          m.recursive === true ? "rbind" : "bind",
          "rprivate",
          ...(m.readonly === true ? ["ro", ...sourceMountFlags(m.source, mountinfo)] : ["rw"]),
        ],
      })),
    ],
    linux: {
      cgroupsPath: `/${at.parent}/${spec.id}`,
      resources: {
        devices: [{ allow: false, access: "rwm" }],
        memory: { limit: memoryBytes, ...(hasSwapAccounting(at) ? { swap: memoryBytes } : {}) },
        cpu: {
          quota: cpuMillis * (CFS_PERIOD_US / 1000),
          period: CFS_PERIOD_US,
          shares: Math.max(2, Math.floor((cpuMillis * 1024) / 1000)),
        },
        pids: { limit: pids },
      },
      namespaces,
      // The native path's (runc's default is rslave): no host mount reaches the container.
      rootfsPropagation: "rprivate",
      ...(userns !== undefined ? { uidMappings: idMaps(userns.uidMap), gidMappings: idMaps(userns.gidMap) } : {}),
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      ...(spec.seccomp === "unconfined" ? {} : { seccomp: ociSeccomp(caps) }),
    },
    // The shim reaps the init itself (it is a child subreaper): grove-runtime then keeps no
    // monitor of its own (runc and crun never do, and ignore the annotation).
    annotations: { ...(spec.annotations ?? {}), [REAPER_ANNOTATION]: "caller" },
  };
}

/** Writes <dir>/config.json (the directory is made); returns dir. */
export async function writeBundle(dir: string, spec: ContainerSpec, at: BundlePlacement): Promise<string> {
  const config = ociConfig(spec, at);
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.promises.writeFile(path.join(dir, "config.json"), JSON.stringify(config, null, 2), { mode: 0o600 });
  return dir;
}
