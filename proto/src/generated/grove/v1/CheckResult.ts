// Original file: grove.proto

import type { Long } from '@grpc/proto-loader';

export interface CheckResult {
  'check'?: (string);
  'kind'?: (string);
  'ok'?: (boolean);
  'message'?: (string);
  'timeMs'?: (number | string | Long);
}

export interface CheckResult__Output {
  'check': (string);
  'kind': (string);
  'ok': (boolean);
  'message': (string);
  'timeMs': (string);
}
