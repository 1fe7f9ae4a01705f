// Original file: grove.proto


export interface Registered {
  'nodeName'?: (string);
  'heartbeatIntervalMs'?: (number);
  'subnet'?: (string);
  'egressDefault'?: (string);
}

export interface Registered__Output {
  'nodeName': (string);
  'heartbeatIntervalMs': (number);
  'subnet': (string);
  'egressDefault': (string);
}
