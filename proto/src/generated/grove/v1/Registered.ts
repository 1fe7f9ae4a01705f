// Original file: grove.proto


export interface Registered {
  'nodeName'?: (string);
  'heartbeatIntervalMs'?: (number);
}

export interface Registered__Output {
  'nodeName': (string);
  'heartbeatIntervalMs': (number);
}
