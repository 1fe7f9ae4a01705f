// An OCI bundle -> a Grove ContainerSpec, for the TypeScript grove-runtime.
// config.json itself is read by Grove's one OCI front end, the C reader the
// static grove-runtime uses (agent/native/src/oci_config.c, reached through
// the addon's readOciBundle): the same fields are refused there with the same
// messages. What is left here is the translation into a ContainerSpec and the
// things this command line does not do that the C one does (device rules beyond
// deny-all, a CFS period other than 100 ms, capability sets that differ, and
// the fields the reader lists in staticOnly: oomScoreAdj, umask, sysctls, ...).
import * as path from "node:path";

import type { OciBundle } from "../runtime/native-binding";
import { CAPABILITIES, RLIMITS } from "../runtime/security";
import type { ContainerSpec } from "../runtime/types";

export class OciConfigError extends Error {
  override readonly name = "OciConfigError";
}

function fail(field: string, message: string): never {
  throw new OciConfigError(`config.json ${field}: ${message}`);
}

const CAPABILITY_NAMES = new Map(Object.entries(CAPABILITIES).map(([name, n]) => [n, name]));
const RLIMIT_NAMES = new Map(Object.entries(RLIMITS).map(([name, n]) => [n, name]));

/** runc spec's one device rule, deny all: Grove's own allow list after it is what it asks for. */
const DENY_ALL = "a *:* rwm";

/** The capability names of a decimal mask. */
function capabilityNames(mask: string): string[] {
  const bits = BigInt(mask);
  return [...CAPABILITY_NAMES].filter(([n]) => (bits >> BigInt(n)) & 1n).map(([, name]) => name);
}

export function bundleToSpec(b: OciBundle, id: string, logPath: string): ContainerSpec {
  const res = b.resources;
  b.resources.devices.forEach((d, k) => {
    if (d.allow || d.rule !== DENY_ALL) {
      fail(
        `linux.resources.devices[${k}]`,
        "the TypeScript grove-runtime applies Grove's device allow list only (bin/grove-runtime applies rules)",
      );
    }
  });
  if (res.cpuQuotaUs > 0 && res.cpuPeriodUs !== 100_000) {
    fail("linux.resources.cpu.period", "the TypeScript grove-runtime applies a 100000 µs period only");
  }
  const cpuMillis =
    res.cpuMillis > 0
      ? res.cpuMillis
      : res.cpuShares > 0
        ? Math.max(1, Math.round((res.cpuShares * 1000) / 1024))
        : 1_000_000; // no CPU limit asked for: effectively none
  const proc = b.process;
  const env: Record<string, string> = {};
  for (const e of proc.env) {
    const eq = e.indexOf("=");
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  const spec: ContainerSpec = {
    id,
    rootfs: path.resolve(b.rootfs),
    command: proc.args,
    env,
    workingDir: proc.cwd,
    hostname: b.hostname,
    resources: {
      cpuMillis,
      memoryBytes: res.memoryBytes > 0 ? res.memoryBytes : 2 ** 52,
      pids: res.pids > 0 ? res.pids : 4_194_304,
    },
    logPath,
    user: `${proc.uid}:${proc.gid}`,
    additionalGids: proc.additionalGids,
    seccomp: proc.seccomp,
    rlimits: proc.rlimits.map((r) => ({ type: RLIMIT_NAMES.get(r.resource) ?? "", soft: r.soft, hard: r.hard })),
    annotations: { "grove.oci.annotations": b.annotations },
  };
  const only = b.staticOnly[0];
  if (only !== undefined) fail(only, "is applied by the static grove-runtime only (agent/bin/grove-runtime)");
  // NativeRuntime gives one set as bounding, permitted and effective and no inheritable set;
  // the static grove-runtime applies all five.
  const given = proc.capsGiven;
  for (const set of ["effective", "permitted"] as const) {
    const mask = given[set];
    if (mask !== null && mask !== proc.caps) {
      fail(`process.capabilities.${set}`, "must equal bounding (the TypeScript grove-runtime gives one set)");
    }
  }
  if (given.inheritable !== null && given.inheritable !== "0") {
    fail(
      "process.capabilities.inheritable",
      "must be empty (the TypeScript grove-runtime gives no inheritable capabilities)",
    );
  }
  if (proc.caps !== null) spec.capabilities = { drop: ["ALL"], add: capabilityNames(proc.caps) };
  if (b.readonlyRootfs) spec.readonlyRootfs = true;
  if (b.mounts.length > 0) spec.mounts = b.mounts.map((m) => ({ ...m, source: path.resolve(m.source) }));
  if (b.netnsPath !== null) spec.netnsPath = b.netnsPath;
  if (b.hostCgroupNamespace) spec.hostCgroupNamespace = true;
  // The bundle's owner prepared the rootfs for the mapping (runtime-spec): no idmapped mount.
  if (b.userNamespace !== null) spec.userNamespace = { ...b.userNamespace, idmapRootfs: false };
  return spec;
}
