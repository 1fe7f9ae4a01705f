// ContainerSpec -> the typed configuration of grove-shim and the exec helper
// (shim-protocol.ts). Security settings are resolved here, in TypeScript:
// capability names to a mask, rlimit names to numbers (RLIMIT_NOFILE
// defaults to defaultNofile()), the user to ids read from the rootfs.
import { RuntimeError } from "./errors";
import type { CgroupRef, ProcessConfig, ShimConfig, ShimHandler } from "./shim-protocol";
import { capabilityMask, capabilitySet, defaultNofile, RLIMITS, resolveUser, rlimitNumber } from "./security";
import type { ContainerSpec } from "./types";

/** A process's settings without its command and environment (what exec takes from the container). */
export type ProcessSecurity = Omit<ProcessConfig, "args" | "env">;

/** caps, seccomp, uid, gid, groups and rlimits of the spec (for spec.user). */
export function processSecurity(spec: ContainerSpec): ProcessSecurity {
  const caps = capabilitySet(spec.capabilities?.add ?? [], spec.capabilities?.drop ?? []);
  if (spec.seccomp !== undefined && spec.seccomp !== "default" && spec.seccomp !== "unconfined") {
    throw new RuntimeError(
      "INVALID_SPEC",
      `seccomp must be "default" or "unconfined", got ${JSON.stringify(spec.seccomp)}`,
    );
  }
  const user = resolveUser(spec.usersFrom ?? spec.rootfs, spec.user, spec.additionalGids ?? []);
  const given = spec.rlimits ?? [];
  const rlimits = given.map((r, i) => ({ resource: rlimitNumber(r, i), soft: r.soft, hard: r.hard }));
  if (!given.some((r) => r.type === "RLIMIT_NOFILE")) {
    const d = defaultNofile();
    rlimits.push({ resource: RLIMITS.RLIMIT_NOFILE!, soft: d.soft, hard: d.hard });
  }
  return {
    caps: capabilityMask(caps),
    seccomp: spec.seccomp ?? "default",
    uid: user.uid,
    gid: user.gid,
    groups: user.groups,
    rlimits,
  };
}

/** "KEY=value" strings of an environment object. */
export function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

export interface ShimPlacement {
  /** The container's state directory. */
  dir: string;
  cgroup: CgroupRef;
  logMaxBytes: number;
  /** OCI create: hold the init before execve until startCreated(). */
  hold: boolean;
  /** A runtime handler instance (runtime-handlers.ts); null: the native path. */
  handler?: ShimHandler | null;
}

/** grove-shim's configuration for a validated spec. */
export function shimConfig(spec: ContainerSpec, at: ShimPlacement): ShimConfig {
  const userns = spec.userNamespace;
  return {
    id: spec.id,
    rootfs: spec.rootfs,
    cwd: spec.workingDir ?? "/",
    hostname: spec.hostname,
    logPath: spec.logPath,
    logMaxBytes: at.logMaxBytes,
    dir: at.dir,
    cgroup: at.cgroup,
    netnsPath: spec.netnsPath ?? null,
    mounts: (spec.mounts ?? []).map((m) => ({
      source: m.source,
      destination: m.destination,
      readonly: m.readonly === true,
      recursive: m.recursive === true,
    })),
    readonlyRootfs: spec.readonlyRootfs === true,
    hostCgroupNamespace: spec.hostCgroupNamespace === true,
    userNamespace:
      userns === undefined
        ? null
        : { uidMap: userns.uidMap, gidMap: userns.gidMap, idmapRootfs: userns.idmapRootfs !== false },
    hold: at.hold,
    handler: at.handler ?? null,
    process: { ...processSecurity(spec), args: spec.command, env: envList(spec.env) },
  };
}
