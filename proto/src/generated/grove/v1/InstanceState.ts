// Original file: grove.proto

export const InstanceState = {
  INSTANCE_STATE_UNSPECIFIED: 'INSTANCE_STATE_UNSPECIFIED',
  PENDING: 'PENDING',
  STARTING: 'STARTING',
  RUNNING: 'RUNNING',
  EXITED: 'EXITED',
  FAILED: 'FAILED',
  OOM_KILLED: 'OOM_KILLED',
} as const;

export type InstanceState =
  | 'INSTANCE_STATE_UNSPECIFIED'
  | 0
  | 'PENDING'
  | 1
  | 'STARTING'
  | 2
  | 'RUNNING'
  | 3
  | 'EXITED'
  | 4
  | 'FAILED'
  | 5
  | 'OOM_KILLED'
  | 6

export type InstanceState__Output = typeof InstanceState[keyof typeof InstanceState]
