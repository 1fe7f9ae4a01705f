// Original file: grove.proto


export interface ExecOptions {
  'command'?: (string)[];
  'env'?: ({[key: string]: string});
  'workingDir'?: (string);
  'user'?: (string);
  'tty'?: (boolean);
  'cols'?: (number);
  'rows'?: (number);
}

export interface ExecOptions__Output {
  'command': (string)[];
  'env': ({[key: string]: string});
  'workingDir': (string);
  'user': (string);
  'tty': (boolean);
  'cols': (number);
  'rows': (number);
}
