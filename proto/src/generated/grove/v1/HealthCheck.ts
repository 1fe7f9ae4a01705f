// Original file: grove.proto


export interface HealthCheck {
  'httpPort'?: (number);
  'httpPath'?: (string);
  'httpStatusMin'?: (number);
  'httpStatusMax'?: (number);
  'tcpPort'?: (number);
  'execCommand'?: (string)[];
  'initialDelaySeconds'?: (number);
  'periodSeconds'?: (number);
  'timeoutSeconds'?: (number);
  'successThreshold'?: (number);
  'failureThreshold'?: (number);
}

export interface HealthCheck__Output {
  'httpPort': (number);
  'httpPath': (string);
  'httpStatusMin': (number);
  'httpStatusMax': (number);
  'tcpPort': (number);
  'execCommand': (string)[];
  'initialDelaySeconds': (number);
  'periodSeconds': (number);
  'timeoutSeconds': (number);
  'successThreshold': (number);
  'failureThreshold': (number);
}
