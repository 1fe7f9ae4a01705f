// Original file: grove.proto

import type { Registered as _grove_v1_Registered, Registered__Output as _grove_v1_Registered__Output } from '../../grove/v1/Registered';
import type { DesiredInstances as _grove_v1_DesiredInstances, DesiredInstances__Output as _grove_v1_DesiredInstances__Output } from '../../grove/v1/DesiredInstances';
import type { HeartbeatAck as _grove_v1_HeartbeatAck, HeartbeatAck__Output as _grove_v1_HeartbeatAck__Output } from '../../grove/v1/HeartbeatAck';
import type { CertificateIssued as _grove_v1_CertificateIssued, CertificateIssued__Output as _grove_v1_CertificateIssued__Output } from '../../grove/v1/CertificateIssued';
import type { StreamOpen as _grove_v1_StreamOpen, StreamOpen__Output as _grove_v1_StreamOpen__Output } from '../../grove/v1/StreamOpen';
import type { StreamInput as _grove_v1_StreamInput, StreamInput__Output as _grove_v1_StreamInput__Output } from '../../grove/v1/StreamInput';
import type { StreamCredit as _grove_v1_StreamCredit, StreamCredit__Output as _grove_v1_StreamCredit__Output } from '../../grove/v1/StreamCredit';
import type { StreamCancel as _grove_v1_StreamCancel, StreamCancel__Output as _grove_v1_StreamCancel__Output } from '../../grove/v1/StreamCancel';

export interface ControlMessage {
  'registered'?: (_grove_v1_Registered | null);
  'desired'?: (_grove_v1_DesiredInstances | null);
  'heartbeatAck'?: (_grove_v1_HeartbeatAck | null);
  'certificateIssued'?: (_grove_v1_CertificateIssued | null);
  'streamOpen'?: (_grove_v1_StreamOpen | null);
  'streamInput'?: (_grove_v1_StreamInput | null);
  'streamCredit'?: (_grove_v1_StreamCredit | null);
  'streamCancel'?: (_grove_v1_StreamCancel | null);
  'msg'?: "registered"|"desired"|"heartbeatAck"|"certificateIssued"|"streamOpen"|"streamInput"|"streamCredit"|"streamCancel";
}

export interface ControlMessage__Output {
  'registered'?: (_grove_v1_Registered__Output | null);
  'desired'?: (_grove_v1_DesiredInstances__Output | null);
  'heartbeatAck'?: (_grove_v1_HeartbeatAck__Output | null);
  'certificateIssued'?: (_grove_v1_CertificateIssued__Output | null);
  'streamOpen'?: (_grove_v1_StreamOpen__Output | null);
  'streamInput'?: (_grove_v1_StreamInput__Output | null);
  'streamCredit'?: (_grove_v1_StreamCredit__Output | null);
  'streamCancel'?: (_grove_v1_StreamCancel__Output | null);
  'msg'?: "registered"|"desired"|"heartbeatAck"|"certificateIssued"|"streamOpen"|"streamInput"|"streamCredit"|"streamCancel";
}
