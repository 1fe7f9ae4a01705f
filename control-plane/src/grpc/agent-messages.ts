// The agent protocol's messages and the API's objects, one into the other:
// an Instance into the InstanceSpec its agent is sent (desiredFor), an
// agent's status report into the Instance's status (applyReport), a Register
// into what node registration takes. Pure; the gateway calls these.
import {
  USERNS_DEFAULT_SIZE,
  isFinished,
  isFinishedState,
  parseDurationMs,
  type Instance,
  type InstanceState as ApiInstanceState,
  type InstanceStatus as ApiInstanceStatus,
} from "@grove/api";
import { sameLimits } from "@grove/common";
import type { DesiredInstances, InstanceSpec, InstanceStatus__Output, NodeInfo__Output } from "@grove/proto";
import type { NodeRegistrationInfo } from "../nodes/registration";
import { literalEnv, type EnvResolver } from "../secrets/env-resolver";
import { checksFor, lastCheckOf, readyOf } from "./check-messages";
import { deepEqual } from "../resources/repository";

/** An App's egress rule as the agent takes it ("8000-8999" -> 8000, 8999). */
function egressOf(r: NonNullable<Instance["spec"]["egress"]>[number]) {
  const [first, last] = (r.ports ?? "").split("-").map((x) => Number(x) || 0);
  return { cidr: r.cidr, protocol: r.protocol ?? "all", portFirst: first ?? 0, portLast: last ?? first ?? 0 };
}

const STATE_FROM_PROTO: Record<string, ApiInstanceState | undefined> = {
  PENDING: "Pending",
  STARTING: "Starting",
  RUNNING: "Running",
  EXITED: "Exited",
  FAILED: "Failed",
  OOM_KILLED: "OOMKilled",
};

/** The API's userNamespace (true, or an explicit range) as proto Security fields. */
function userNamespaceOf(u: NonNullable<Instance["spec"]["security"]>["userNamespace"]) {
  if (u === undefined || u === false) return {};
  if (u === true) return { userNamespace: { auto: true, hostUid: 0, hostGid: 0, size: 0 } };
  return {
    userNamespace: { auto: false, hostUid: u.hostUid, hostGid: u.hostGid, size: u.size ?? USERNS_DEFAULT_SIZE },
  };
}

function msToIso(ms: string | number): string | undefined {
  const n = Number(ms);
  return n > 0 ? new Date(n).toISOString() : undefined;
}

/**
 * The instances a node should run: bound to it and not finished. `env` turns
 * Secret references into values (only here, for this node); an instance whose
 * env cannot be resolved yet is left out.
 */
export function desiredFor(
  node: string,
  instances: readonly Instance[],
  env: EnvResolver = literalEnv,
): InstanceSpec[] {
  return instances
    .filter((i) => i.spec.nodeName === node && !isFinished(i))
    .sort((a, b) => (a.metadata.uid ?? "").localeCompare(b.metadata.uid ?? ""))
    .flatMap((i) => {
      const values = env(i);
      return values ? [specOf(i, values)] : [];
    });
}

function specOf(i: Instance, env: Record<string, string>): InstanceSpec {
  return {
    uid: i.metadata.uid ?? "",
    namespace: i.metadata.namespace ?? "default",
    name: i.metadata.name,
    app: i.spec.app,
    rootfs: i.spec.rootfs,
    command: i.spec.command,
    env,
    workingDir: i.spec.workingDir ?? (i.spec.image ? "" : "/"),
    resources: {
      cpuMillis: i.spec.resources.cpuMillis,
      memoryBytes: i.spec.resources.memoryBytes,
      pids: i.spec.resources.pids,
    },
    hostname: i.metadata.name,
    stopGraceSeconds: i.spec.stopGracePeriodSeconds,
    stopAfterMs: i.spec.disconnect?.stopAfter !== undefined ? parseDurationMs(i.spec.disconnect.stopAfter) : 0,
    ports: (i.spec.ports ?? []).map((p) => ({
      name: p.name,
      protocol: p.protocol ?? "tcp",
      containerPort: p.containerPort,
      hostPort: p.hostPort ?? 0,
    })),
    egress: (i.spec.egress ?? []).map(egressOf),
    ...(i.spec.security !== undefined
      ? {
          security: {
            user: i.spec.security.user ?? "",
            capabilitiesAdd: i.spec.security.capabilities?.add ?? [],
            capabilitiesDrop: i.spec.security.capabilities?.drop ?? [],
            seccomp: i.spec.security.seccomp ?? "",
            readOnlyRootFilesystem: i.spec.security.readOnlyRootFilesystem ?? false,
            ...userNamespaceOf(i.spec.security.userNamespace),
          },
        }
      : {}),
    ...(i.spec.runtimeClass !== undefined ? { runtimeClass: i.spec.runtimeClass } : {}),
    ...checksFor(i),
    ...(i.spec.image
      ? { image: i.spec.image, imagePullSecret: i.spec.imagePullSecret ?? "", entrypoint: i.spec.entrypoint ?? [] }
      : {}),
  };
}

/**
 * The finished instances on a node whose logs it keeps: a Task's attempts,
 * until the Task's TTL deletes them (docs/api.md, "Task").
 */
/**
 * The DesiredInstances message for a node, and its fingerprint (the set and
 * the kept logs: an equal fingerprint needs no new message). `revision` is
 * the one the instances cache reflects: it only grows, so an agent can tell a
 * set older than one it applied (another replica lagging, a restored store).
 */
/** Logged when a node's desired set is held back because the store looks like the wrong one. */
export const SUSPECT_STORE_NOT_SENT =
  "not sending the node its desired set: the store holds objects but no cluster id " +
  "(lost or from an older Grove); check it is the right store, then restart grove-server with --assign-cluster-id";

