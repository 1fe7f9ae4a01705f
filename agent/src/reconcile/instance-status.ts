// What the agent reports about an instance: the reasons it puts on
// InstanceStatus.reason and the status of an ended container.
import type { InstanceSpec__Output, InstanceStatus } from "@grove/proto";
import type { ContainerExit } from "../runtime/types";

/** Reasons the agent puts on InstanceStatus.reason. */
export const StatusReason = {
  InvalidRootfs: "InvalidRootfs",
  InvalidUid: "InvalidUid",
  StartFailed: "StartFailed",
  /** The instance's runtimeClass names no runtime handler of this agent. */
  UnknownRuntimeClass: "UnknownRuntimeClass",
  OOMKilled: "OOMKilled",
  Completed: "Completed",
  Error: "Error",
  /** The agent stopped it because its uid left the desired set (or the agent shut down). */
  Stopped: "Stopped",
  /** The runtime lost track of the container's exit. */
  RuntimeError: "RuntimeError",
  /** CNI ADD or the egress rules failed. */
  NetworkFailed: "NetworkFailed",
  /** A host port this node refuses to publish (reserved, privileged or outside its allowed ranges). */
  HostPortRefused: "HostPortRefused",
  /** The agent is pulling the instance's image (state STARTING, progress in `pull`). */
  PullingImage: "PullingImage",
  /** The image could not be pulled, verified, unpacked or mounted; the message says why. */
  ImagePullFailed: "ImagePullFailed",
  /** The image is in the node's cache from another pull secret's pull, and the registry refuses this instance's credentials. */
  ImagePullUnauthorized: "ImagePullUnauthorized",
  /** A running instance got new limits in place (state RUNNING). */
  Resized: "Resized",
  /** The runtime or kernel refused new limits; the instance runs on with the old ones (state RUNNING). */
  ResizeFailed: "ResizeFailed",
  /** Stopped by the agent after spec.disconnect.stopAfter without contact with the control plane. */
  StoppedDisconnected: "StoppedDisconnected",
  /** Its liveness check failed failureThreshold times in a row; the agent killed it (state FAILED). */
  LivenessFailed: "LivenessFailed",
} as const;

/** What exitStatus() reads of a tracked instance. */
export interface EndedInstance {
  uid: string;
  spec: InstanceSpec__Output;
  /** The last status reported (its pid and start time carry over). */
  status: InstanceStatus;
  /** The container's exit; unset when the runtime lost it (exitError says why). */
  exit?: ContainerExit;
  exitError?: unknown;
  /** The agent asked the runtime to stop it. */
  stopRequested: boolean;
}

/** The terminal status for an observed exit (or a lost one); `now` stamps a lost one. */
export function exitStatus(ended: EndedInstance, now: number): InstanceStatus {
  const { uid, spec, status } = ended;
  const base: InstanceStatus = {
    uid,
    namespace: spec.namespace,
    name: spec.name,
    pid: status.pid ?? 0,
    startedAtMs: status.startedAtMs ?? 0,
  };
  const exit = ended.exit;
  if (!exit) {
    return {
      ...base,
      state: "FAILED",
      reason: StatusReason.RuntimeError,
      message: `lost the container's exit: ${errorMessage(ended.exitError)}`,
      finishedAtMs: now,
    };
  }
  const result = { ...base, exitCode: exit.exitCode, signal: exit.signal, finishedAtMs: exit.finishedAt.getTime() };
  const how = exit.signal !== 0 ? `killed by signal ${exit.signal}` : `exited with code ${exit.exitCode}`;
  if (exit.oomKilled) {
    return {
      ...result,
      state: "OOM_KILLED",
      reason: StatusReason.OOMKilled,
      message: `${how} after the OOM killer fired`,
    };
  }
  if (ended.stopRequested) {
    return { ...result, state: "EXITED", reason: StatusReason.Stopped, message: `stopped by the agent; ${how}` };
  }
  if (exit.exitCode === 0 && exit.signal === 0) {
    return { ...result, state: "EXITED", reason: StatusReason.Completed, message: how };
  }
  return { ...result, state: "FAILED", reason: StatusReason.Error, message: how };
}

/** The status of an instance that could not start: FAILED with the reason and message. */
export function startFailedStatus(
  spec: InstanceSpec__Output,
  reason: string,
  message: string,
  now: number,
): InstanceStatus {
  const { uid, namespace, name } = spec;
  return { uid, namespace, name, state: "FAILED", reason, message, finishedAtMs: now };
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
