// Original file: grove.proto

import type { ContainerStats as _grove_v1_ContainerStats, ContainerStats__Output as _grove_v1_ContainerStats__Output } from '../../grove/v1/ContainerStats';

export interface StreamEnd {
  'streamId'?: (number);
  'exitCode'?: (number);
  'signal'?: (number);
  'errorCode'?: (string);
  'error'?: (string);
  'stats'?: (_grove_v1_ContainerStats)[];
  'metrics'?: (string);
}

export interface StreamEnd__Output {
  'streamId': (number);
  'exitCode': (number);
  'signal': (number);
  'errorCode': (string);
  'error': (string);
  'stats': (_grove_v1_ContainerStats__Output)[];
  'metrics': (string);
}
