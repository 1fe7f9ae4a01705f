// Original file: grove.proto

import type { InstanceState as _grove_v1_InstanceState, InstanceState__Output as _grove_v1_InstanceState__Output } from '../../grove/v1/InstanceState';
import type { PortMapping as _grove_v1_PortMapping, PortMapping__Output as _grove_v1_PortMapping__Output } from '../../grove/v1/PortMapping';
import type { Resources as _grove_v1_Resources, Resources__Output as _grove_v1_Resources__Output } from '../../grove/v1/Resources';
import type { ImagePullProgress as _grove_v1_ImagePullProgress, ImagePullProgress__Output as _grove_v1_ImagePullProgress__Output } from '../../grove/v1/ImagePullProgress';
import type { Readiness as _grove_v1_Readiness, Readiness__Output as _grove_v1_Readiness__Output } from '../../grove/v1/Readiness';
import type { CheckResult as _grove_v1_CheckResult, CheckResult__Output as _grove_v1_CheckResult__Output } from '../../grove/v1/CheckResult';
import type { Long } from '@grpc/proto-loader';

export interface InstanceStatus {
  'uid'?: (string);
  'namespace'?: (string);
  'name'?: (string);
  'state'?: (_grove_v1_InstanceState);
  'exitCode'?: (number);
  'signal'?: (number);
  'pid'?: (number);
  'reason'?: (string);
  'message'?: (string);
  'startedAtMs'?: (number | string | Long);
  'finishedAtMs'?: (number | string | Long);
  'ip'?: (string);
  'ports'?: (_grove_v1_PortMapping)[];
  'appliedResources'?: (_grove_v1_Resources | null);
  'pull'?: (_grove_v1_ImagePullProgress | null);
  'ready'?: (_grove_v1_Readiness);
  'lastCheck'?: (_grove_v1_CheckResult | null);
  'released'?: (boolean);
}

export interface InstanceStatus__Output {
  'uid': (string);
  'namespace': (string);
  'name': (string);
  'state': (_grove_v1_InstanceState__Output);
  'exitCode': (number);
  'signal': (number);
  'pid': (number);
  'reason': (string);
  'message': (string);
  'startedAtMs': (string);
  'finishedAtMs': (string);
  'ip': (string);
  'ports': (_grove_v1_PortMapping__Output)[];
  'appliedResources': (_grove_v1_Resources__Output | null);
  'pull': (_grove_v1_ImagePullProgress__Output | null);
  'ready': (_grove_v1_Readiness__Output);
  'lastCheck': (_grove_v1_CheckResult__Output | null);
  'released': (boolean);
}
