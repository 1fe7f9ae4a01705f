// Original file: grove.proto

export const Readiness = {
  READINESS_NOT_REPORTED: 'READINESS_NOT_REPORTED',
  READINESS_READY: 'READINESS_READY',
  READINESS_NOT_READY: 'READINESS_NOT_READY',
} as const;

export type Readiness =
  | 'READINESS_NOT_REPORTED'
  | 0
  | 'READINESS_READY'
  | 1
  | 'READINESS_NOT_READY'
  | 2

export type Readiness__Output = typeof Readiness[keyof typeof Readiness]
