// Original file: grove.proto

export const StreamKind = {
  STREAM_KIND_UNSPECIFIED: 'STREAM_KIND_UNSPECIFIED',
  LOGS: 'LOGS',
  EXEC: 'EXEC',
  STATS: 'STATS',
  METRICS: 'METRICS',
} as const;

export type StreamKind =
  | 'STREAM_KIND_UNSPECIFIED'
  | 0
  | 'LOGS'
  | 1
  | 'EXEC'
  | 2
  | 'STATS'
  | 3
  | 'METRICS'
  | 4

export type StreamKind__Output = typeof StreamKind[keyof typeof StreamKind]
