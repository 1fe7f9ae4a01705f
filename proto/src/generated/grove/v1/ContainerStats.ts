// Original file: grove.proto

import type { Long } from '@grpc/proto-loader';

export interface ContainerStats {
  'uid'?: (string);
  'namespace'?: (string);
  'name'?: (string);
  'cpuUsageNs'?: (number | string | Long);
  'memoryBytes'?: (number | string | Long);
  'memoryPeakBytes'?: (number | string | Long);
  'pids'?: (number | string | Long);
  'oomKills'?: (number | string | Long);
  'sampledAtMs'?: (number | string | Long);
}

export interface ContainerStats__Output {
  'uid': (string);
  'namespace': (string);
  'name': (string);
  'cpuUsageNs': (string);
  'memoryBytes': (string);
  'memoryPeakBytes': (string);
  'pids': (string);
  'oomKills': (string);
  'sampledAtMs': (string);
}
