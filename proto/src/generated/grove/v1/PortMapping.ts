// Original file: grove.proto


export interface PortMapping {
  'name'?: (string);
  'protocol'?: (string);
  'containerPort'?: (number);
  'hostPort'?: (number);
}

export interface PortMapping__Output {
  'name': (string);
  'protocol': (string);
  'containerPort': (number);
  'hostPort': (number);
}
