// Original file: grove.proto

import type { NodeInfo as _grove_v1_NodeInfo, NodeInfo__Output as _grove_v1_NodeInfo__Output } from '../../grove/v1/NodeInfo';
import type { InstanceStatus as _grove_v1_InstanceStatus, InstanceStatus__Output as _grove_v1_InstanceStatus__Output } from '../../grove/v1/InstanceStatus';
import type { NodeCondition as _grove_v1_NodeCondition, NodeCondition__Output as _grove_v1_NodeCondition__Output } from '../../grove/v1/NodeCondition';

export interface Register {
  'node'?: (_grove_v1_NodeInfo | null);
  'instances'?: (_grove_v1_InstanceStatus)[];
  'conditions'?: (_grove_v1_NodeCondition)[];
}

export interface Register__Output {
  'node': (_grove_v1_NodeInfo__Output | null);
  'instances': (_grove_v1_InstanceStatus__Output)[];
  'conditions': (_grove_v1_NodeCondition__Output)[];
}
