// Original file: grove.proto


export interface Security {
  'user'?: (string);
  'capabilitiesAdd'?: (string)[];
  'capabilitiesDrop'?: (string)[];
  'seccomp'?: (string);
  'readOnlyRootFilesystem'?: (boolean);
}

export interface Security__Output {
  'user': (string);
  'capabilitiesAdd': (string)[];
  'capabilitiesDrop': (string)[];
  'seccomp': (string);
  'readOnlyRootFilesystem': (boolean);
}
