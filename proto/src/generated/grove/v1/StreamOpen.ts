// Original file: grove.proto

import type { StreamKind as _grove_v1_StreamKind, StreamKind__Output as _grove_v1_StreamKind__Output } from '../../grove/v1/StreamKind';
import type { LogsOptions as _grove_v1_LogsOptions, LogsOptions__Output as _grove_v1_LogsOptions__Output } from '../../grove/v1/LogsOptions';
import type { ExecOptions as _grove_v1_ExecOptions, ExecOptions__Output as _grove_v1_ExecOptions__Output } from '../../grove/v1/ExecOptions';

export interface StreamOpen {
  'streamId'?: (number);
  'kind'?: (_grove_v1_StreamKind);
  'instanceUid'?: (string);
  'logs'?: (_grove_v1_LogsOptions | null);
  'exec'?: (_grove_v1_ExecOptions | null);
  'window'?: (number);
}

export interface StreamOpen__Output {
  'streamId': (number);
  'kind': (_grove_v1_StreamKind__Output);
  'instanceUid': (string);
  'logs': (_grove_v1_LogsOptions__Output | null);
  'exec': (_grove_v1_ExecOptions__Output | null);
  'window': (number);
}
