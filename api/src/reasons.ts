// The catalogue of reasons: the machine-readable word on an Instance's
// status.reason and on a Node's Ready condition. Each reason has one meaning,
// stated here; the human sentence goes in `message`. Clients (the CLI, PaaS
// front ends) may switch on these values; they are stable.
//
// Instance reasons come from two writers. The control plane writes the ones in
// the first block. The agent writes the ones in the second block (it imports
// only @grove/proto, so its own list, StatusReason in agent/src/reconcile,
// must name the same values; test/src/reason-catalogue.test.ts checks that).
// An agent also reports the state itself as the reason (Running, Exited, ...)
// when it has nothing more to say.

/** Why an Instance is in its state (status.reason). */
export const InstanceReason = {
  // Written by the control plane.
  /**
   * Pending, not yet looked at by the scheduler: a new instance, or a
   * replacement, waiting for its first scheduling pass. Not a failure.
   */
  Unscheduled: "Unscheduled",
  /**
   * Pending after the scheduler tried: no node fits now. The message is the
   * scheduler's sentence ("memory: insufficient on 3 of 3 nodes") and
   * status.explain its counts. Retried whenever nodes or instances change.
   */
  Unschedulable: "Unschedulable",
  /**
   * Pending, not placed: its namespace's quota has no room for it (a rolling
   * update's surge, a rollout undo, a quota lowered). The message names each
   * quota and the amounts. Placed as soon as there is room.
   */
  QuotaExceeded: "QuotaExceeded",
  /** Pending, bound to a node by the scheduler; its agent has not reported it yet. */
  Scheduled: "Scheduled",
  /**
   * Pending, bound to a node but not sent to it: an env value names a Secret
   * (or a key of one) that does not exist in the instance's namespace. The
   * message names the Secret and key; sent as soon as it exists.
   */
  SecretMissing: "SecretMissing",
  /** Failed: evicted by the scheduler to make room for a higher-priority instance. */
  Preempted: "Preempted",
  /** Unknown: its node is not Ready, so it may or may not run there (Diego's suspect). */
  NodeNotReady: "NodeNotReady",
  /** Failed: its node came back without it (the host lost its containers). */
  Lost: "Lost",
  /** Exited: stopped because a replacement took over while its node was away. */
  Superseded: "Superseded",
  /** Exited: moved off a draining node; its replacement runs elsewhere. */
  Drained: "Drained",
  /** Exited: on a draining node, stopped when the drain's timeout passed before a replacement ran. */
  DrainTimeout: "DrainTimeout",
  /** Exited: stopped by a rolling update once its new-template replacement was available. */
  RolledOut: "RolledOut",
  /** Running: new limits were written to its spec; its agent has not applied them yet. */
  Resizing: "Resizing",

  // Written by the agent.
  /** Failed: the rootfs named by the spec is not usable. */
  InvalidRootfs: "InvalidRootfs",
  /** Failed: the user named by the spec cannot be resolved. */
  InvalidUid: "InvalidUid",
  /** Failed: the runtime could not start the container. */
  StartFailed: "StartFailed",
  /** Failed: its spec.runtimeClass names no runtime handler on its node (the message names both). */
  UnknownRuntimeClass: "UnknownRuntimeClass",
  /** OOMKilled: the kernel's OOM killer ended it. */
  OOMKilled: "OOMKilled",
  /** Exited with code 0. */
  Completed: "Completed",
  /** Exited with a non-zero code or by a signal. */
  Error: "Error",
  /** Exited: its agent stopped it because it left the node's desired set (or the agent shut down). */
  Stopped: "Stopped",
  /** Failed: the runtime lost track of the container's exit. */
  RuntimeError: "RuntimeError",
  /** Failed: CNI ADD or the egress rules failed. */
  NetworkFailed: "NetworkFailed",
  /** Failed: a host port its node refuses to publish (reserved, privileged or outside the allowed ranges). */
  HostPortRefused: "HostPortRefused",
  /** Starting: the agent is pulling its image (progress in status.pull). */
  PullingImage: "PullingImage",
  /** Failed: the image could not be pulled, verified, unpacked or mounted. */
  ImagePullFailed: "ImagePullFailed",
  /** Failed: the image is cached from a pull with other credentials and the registry refuses this instance's. */
  ImagePullUnauthorized: "ImagePullUnauthorized",
  /** Running: new limits were applied in place. */
  Resized: "Resized",
  /** Running: the runtime or kernel refused new limits; it runs on with the old ones. */
  ResizeFailed: "ResizeFailed",
  /** Exited: its agent stopped it after spec.disconnect.stopAfter without contact with the control plane. */
  StoppedDisconnected: "StoppedDisconnected",
  /** Failed: its liveness check failed failureThreshold times in a row; replaced under its restart policy. */
  LivenessFailed: "LivenessFailed",
} as const;
export type InstanceReason = (typeof InstanceReason)[keyof typeof InstanceReason];

/** Why a Node's Ready condition has its status (written by the control plane). */
export const NodeReadyReason = {
  /** True: its agent registered and heartbeats. */
  AgentConnected: "AgentConnected",
  /** Unknown: the replica holding its agent's stream heard nothing for the node grace. */
  AgentNotHeartbeating: "AgentNotHeartbeating",
  /** Unknown: its agent's stream closed and the agent did not come back within the grace. */
  AgentDisconnected: "AgentDisconnected",
  /** Unknown: no live replica refreshes its presence key (the leader's fallback). */
  NodePresenceLost: "NodePresenceLost",
} as const;
export type NodeReadyReason = (typeof NodeReadyReason)[keyof typeof NodeReadyReason];

/** Why an App's Progressing condition has its status (written by the App controller). */
export const AppProgressingReason = {
  /** True: instances are being replaced by ones of the current template. */
  Updating: "Updating",
  /** True: every instance is of the current template and available. */
  Complete: "Complete",
  /**
   * False: a rolling update made no progress for spec.update.progressDeadlineSeconds; it stopped
   * (spec.update.autoRollback false, or no revision to return to).
   */
  ProgressDeadlineExceeded: "ProgressDeadlineExceeded",
  /** Unknown: spec.update.paused; the rolling update takes no step until resumed. */
  Paused: "Paused",
  /** True: spec.update.canary new instances are available; the rest waits for `grove rollout promote`. */
  CanaryPaused: "CanaryPaused",
  /**
   * False: the rolling update was returned to the revision before it, because a new instance
   * crashed or new instances were not available by the progress deadline (the message says which
   * instance and its exit or last check). Stays until the App's template changes again.
   */
  RolledBack: "RolledBack",
} as const;
export type AppProgressingReason = (typeof AppProgressingReason)[keyof typeof AppProgressingReason];
