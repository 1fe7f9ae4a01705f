// The cluster CA: created at grove-server's first start under <data-dir>/pki
// (or supplied by the operator), it signs grove-server's own serving and etcd
// certificates and the agents' node certificates. Keys are made with node's
// crypto; node-forge builds and signs the X.509 structures (node can read
// certificates but not write them). The RSA signature itself is node's
// (OpenSSL): node-forge's RSA in JavaScript took about 150 ms a certificate,
// which held joining to a few nodes a second; node-forge still lays out the
// certificate, so its bytes are the same as before (PKCS#1 v1.5 signatures are
// deterministic: ca.test.ts compares the two paths byte for byte).

import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
  X509Certificate,
} from "node:crypto";
import { isIP } from "node:net";
import forge from "node-forge";

/** The Organization every node certificate carries (as Kubernetes' system:nodes). */
export const NODE_ORGANIZATION = "grove:nodes";
/** The Common Name of grove-server's own client certificates (etcd). */
export const SERVER_COMMON_NAME = "grove-server";

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface CertificateRequest {
  commonName: string;
  organization?: string;
  /** The subject's public key (PEM, SPKI). */
  publicKeyPem: string;
  /** DNS names and IP addresses the certificate is valid for (servers). */
  sans?: string[];
  usage: "server" | "client" | "server-and-client";
  validForMs: number;
}

/** A fresh private key: RSA 2048 (node-forge signs RSA only), PEM PKCS#8 and the public SPKI. */
export function newKey(): { keyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/**
 * The CA's pin as kubeadm prints it: "sha256:" and the hex SHA-256 of the
 * certificate's DER SubjectPublicKeyInfo. It survives re-issuing the CA
 * certificate with the same key.
 */
export function caHash(caCertPem: string): string {
  const spki = new X509Certificate(caCertPem).publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}

function serial(): string {
  // Positive, 16 random bytes: unique without a counter to keep.
  return "01" + randomBytes(15).toString("hex");
}

function subject(commonName: string, organization?: string): forge.pki.CertificateField[] {
  const s: forge.pki.CertificateField[] = [{ name: "commonName", value: commonName }];
  if (organization) s.push({ name: "organizationName", value: organization });
  return s;
}

/**
 * Backdated a minute (a tenth of a short lifetime) so a node whose clock is
 * slightly behind accepts it, while a renewal at two thirds of the lifetime
 * still falls after the issue.
 */
function validity(cert: forge.pki.Certificate, validForMs: number, now = Date.now()): void {
  cert.validity.notBefore = new Date(now - (validForMs > 0 ? Math.min(60_000, validForMs / 10) : 60_000));
  cert.validity.notAfter = new Date(now + validForMs);
}

/** sha256WithRSAEncryption: the algorithm both the CA and node-forge's cert.sign(key, sha256) name. */
const SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
/** node-forge's DER of a certificate's to-be-signed part (in its JavaScript API, not in its typings). */
const getTbsCertificate = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 })
  .getTBSCertificate;

/**
 * Signs `cert` with SHA-256 and RSA as node-forge's cert.sign(key, sha256)
 * does (same algorithm fields, same DER of the to-be-signed part), with the
 * signature computed by node's crypto.
 */
export function signCertificate(cert: forge.pki.Certificate, key: KeyObject): void {
  cert.siginfo.algorithmOid = SHA256_WITH_RSA;
  (cert as { signatureOid: string }).signatureOid = SHA256_WITH_RSA;
  const tbs = getTbsCertificate(cert);
  const der = Buffer.from(forge.asn1.toDer(tbs).getBytes(), "binary");
  // forge's certificateToAsn1 reuses the part that was signed, as after cert.sign.
  (cert as forge.pki.Certificate & { tbsCertificate: forge.asn1.Asn1 }).tbsCertificate = tbs;
  cert.signature = sign("sha256", der, key).toString("binary");
}

/** What issuing with one CA needs, parsed once per CA (a join used to parse both PEMs each time). */
interface ParsedCa {
  issuer: forge.pki.CertificateField[];
  keyIdentifier: string;
  key: KeyObject;
}
const parsedCas = new WeakMap<KeyPair, ParsedCa>();

function parsedCa(ca: KeyPair): ParsedCa {
  let parsed = parsedCas.get(ca);
  if (!parsed) {
    const caCert = forge.pki.certificateFromPem(ca.certPem);
    parsed = {
      issuer: caCert.subject.attributes,
      keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(),
      key: createPrivateKey(ca.keyPem),
    };
    parsedCas.set(ca, parsed);
  }
  return parsed;
}

