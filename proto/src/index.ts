// The agent/control-plane contract: loads grove.proto at run time and
// re-exports the TypeScript types generated from it (src/generated, committed;
// `npm run proto:check` fails when they are stale).
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { ProtoGrpcType } from "./generated/grove";

export type { AgentMessage, AgentMessage__Output } from "./generated/grove/v1/AgentMessage";
export type { ControlMessage, ControlMessage__Output } from "./generated/grove/v1/ControlMessage";
export type { DesiredInstances, DesiredInstances__Output } from "./generated/grove/v1/DesiredInstances";
export type { InstanceSpec, InstanceSpec__Output } from "./generated/grove/v1/InstanceSpec";
export type { InstanceStatus, InstanceStatus__Output } from "./generated/grove/v1/InstanceStatus";
export type { CheckResult, CheckResult__Output } from "./generated/grove/v1/CheckResult";
export type { HealthCheck, HealthCheck__Output } from "./generated/grove/v1/HealthCheck";
export { Readiness, type Readiness__Output } from "./generated/grove/v1/Readiness";
export type { InstanceState, InstanceState__Output } from "./generated/grove/v1/InstanceState";
export type { NodeInfo, NodeInfo__Output } from "./generated/grove/v1/NodeInfo";
export type { Resources, Resources__Output } from "./generated/grove/v1/Resources";
export type { Register__Output } from "./generated/grove/v1/Register";
export type {
  NodeCondition as AgentNodeCondition,
  NodeCondition__Output as AgentNodeCondition__Output,
} from "./generated/grove/v1/NodeCondition";
export type { HeartbeatAck__Output } from "./generated/grove/v1/HeartbeatAck";
export type { Registered, Registered__Output } from "./generated/grove/v1/Registered";
export type { PortMapping, PortMapping__Output } from "./generated/grove/v1/PortMapping";
export type { EgressRule, EgressRule__Output } from "./generated/grove/v1/EgressRule";
export type { ImagePullProgress, ImagePullProgress__Output } from "./generated/grove/v1/ImagePullProgress";
export type { StreamOpen, StreamOpen__Output } from "./generated/grove/v1/StreamOpen";
export type { StreamInput, StreamInput__Output } from "./generated/grove/v1/StreamInput";
export type { StreamCredit, StreamCredit__Output } from "./generated/grove/v1/StreamCredit";
export type { StreamCancel, StreamCancel__Output } from "./generated/grove/v1/StreamCancel";
export type { StreamOutput, StreamOutput__Output } from "./generated/grove/v1/StreamOutput";
export type { StreamEnd, StreamEnd__Output } from "./generated/grove/v1/StreamEnd";
export type { StreamKind, StreamKind__Output } from "./generated/grove/v1/StreamKind";
export type { ContainerStats, ContainerStats__Output } from "./generated/grove/v1/ContainerStats";
export type { LogsOptions, LogsOptions__Output } from "./generated/grove/v1/LogsOptions";
export type {
  ExecOptions as ProtoExecOptions,
  ExecOptions__Output as ProtoExecOptions__Output,
} from "./generated/grove/v1/ExecOptions";
export type { AgentServiceClient, AgentServiceHandlers } from "./generated/grove/v1/AgentService";

/** Absolute path of grove.proto inside this package. */
export const PROTO_PATH = path.join(__dirname, "..", "grove.proto");

/** Options shared by both ends; they match the ones the generated types assume. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: ProtoGrpcType | undefined;

/** The loaded gRPC package definition for `grove.v1`. */
export function loadGroveProto(): ProtoGrpcType {
  if (!cached) {
    const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  }
  return cached;
}

/** Metadata key carrying the agent's join token. */
export const AGENT_TOKEN_METADATA = "x-grove-agent-token";
