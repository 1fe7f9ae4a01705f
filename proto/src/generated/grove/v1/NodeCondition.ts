// Original file: grove.proto


export interface NodeCondition {
  'type'?: (string);
  'status'?: (string);
  'reason'?: (string);
  'message'?: (string);
}

export interface NodeCondition__Output {
  'type': (string);
  'status': (string);
  'reason': (string);
  'message': (string);
}
