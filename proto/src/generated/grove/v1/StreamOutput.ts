// Original file: grove.proto


export interface StreamOutput {
  'streamId'?: (number);
  'fd'?: (number);
  'data'?: (Buffer | Uint8Array | string);
}

export interface StreamOutput__Output {
  'streamId': (number);
  'fd': (number);
  'data': (Buffer);
}