/** Creates a self-signed CA (10 years by default). */
export function createCa(commonName = "grove-ca", validForMs = 10 * 365 * 86_400_000): KeyPair {
  const { keyPem, publicKeyPem } = newKey();
  const cert = forge.pki.createCertificate();
  cert.serialNumber = serial();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  validity(cert, validForMs);
  cert.setSubject(subject(commonName));
  cert.setIssuer(subject(commonName));
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  signCertificate(cert, createPrivateKey(keyPem));
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/** Signs a certificate for `req` with the CA. */
export function issueCertificate(ca: KeyPair, req: CertificateRequest): string {
  const cert = unsignedCertificate(ca, req);
  signCertificate(cert, parsedCa(ca).key);
  return forge.pki.certificateToPem(cert);
}

/**
 * The certificate issueCertificate signs, before signing (exported for
 * ca.test.ts, which signs it both ways). `serialNumber` and `now` fix what
 * is otherwise fresh each time.
 */
export function unsignedCertificate(
  ca: KeyPair,
  req: CertificateRequest,
  fixed?: { serialNumber: string; now: number },
): forge.pki.Certificate {
  const { issuer, keyIdentifier } = parsedCa(ca);
  const cert = forge.pki.createCertificate();
  cert.serialNumber = fixed?.serialNumber ?? serial();
  cert.publicKey = forge.pki.publicKeyFromPem(req.publicKeyPem);
  validity(cert, req.validForMs, fixed?.now);
  cert.setSubject(subject(req.commonName, req.organization));
  cert.setIssuer(issuer);
  const extensions: object[] = [
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    {
      name: "extKeyUsage",
      serverAuth: req.usage !== "client",
      clientAuth: req.usage !== "server",
    },
    { name: "authorityKeyIdentifier", keyIdentifier },
  ];
  if (req.sans?.length) {
    extensions.push({
      name: "subjectAltName",
      altNames: req.sans.map((s) => (isIP(s) ? { type: 7, ip: s } : { type: 2, value: s })),
    });
  }
  cert.setExtensions(extensions);
  return cert;
}

/** A fresh key and a certificate for it, signed by the CA. */
export function issueKeyPair(ca: KeyPair, req: Omit<CertificateRequest, "publicKeyPem">): KeyPair {
  const { keyPem, publicKeyPem } = newKey();
  return { certPem: issueCertificate(ca, { ...req, publicKeyPem }), keyPem };
}

/** The digests of the RSA (PKCS#1 v1.5) request signatures accepted, by signature algorithm OID. */
const REQUEST_DIGESTS: Record<string, string> = {
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
};

/**
 * Whether the request is signed by its own key, checked by node's crypto
 * (node-forge's csr.verify threw "Encryption block is invalid" for a wrong
 * signature instead of saying so, and costs more).
 */
function requestSignatureValid(csr: forge.pki.CertificateSigningRequest, publicKeyPem: string): boolean {
  const digest = REQUEST_DIGESTS[csr.signatureOid ?? ""];
  if (!digest) throw new Error(`csr: signature algorithm ${csr.signatureOid} is not RSA with SHA-256, -384 or -512`);
  const info = (csr as typeof csr & { certificationRequestInfo?: forge.asn1.Asn1 }).certificationRequestInfo;
  if (!info) throw new Error("csr: no certification request info");
  const der = Buffer.from(forge.asn1.toDer(info).getBytes(), "binary");
  return verify(digest, der, publicKeyPem, Buffer.from(csr.signature as string, "binary"));
}

/**
 * Signs a node's certificate request. Only the request's public key is used
 * (after checking the request is signed by its key): the name comes from the
 * join token, never from what the node asked for.
 */
export function signNodeCsr(ca: KeyPair, csrPem: string, nodeName: string, validForMs: number): string {
  let csr: ReturnType<typeof forge.pki.certificationRequestFromPem>;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (err) {
    throw new Error(`csr: not a PEM certificate request (${(err as Error).message})`);
  }
  if (!csr.publicKey) throw new Error("csr: no public key");
  const publicKeyPem = forge.pki.publicKeyToPem(csr.publicKey as forge.pki.rsa.PublicKey);
  if (!requestSignatureValid(csr, publicKeyPem)) throw new Error("csr: its signature does not match its public key");
  return issueCertificate(ca, {
    commonName: nodeName,
    organization: NODE_ORGANIZATION,
    publicKeyPem,
    usage: "client",
    validForMs,
  });
}
