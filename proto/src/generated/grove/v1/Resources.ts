// Original file: grove.proto

import type { Long } from '@grpc/proto-loader';

export interface Resources {
  'cpuMillis'?: (number | string | Long);
  'memoryBytes'?: (number | string | Long);
  'pids'?: (number | string | Long);
}

export interface Resources__Output {
  'cpuMillis': (string);
  'memoryBytes': (string);
  'pids': (string);
}
