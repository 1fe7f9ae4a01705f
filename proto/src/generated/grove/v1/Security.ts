// Original file: grove.proto

import type { UserNamespace as _grove_v1_UserNamespace, UserNamespace__Output as _grove_v1_UserNamespace__Output } from '../../grove/v1/UserNamespace';

export interface Security {
  'user'?: (string);
  'capabilitiesAdd'?: (string)[];
  'capabilitiesDrop'?: (string)[];
  'seccomp'?: (string);
  'readOnlyRootFilesystem'?: (boolean);
  'userNamespace'?: (_grove_v1_UserNamespace | null);
}

export interface Security__Output {
  'user': (string);
  'capabilitiesAdd': (string)[];
  'capabilitiesDrop': (string)[];
  'seccomp': (string);
  'readOnlyRootFilesystem': (boolean);
  'userNamespace': (_grove_v1_UserNamespace__Output | null);
}
