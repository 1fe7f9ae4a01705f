// Original file: grove.proto

import type { Resources as _grove_v1_Resources, Resources__Output as _grove_v1_Resources__Output } from '../../grove/v1/Resources';
import type { PortMapping as _grove_v1_PortMapping, PortMapping__Output as _grove_v1_PortMapping__Output } from '../../grove/v1/PortMapping';
import type { EgressRule as _grove_v1_EgressRule, EgressRule__Output as _grove_v1_EgressRule__Output } from '../../grove/v1/EgressRule';
import type { Security as _grove_v1_Security, Security__Output as _grove_v1_Security__Output } from '../../grove/v1/Security';
import type { HealthCheck as _grove_v1_HealthCheck, HealthCheck__Output as _grove_v1_HealthCheck__Output } from '../../grove/v1/HealthCheck';
import type { Long } from '@grpc/proto-loader';

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
  'ports'?: (_grove_v1_PortMapping)[];
  'egress'?: (_grove_v1_EgressRule)[];
  'image'?: (string);
  'imagePullSecret'?: (string);
  'entrypoint'?: (string)[];
  'security'?: (_grove_v1_Security | null);
  'stopAfterMs'?: (number | string | Long);
  'startupCheck'?: (_grove_v1_HealthCheck | null);
  'livenessCheck'?: (_grove_v1_HealthCheck | null);
  'readinessCheck'?: (_grove_v1_HealthCheck | null);
  'runtimeClass'?: (string);
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
  'ports': (_grove_v1_PortMapping__Output)[];
  'egress': (_grove_v1_EgressRule__Output)[];
  'image': (string);
  'imagePullSecret': (string);
  'entrypoint': (string)[];
  'security': (_grove_v1_Security__Output | null);
  'stopAfterMs': (string);
  'startupCheck': (_grove_v1_HealthCheck__Output | null);
  'livenessCheck': (_grove_v1_HealthCheck__Output | null);
  'readinessCheck': (_grove_v1_HealthCheck__Output | null);
  'runtimeClass': (string);
}
