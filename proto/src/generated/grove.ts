import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AgentMessage as _grove_v1_AgentMessage, AgentMessage__Output as _grove_v1_AgentMessage__Output } from './grove/v1/AgentMessage';
import type { AgentServiceClient as _grove_v1_AgentServiceClient, AgentServiceDefinition as _grove_v1_AgentServiceDefinition } from './grove/v1/AgentService';
import type { CertificateIssued as _grove_v1_CertificateIssued, CertificateIssued__Output as _grove_v1_CertificateIssued__Output } from './grove/v1/CertificateIssued';
import type { CheckResult as _grove_v1_CheckResult, CheckResult__Output as _grove_v1_CheckResult__Output } from './grove/v1/CheckResult';
import type { ContainerStats as _grove_v1_ContainerStats, ContainerStats__Output as _grove_v1_ContainerStats__Output } from './grove/v1/ContainerStats';
import type { ControlMessage as _grove_v1_ControlMessage, ControlMessage__Output as _grove_v1_ControlMessage__Output } from './grove/v1/ControlMessage';
import type { DesiredInstances as _grove_v1_DesiredInstances, DesiredInstances__Output as _grove_v1_DesiredInstances__Output } from './grove/v1/DesiredInstances';
import type { EgressRule as _grove_v1_EgressRule, EgressRule__Output as _grove_v1_EgressRule__Output } from './grove/v1/EgressRule';
import type { ExecOptions as _grove_v1_ExecOptions, ExecOptions__Output as _grove_v1_ExecOptions__Output } from './grove/v1/ExecOptions';
import type { HealthCheck as _grove_v1_HealthCheck, HealthCheck__Output as _grove_v1_HealthCheck__Output } from './grove/v1/HealthCheck';
import type { Heartbeat as _grove_v1_Heartbeat, Heartbeat__Output as _grove_v1_Heartbeat__Output } from './grove/v1/Heartbeat';
import type { HeartbeatAck as _grove_v1_HeartbeatAck, HeartbeatAck__Output as _grove_v1_HeartbeatAck__Output } from './grove/v1/HeartbeatAck';
import type { ImagePullProgress as _grove_v1_ImagePullProgress, ImagePullProgress__Output as _grove_v1_ImagePullProgress__Output } from './grove/v1/ImagePullProgress';
import type { InstanceSpec as _grove_v1_InstanceSpec, InstanceSpec__Output as _grove_v1_InstanceSpec__Output } from './grove/v1/InstanceSpec';
import type { InstanceStatus as _grove_v1_InstanceStatus, InstanceStatus__Output as _grove_v1_InstanceStatus__Output } from './grove/v1/InstanceStatus';
import type { LogsOptions as _grove_v1_LogsOptions, LogsOptions__Output as _grove_v1_LogsOptions__Output } from './grove/v1/LogsOptions';
import type { NodeCondition as _grove_v1_NodeCondition, NodeCondition__Output as _grove_v1_NodeCondition__Output } from './grove/v1/NodeCondition';
import type { NodeInfo as _grove_v1_NodeInfo, NodeInfo__Output as _grove_v1_NodeInfo__Output } from './grove/v1/NodeInfo';
import type { PortMapping as _grove_v1_PortMapping, PortMapping__Output as _grove_v1_PortMapping__Output } from './grove/v1/PortMapping';
import type { Register as _grove_v1_Register, Register__Output as _grove_v1_Register__Output } from './grove/v1/Register';
import type { Registered as _grove_v1_Registered, Registered__Output as _grove_v1_Registered__Output } from './grove/v1/Registered';
import type { RenewCertificate as _grove_v1_RenewCertificate, RenewCertificate__Output as _grove_v1_RenewCertificate__Output } from './grove/v1/RenewCertificate';
import type { Resources as _grove_v1_Resources, Resources__Output as _grove_v1_Resources__Output } from './grove/v1/Resources';
import type { Security as _grove_v1_Security, Security__Output as _grove_v1_Security__Output } from './grove/v1/Security';
import type { StreamCancel as _grove_v1_StreamCancel, StreamCancel__Output as _grove_v1_StreamCancel__Output } from './grove/v1/StreamCancel';
import type { StreamCredit as _grove_v1_StreamCredit, StreamCredit__Output as _grove_v1_StreamCredit__Output } from './grove/v1/StreamCredit';
import type { StreamEnd as _grove_v1_StreamEnd, StreamEnd__Output as _grove_v1_StreamEnd__Output } from './grove/v1/StreamEnd';
import type { StreamInput as _grove_v1_StreamInput, StreamInput__Output as _grove_v1_StreamInput__Output } from './grove/v1/StreamInput';
import type { StreamOpen as _grove_v1_StreamOpen, StreamOpen__Output as _grove_v1_StreamOpen__Output } from './grove/v1/StreamOpen';
import type { StreamOutput as _grove_v1_StreamOutput, StreamOutput__Output as _grove_v1_StreamOutput__Output } from './grove/v1/StreamOutput';
import type { UserNamespace as _grove_v1_UserNamespace, UserNamespace__Output as _grove_v1_UserNamespace__Output } from './grove/v1/UserNamespace';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  grove: {
    v1: {
      AgentMessage: MessageTypeDefinition<_grove_v1_AgentMessage, _grove_v1_AgentMessage__Output>
      AgentService: SubtypeConstructor<typeof grpc.Client, _grove_v1_AgentServiceClient> & { service: _grove_v1_AgentServiceDefinition }
      CertificateIssued: MessageTypeDefinition<_grove_v1_CertificateIssued, _grove_v1_CertificateIssued__Output>
      CheckResult: MessageTypeDefinition<_grove_v1_CheckResult, _grove_v1_CheckResult__Output>
      ContainerStats: MessageTypeDefinition<_grove_v1_ContainerStats, _grove_v1_ContainerStats__Output>
      ControlMessage: MessageTypeDefinition<_grove_v1_ControlMessage, _grove_v1_ControlMessage__Output>
      DesiredInstances: MessageTypeDefinition<_grove_v1_DesiredInstances, _grove_v1_DesiredInstances__Output>
      EgressRule: MessageTypeDefinition<_grove_v1_EgressRule, _grove_v1_EgressRule__Output>
      ExecOptions: MessageTypeDefinition<_grove_v1_ExecOptions, _grove_v1_ExecOptions__Output>
      HealthCheck: MessageTypeDefinition<_grove_v1_HealthCheck, _grove_v1_HealthCheck__Output>
      Heartbeat: MessageTypeDefinition<_grove_v1_Heartbeat, _grove_v1_Heartbeat__Output>
      HeartbeatAck: MessageTypeDefinition<_grove_v1_HeartbeatAck, _grove_v1_HeartbeatAck__Output>
      ImagePullProgress: MessageTypeDefinition<_grove_v1_ImagePullProgress, _grove_v1_ImagePullProgress__Output>
      InstanceSpec: MessageTypeDefinition<_grove_v1_InstanceSpec, _grove_v1_InstanceSpec__Output>
      InstanceState: EnumTypeDefinition
      InstanceStatus: MessageTypeDefinition<_grove_v1_InstanceStatus, _grove_v1_InstanceStatus__Output>
      LogsOptions: MessageTypeDefinition<_grove_v1_LogsOptions, _grove_v1_LogsOptions__Output>
      NodeCondition: MessageTypeDefinition<_grove_v1_NodeCondition, _grove_v1_NodeCondition__Output>
      NodeInfo: MessageTypeDefinition<_grove_v1_NodeInfo, _grove_v1_NodeInfo__Output>
      PortMapping: MessageTypeDefinition<_grove_v1_PortMapping, _grove_v1_PortMapping__Output>
      Readiness: EnumTypeDefinition
      Register: MessageTypeDefinition<_grove_v1_Register, _grove_v1_Register__Output>
      Registered: MessageTypeDefinition<_grove_v1_Registered, _grove_v1_Registered__Output>
      RenewCertificate: MessageTypeDefinition<_grove_v1_RenewCertificate, _grove_v1_RenewCertificate__Output>
      Resources: MessageTypeDefinition<_grove_v1_Resources, _grove_v1_Resources__Output>
      Security: MessageTypeDefinition<_grove_v1_Security, _grove_v1_Security__Output>
      StreamCancel: MessageTypeDefinition<_grove_v1_StreamCancel, _grove_v1_StreamCancel__Output>
      StreamCredit: MessageTypeDefinition<_grove_v1_StreamCredit, _grove_v1_StreamCredit__Output>
      StreamEnd: MessageTypeDefinition<_grove_v1_StreamEnd, _grove_v1_StreamEnd__Output>
      StreamInput: MessageTypeDefinition<_grove_v1_StreamInput, _grove_v1_StreamInput__Output>
      StreamKind: EnumTypeDefinition
      StreamOpen: MessageTypeDefinition<_grove_v1_StreamOpen, _grove_v1_StreamOpen__Output>
      StreamOutput: MessageTypeDefinition<_grove_v1_StreamOutput, _grove_v1_StreamOutput__Output>
      UserNamespace: MessageTypeDefinition<_grove_v1_UserNamespace, _grove_v1_UserNamespace__Output>
    }
  }
}

