// Original file: grove.proto

import type { Long } from '@grpc/proto-loader';

export interface HeartbeatAck {
  'sentAtMs'?: (number | string | Long);
}

export interface HeartbeatAck__Output {
  'sentAtMs': (string);
}
