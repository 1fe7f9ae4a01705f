// Original file: grove.proto


export interface EgressRule {
  'cidr'?: (string);
  'protocol'?: (string);
  'portFirst'?: (number);
  'portLast'?: (number);
}

export interface EgressRule__Output {
  'cidr': (string);
  'protocol': (string);
  'portFirst': (number);
  'portLast': (number);
}
