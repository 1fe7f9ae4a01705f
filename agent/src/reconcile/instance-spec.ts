// From the control plane's InstanceSpec to what the runtime and the
// networking are asked for: the container spec, its limits, its network
// request and the annotations an agent restart reads back. Pure functions.
import * as path from "node:path";
import type { InstanceSpec__Output, InstanceStatus } from "@grove/proto";
import type { ContainerResources, ContainerSpec } from "../runtime/types";
import type { EgressRule } from "../network/egress";
import type { InstanceNetwork, InstanceNetworkRequest } from "../network/manager";
import type { UsernsRange } from "./userns-pool";
import { StatusReason } from "./instance-status";

/** Container annotations the reconciler reads back after an agent restart. */
export const INSTANCE_ANNOTATION = "grove.instance";
export const NETWORK_ANNOTATION = "grove.network";
/** The host id range of a container in a user namespace (JSON UsernsRange). */
export const USERNS_ANNOTATION = "grove.userns";

/** Container ids are uids: the runtime accepts [A-Za-z0-9_.-]{1,64}. */
export const UID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** A single path component: not empty, not "." or "..", no separator or NUL. */
export function isPlainName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !/[/\\\0]/.test(name);
}

/**
 * Why a spec cannot be started at all (its uid or rootfs would not be a
 * plain path component on the host), or undefined.
 */
export function specProblem(
  spec: InstanceSpec__Output,
  rootfsDir: string,
): { reason: string; message: string } | undefined {
  if (!UID_PATTERN.test(spec.uid)) {
    return {
      reason: StatusReason.InvalidUid,
      message: `uid ${JSON.stringify(spec.uid)} is not 1..64 characters of [A-Za-z0-9_.-]`,
    };
  }
  if (!spec.image && !isPlainName(spec.rootfs)) {
    return {
      reason: StatusReason.InvalidRootfs,
      message: `rootfs ${JSON.stringify(spec.rootfs)} must be the plain name of a directory in ${rootfsDir}`,
    };
  }
  return undefined;
}

/**
 * The container spec of an instance before any prepare step ran: its root is
 * the rootfs directory itself (the root steps point it elsewhere), no network
 * namespace, no user namespace, no annotations.
 */
export function containerSpecOf(
  spec: InstanceSpec__Output,
  dirs: { rootfsDir: string; logDir: string },
): ContainerSpec {
  const containerSpec: ContainerSpec = {
    id: spec.uid,
    rootfs: path.join(dirs.rootfsDir, spec.rootfs),
    command: [...spec.command],
    env: { ...spec.env },
    hostname: spec.hostname || spec.name,
    resources: resourcesOf(spec),
    logPath: path.join(dirs.logDir, `${spec.uid}.log`),
  };
  if (spec.workingDir) containerSpec.workingDir = spec.workingDir;
  if (spec.runtimeClass) containerSpec.runtimeClass = spec.runtimeClass;
  const sec = spec.security;
  if (sec) {
    if (sec.user) containerSpec.user = sec.user;
    if (sec.capabilitiesAdd.length > 0 || sec.capabilitiesDrop.length > 0) {
      containerSpec.capabilities = { add: [...sec.capabilitiesAdd], drop: [...sec.capabilitiesDrop] };
    }
    if (sec.seccomp === "default" || sec.seccomp === "unconfined") containerSpec.seccomp = sec.seccomp;
    if (sec.readOnlyRootFilesystem) containerSpec.readonlyRootfs = true;
  }
  return containerSpec;
}

/** What the container records for an agent restart: the instance, its address and ports, its id range. */
export function instanceAnnotations(
  spec: InstanceSpec__Output,
  network?: Pick<InstanceNetwork, "ip" | "ports">,
  usernsRange?: UsernsRange,
): Record<string, string> {
  return {
    [INSTANCE_ANNOTATION]: JSON.stringify(spec),
    ...(network ? { [NETWORK_ANNOTATION]: JSON.stringify({ ip: network.ip, ports: network.ports }) } : {}),
    ...(usernsRange ? { [USERNS_ANNOTATION]: JSON.stringify(usernsRange) } : {}),
  };
}

/** What a container's annotations recorded (hasNetwork: it got one); undefined when absent or unreadable. */
export function readAnnotations(
  annotations: Record<string, string>,
):
  | { spec: InstanceSpec__Output; net: { ip?: string; ports?: InstanceStatus["ports"] }; hasNetwork: boolean }
  | undefined {
  const raw = annotations[INSTANCE_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    const spec = JSON.parse(raw) as InstanceSpec__Output;
    const rawNet = annotations[NETWORK_ANNOTATION];
    const net = rawNet !== undefined ? (JSON.parse(rawNet) as { ip?: string; ports?: InstanceStatus["ports"] }) : {};
    return { spec, net, hasNetwork: rawNet !== undefined };
  } catch {
    return undefined;
  }
}

/** The limits an instance spec asks for. */
export function resourcesOf(spec: InstanceSpec__Output): ContainerResources {
  return {
    cpuMillis: Number(spec.resources?.cpuMillis ?? 0),
    memoryBytes: Number(spec.resources?.memoryBytes ?? 0),
    pids: Number(spec.resources?.pids ?? 0),
  };
}

/** Comparing and printing limits: @grove/common's, as the control plane does. */
export { formatLimits, sameLimits } from "@grove/common";

/** What the instance asks of the node's networking: its ports and egress rules. */
export function networkRequestOf(spec: InstanceSpec__Output): InstanceNetworkRequest {
  return {
    uid: spec.uid,
    ports: (spec.ports ?? []).map((p) => ({
      name: p.name,
      protocol: p.protocol === "udp" ? "udp" : "tcp",
      containerPort: p.containerPort,
      hostPort: p.hostPort,
    })),
    egress: (spec.egress ?? []).map((r): EgressRule => {
      const protocol = r.protocol === "tcp" || r.protocol === "udp" || r.protocol === "icmp" ? r.protocol : "all";
      return r.portFirst > 0
        ? { cidr: r.cidr, protocol, ports: { first: r.portFirst, last: r.portLast || r.portFirst } }
        : { cidr: r.cidr, protocol };
    }),
  };
}
