// Original file: grove.proto


export interface LogsOptions {
  'follow'?: (boolean);
  'tailLines'?: (number);
}

export interface LogsOptions__Output {
  'follow': (boolean);
  'tailLines': (number);
}
