// Original file: grove.proto

import type { Long } from '@grpc/proto-loader';

export interface LogsOptions {
  'follow'?: (boolean);
  'tailLines'?: (number);
  'previous'?: (boolean);
  'namespace'?: (string);
  'name'?: (string);
  'sinceMs'?: (number | string | Long);
  'timestamps'?: (boolean);
}

export interface LogsOptions__Output {
  'follow': (boolean);
  'tailLines': (number);
  'previous': (boolean);
  'namespace': (string);
  'name': (string);
  'sinceMs': (string);
  'timestamps': (boolean);
}
