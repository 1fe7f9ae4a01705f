// Original file: grove.proto

import type { Register as _grove_v1_Register, Register__Output as _grove_v1_Register__Output } from '../../grove/v1/Register';
import type { Heartbeat as _grove_v1_Heartbeat, Heartbeat__Output as _grove_v1_Heartbeat__Output } from '../../grove/v1/Heartbeat';
import type { InstanceStatus as _grove_v1_InstanceStatus, InstanceStatus__Output as _grove_v1_InstanceStatus__Output } from '../../grove/v1/InstanceStatus';
import type { NodeCondition as _grove_v1_NodeCondition, NodeCondition__Output as _grove_v1_NodeCondition__Output } from '../../grove/v1/NodeCondition';
import type { RenewCertificate as _grove_v1_RenewCertificate, RenewCertificate__Output as _grove_v1_RenewCertificate__Output } from '../../grove/v1/RenewCertificate';
import type { StreamOutput as _grove_v1_StreamOutput, StreamOutput__Output as _grove_v1_StreamOutput__Output } from '../../grove/v1/StreamOutput';
import type { StreamEnd as _grove_v1_StreamEnd, StreamEnd__Output as _grove_v1_StreamEnd__Output } from '../../grove/v1/StreamEnd';

export interface AgentMessage {
  'register'?: (_grove_v1_Register | null);
  'heartbeat'?: (_grove_v1_Heartbeat | null);
  'status'?: (_grove_v1_InstanceStatus | null);
  'condition'?: (_grove_v1_NodeCondition | null);
  'renewCertificate'?: (_grove_v1_RenewCertificate | null);
  'streamOutput'?: (_grove_v1_StreamOutput | null);
  'streamEnd'?: (_grove_v1_StreamEnd | null);
  'msg'?: "register"|"heartbeat"|"status"|"condition"|"renewCertificate"|"streamOutput"|"streamEnd";
}

export interface AgentMessage__Output {
  'register'?: (_grove_v1_Register__Output | null);
  'heartbeat'?: (_grove_v1_Heartbeat__Output | null);
  'status'?: (_grove_v1_InstanceStatus__Output | null);
  'condition'?: (_grove_v1_NodeCondition__Output | null);
  'renewCertificate'?: (_grove_v1_RenewCertificate__Output | null);
  'streamOutput'?: (_grove_v1_StreamOutput__Output | null);
  'streamEnd'?: (_grove_v1_StreamEnd__Output | null);
  'msg'?: "register"|"heartbeat"|"status"|"condition"|"renewCertificate"|"streamOutput"|"streamEnd";
}
