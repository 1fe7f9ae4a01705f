// Original file: grove.proto


export interface RenewCertificate {
  'csr'?: (string);
}

export interface RenewCertificate__Output {
  'csr': (string);
}
