// The cluster CA: created at grove-server's first start under <data-dir>/pki
// (or supplied by the operator), it signs grove-server's own serving and etcd
// certificates and the agents' node certificates. Keys are made with node's
// crypto; node-forge builds and signs the X.509 structures (node can read
// certificates but not write them).

import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
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
function validity(cert: forge.pki.Certificate, validForMs: number): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - (validForMs > 0 ? Math.min(60_000, validForMs / 10) : 60_000));
  cert.validity.notAfter = new Date(now + validForMs);
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
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/** Signs a certificate for `req` with the CA. */
export function issueCertificate(ca: KeyPair, req: CertificateRequest): string {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = forge.pki.createCertificate();
  cert.serialNumber = serial();
  cert.publicKey = forge.pki.publicKeyFromPem(req.publicKeyPem);
  validity(cert, req.validForMs);
  cert.setSubject(subject(req.commonName, req.organization));
  cert.setIssuer(caCert.subject.attributes);
  const extensions: object[] = [
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    {
      name: "extKeyUsage",
      serverAuth: req.usage !== "client",
      clientAuth: req.usage !== "server",
    },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ];
  if (req.sans?.length) {
    extensions.push({
      name: "subjectAltName",
      altNames: req.sans.map((s) => (isIP(s) ? { type: 7, ip: s } : { type: 2, value: s })),
    });
  }
  cert.setExtensions(extensions);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** A fresh key and a certificate for it, signed by the CA. */
export function issueKeyPair(ca: KeyPair, req: Omit<CertificateRequest, "publicKeyPem">): KeyPair {
  const { keyPem, publicKeyPem } = newKey();
  return { certPem: issueCertificate(ca, { ...req, publicKeyPem }), keyPem };
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
  if (!csr.verify()) throw new Error("csr: its signature does not match its public key");
  if (!csr.publicKey) throw new Error("csr: no public key");
  return issueCertificate(ca, {
    commonName: nodeName,
    organization: NODE_ORGANIZATION,
    publicKeyPem: forge.pki.publicKeyToPem(csr.publicKey as forge.pki.rsa.PublicKey),
    usage: "client",
    validForMs,
  });
}
