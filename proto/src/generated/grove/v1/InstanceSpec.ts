// Original file: grove.proto

import type { Resources as _grove_v1_Resources, Resources__Output as _grove_v1_Resources__Output } from '../../grove/v1/Resources';

export interface InstanceSpec {
  'uid'?: (string);
  'namespace'?: (string);
  'name'?: (string);
  'app'?: (string);
  'rootfs'?: (string);
  'command'?: (string)[];
  'env'?: ({[key: string]: string});
  'workingDir'?: (string);
  'resources'?: (_grove_v1_Resources | null);
  'hostname'?: (string);
  'stopGraceSeconds'?: (number);
}

export interface InstanceSpec__Output {
  'uid': (string);
  'namespace': (string);
  'name': (string);
  'app': (string);
  'rootfs': (string);
  'command': (string)[];
  'env': ({[key: string]: string});
  'workingDir': (string);
  'resources': (_grove_v1_Resources__Output | null);
  'hostname': (string);
  'stopGraceSeconds': (number);
}
