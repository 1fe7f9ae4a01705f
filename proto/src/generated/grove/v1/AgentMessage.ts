// Original file: grove.proto

import type { Register as _grove_v1_Register, Register__Output as _grove_v1_Register__Output } from '../../grove/v1/Register';
import type { Heartbeat as _grove_v1_Heartbeat, Heartbeat__Output as _grove_v1_Heartbeat__Output } from '../../grove/v1/Heartbeat';
import type { InstanceStatus as _grove_v1_InstanceStatus, InstanceStatus__Output as _grove_v1_InstanceStatus__Output } from '../../grove/v1/InstanceStatus';

export interface AgentMessage {
  'register'?: (_grove_v1_Register | null);
  'heartbeat'?: (_grove_v1_Heartbeat | null);
  'status'?: (_grove_v1_InstanceStatus | null);
  'msg'?: "register"|"heartbeat"|"status";
}

export interface AgentMessage__Output {
  'register'?: (_grove_v1_Register__Output | null);
  'heartbeat'?: (_grove_v1_Heartbeat__Output | null);
  'status'?: (_grove_v1_InstanceStatus__Output | null);
  'msg'?: "register"|"heartbeat"|"status";
}
