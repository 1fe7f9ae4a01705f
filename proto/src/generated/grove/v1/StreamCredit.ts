// Original file: grove.proto


export interface StreamCredit {
  'streamId'?: (number);
  'bytes'?: (number);
}

export interface StreamCredit__Output {
  'streamId': (number);
  'bytes': (number);
}
