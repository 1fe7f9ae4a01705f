// Original file: grove.proto

import type { InstanceState as _grove_v1_InstanceState, InstanceState__Output as _grove_v1_InstanceState__Output } from '../../grove/v1/InstanceState';
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
}
