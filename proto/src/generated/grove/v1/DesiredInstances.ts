// Original file: grove.proto

import type { InstanceSpec as _grove_v1_InstanceSpec, InstanceSpec__Output as _grove_v1_InstanceSpec__Output } from '../../grove/v1/InstanceSpec';
import type { Long } from '@grpc/proto-loader';

export interface DesiredInstances {
  'instances'?: (_grove_v1_InstanceSpec)[];
  'revision'?: (number | string | Long);
  'clusterId'?: (string);
  'keepLogs'?: (string)[];
  'leaderEpoch'?: (number | string | Long);
  'traceContext'?: ({[key: string]: string});
}

export interface DesiredInstances__Output {
  'instances': (_grove_v1_InstanceSpec__Output)[];
  'revision': (string);
  'clusterId': (string);
  'keepLogs': (string)[];
  'leaderEpoch': (string);
  'traceContext': ({[key: string]: string});
}
