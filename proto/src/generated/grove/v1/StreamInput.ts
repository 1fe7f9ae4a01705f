// Original file: grove.proto


export interface StreamInput {
  'streamId'?: (number);
  'stdin'?: (Buffer | Uint8Array | string);
  'closeStdin'?: (boolean);
  'cols'?: (number);
  'rows'?: (number);
}

export interface StreamInput__Output {
  'streamId': (number);
  'stdin': (Buffer);
  'closeStdin': (boolean);
  'cols': (number);
  'rows': (number);
}
