// Original file: grove.proto

import type { Registered as _grove_v1_Registered, Registered__Output as _grove_v1_Registered__Output } from '../../grove/v1/Registered';
import type { DesiredInstances as _grove_v1_DesiredInstances, DesiredInstances__Output as _grove_v1_DesiredInstances__Output } from '../../grove/v1/DesiredInstances';

export interface ControlMessage {
  'registered'?: (_grove_v1_Registered | null);
  'desired'?: (_grove_v1_DesiredInstances | null);
  'msg'?: "registered"|"desired";
}

export interface ControlMessage__Output {
  'registered'?: (_grove_v1_Registered__Output | null);
  'desired'?: (_grove_v1_DesiredInstances__Output | null);
  'msg'?: "registered"|"desired";
}
