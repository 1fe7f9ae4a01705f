// @grove/agent's library surface: the reconciler, the control-plane
// connection, the host facts readers and the container runtimes.
export { Reconciler, StatusReason, isPlainName, type ReconcilerOptions } from "./reconcile/reconciler";
export { WorkQueue, type WorkQueueOptions } from "@grove/common";
export {
  UsernsPool,
  parseUsernsRange,
  DEFAULT_USERNS_RANGE,
  type UsernsRange,
  type UsernsPoolOptions,
} from "./reconcile/userns-pool";
export { ControlPlaneConnection, type ControlPlaneConnectionOptions, type DesiredStateSink } from "./grpc/client";
export {
  DEFAULT_RESERVE,
  agentVersion,
  allocatableOf,
  discoverAddresses,
  readHostFacts,
  readPidsLimit,
  toNodeInfo,
  type HostFacts,
  type HostReserve,
  type HostResources,
  type NodeIdentity,
  type ReadHostFactsOptions,
} from "./host";
export { main, parseArgs, type AgentConfig } from "./main";
export * from "./runtime";
export * as images from "./images";
export * from "./network";
export { HollowFleet, HollowNode, type HollowFleetOptions } from "./hollow/hollow-fleet";
export { HollowRuntime } from "./hollow/hollow-runtime";