export function desiredMessage(
  node: string,
  instances: readonly Instance[],
  env: EnvResolver,
  header: Pick<DesiredInstances, "revision" | "clusterId" | "leaderEpoch">,
): { fingerprint: string; desired: DesiredInstances } {
  const desired = desiredFor(node, instances, env);
  const keepLogs = keepLogsFor(node, instances);
  return { fingerprint: JSON.stringify([desired, keepLogs]), desired: { instances: desired, ...header, keepLogs } };
}

/**
 * Whether a change of an instance can change a desired set (desiredMessage):
 * those read its spec, its identity, whether it finished and the node its
 * status names (keepLogsFor), never the rest of its status. An agent's report
 * (Starting, Running, a check result, pull progress) changes only that rest,
 * so its event need not rebuild and fingerprint the node's whole set to find
 * it unchanged. Secrets an env refers to are the resolver's (resendAll).
 */
export function desiredInputsChanged(old: Instance, next: Instance): boolean {
  return (
    old.metadata.uid !== next.metadata.uid ||
    isFinished(old) !== isFinished(next) ||
    old.status?.nodeName !== next.status?.nodeName ||
    !deepEqual(old.spec, next.spec)
  );
}

export function keepLogsFor(node: string, instances: readonly Instance[]): string[] {
  return instances
    .filter((i) => i.spec.task !== undefined && (i.status?.nodeName ?? i.spec.nodeName) === node && isFinished(i))
    .map((i) => i.metadata.uid ?? "")
    .filter((uid) => uid !== "")
    .sort();
}

/** Applies an agent's status report to an Instance's status; undefined = nothing to change. */
export function applyReport(
  inst: Instance,
  report: InstanceStatus__Output,
  nodeAddress?: string,
): ApiInstanceStatus | undefined {
  const state = STATE_FROM_PROTO[report.state];
  if (!state) return undefined;
  const cur = inst.status;
  // A finished instance stays finished: late or repeated reports cannot revive
  // it. Only its agent's word that it is gone is recorded (releasedAt): from
  // then on the scheduler may give its host ports to another instance.
  if (cur && isFinished(inst)) {
    return report.released && !cur.releasedAt ? { ...cur, releasedAt: new Date().toISOString() } : undefined;
  }
  const next: ApiInstanceStatus = {
    ...cur,
    state,
    nodeName: inst.spec.nodeName,
    reason: report.reason || (state === "OOMKilled" ? "OOMKilled" : state),
    message: report.message || undefined,
  };
  if (report.pid) next.pid = report.pid;
  if (report.ip) next.ip = report.ip;
  // The limits the running container has (a live resize changes them).
  if (report.appliedResources) {
    next.appliedResources = {
      cpuMillis: Number(report.appliedResources.cpuMillis),
      memoryBytes: Number(report.appliedResources.memoryBytes),
      pids: Number(report.appliedResources.pids),
    };
  }
  // Image pull progress lives only as long as the pull.
  if (report.pull) {
    next.pull = {
      image: report.pull.image,
      layersDone: report.pull.layersDone,
      layersTotal: report.pull.layersTotal,
      bytesDone: Number(report.pull.bytesDone),
      bytesTotal: Number(report.pull.bytesTotal),
    };
  } else {
    delete next.pull;
  }
  if (report.ports?.length) {
    next.ports = report.ports.map((p) => ({
      name: p.name,
      protocol: p.protocol,
      containerPort: p.containerPort,
      hostPort: p.hostPort,
      ...(nodeAddress ? { hostIP: nodeAddress } : {}),
    }));
  }
  // Readiness is the agent's word while the instance runs; absent otherwise.
  const ready = state === "Running" ? readyOf(report.ready) : undefined;
  if (ready === undefined) delete next.ready;
  else next.ready = ready;
  const lastCheck = lastCheckOf(report.lastCheck);
  if (lastCheck) next.lastCheck = lastCheck;
  const started = msToIso(report.startedAtMs);
  if (started) next.startedAt = started;
  if (isFinishedState(state)) {
    next.exitCode = report.exitCode;
    if (report.signal) next.signal = report.signal;
    next.finishedAt = msToIso(report.finishedAtMs) ?? new Date().toISOString();
    if (report.released) next.releasedAt = new Date().toISOString();
  }
  if (!next.message) delete next.message;
  if (
    cur &&
    cur.state === next.state &&
    cur.pid === next.pid &&
    cur.reason === next.reason &&
    cur.message === next.message &&
    cur.exitCode === next.exitCode &&
    cur.ip === next.ip &&
    cur.ready === next.ready &&
    cur.lastCheck?.ok === next.lastCheck?.ok &&
    cur.lastCheck?.check === next.lastCheck?.check &&
    sameApplied(cur.appliedResources, next.appliedResources)
  ) {
    return undefined;
  }
  return next;
}

function sameApplied(a: ApiInstanceStatus["appliedResources"], b: ApiInstanceStatus["appliedResources"]): boolean {
  return a === undefined || b === undefined ? a === b : sameLimits(a, b);
}

/** What a Register says about its node, as node registration takes it. */
export function nodeInfoOf(info: NodeInfo__Output): NodeRegistrationInfo {
  const res = (r: { cpuMillis: string; memoryBytes: string; pids: string } | null) => ({
    cpuMillis: Number(r?.cpuMillis ?? 0),
    memoryBytes: Number(r?.memoryBytes ?? 0),
    pids: Number(r?.pids ?? 0),
  });
  return {
    name: info.name,
    labels: { ...info.labels },
    capacity: res(info.capacity),
    allocatable: res(info.allocatable),
    addresses: info.addresses,
    agentVersion: info.agentVersion,
    kernel: info.kernel,
    cgroupMode: info.cgroupMode,
  };
}
