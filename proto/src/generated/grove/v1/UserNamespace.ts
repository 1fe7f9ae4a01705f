// Original file: grove.proto


export interface UserNamespace {
  'auto'?: (boolean);
  'hostUid'?: (number);
  'hostGid'?: (number);
  'size'?: (number);
}

export interface UserNamespace__Output {
  'auto': (boolean);
  'hostUid': (number);
  'hostGid': (number);
  'size': (number);
}
