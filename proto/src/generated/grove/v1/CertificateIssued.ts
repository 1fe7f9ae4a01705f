// Original file: grove.proto


export interface CertificateIssued {
  'certificate'?: (string);
  'error'?: (string);
}

export interface CertificateIssued__Output {
  'certificate': (string);
  'error': (string);
}
