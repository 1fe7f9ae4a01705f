// Original file: grove.proto


export interface StreamCancel {
  'streamId'?: (number);
}

export interface StreamCancel__Output {
  'streamId': (number);
}
