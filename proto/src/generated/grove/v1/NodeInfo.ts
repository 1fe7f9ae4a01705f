// Original file: grove.proto

import type { Resources as _grove_v1_Resources, Resources__Output as _grove_v1_Resources__Output } from '../../grove/v1/Resources';

export interface NodeInfo {
  'name'?: (string);
  'capacity'?: (_grove_v1_Resources | null);
  'allocatable'?: (_grove_v1_Resources | null);
  'labels'?: ({[key: string]: string});
  'addresses'?: (string)[];
  'agentVersion'?: (string);
  'os'?: (string);
  'kernel'?: (string);
  'cgroupMode'?: (string);
}

export interface NodeInfo__Output {
  'name': (string);
  'capacity': (_grove_v1_Resources__Output | null);
  'allocatable': (_grove_v1_Resources__Output | null);
  'labels': ({[key: string]: string});
  'addresses': (string)[];
  'agentVersion': (string);
  'os': (string);
  'kernel': (string);
  'cgroupMode': (string);
}
