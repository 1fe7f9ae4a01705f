// The certificates the CA issues: node's crypto signs what node-forge lays
// out, and the result must be the very bytes node-forge's own (JavaScript)
// signing made before, since PKCS#1 v1.5 signatures are deterministic.
import { createPrivateKey, X509Certificate } from "node:crypto";
import forge from "node-forge";
import { createCa, issueCertificate, newKey, signCertificate, signNodeCsr, unsignedCertificate } from "./ca";

const ca = createCa("test-ca");

function forgeSigned(cert: forge.pki.Certificate): string {
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

describe("issuing with node's crypto", () => {
  it.each([
    ["a node's client certificate", { commonName: "n1", organization: "grove:nodes", usage: "client" as const }],
    [
      "a server certificate with DNS and IP names",
      { commonName: "grove-server", usage: "server" as const, sans: ["localhost", "127.0.0.1", "::1"] },
    ],
  ])("%s is byte for byte what node-forge signed", (_what, fields) => {
    const req = { ...fields, publicKeyPem: newKey().publicKeyPem, validForMs: 3_600_000 };
    const fixed = { serialNumber: "01" + "ab".repeat(15), now: 1_800_000_000_000 };
    const native = unsignedCertificate(ca, req, fixed);
    signCertificate(native, createPrivateKey(ca.keyPem));
    expect(forge.pki.certificateToPem(native)).toBe(forgeSigned(unsignedCertificate(ca, req, fixed)));
  });

  it("issues a certificate the CA verifiably signed, valid now", () => {
    const pem = issueCertificate(ca, {
      commonName: "n2",
      organization: "grove:nodes",
      publicKeyPem: newKey().publicKeyPem,
      usage: "client",
      validForMs: 60_000,
    });
    const cert = new X509Certificate(pem);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(cert.validTo)).toBeGreaterThan(Date.now());
  });

  it("signs a node's request with the name it is given, and refuses a request whose signature is wrong", () => {
    const { keyPem, publicKeyPem } = newKey();
    const req = forge.pki.createCertificationRequest();
    req.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
    req.setSubject([{ name: "commonName", value: "asked-for" }]);
    req.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
    const good = forge.pki.certificationRequestToPem(req);
    expect(new X509Certificate(signNodeCsr(ca, good, "n3", 60_000)).subject).toBe("CN=n3\nO=grove:nodes");
    // The same request with another node's key in it: its signature no longer matches.
    req.publicKey = forge.pki.publicKeyFromPem(newKey().publicKeyPem);
    (req as typeof req & { certificationRequestInfo: unknown }).certificationRequestInfo = null;
    const forged = forge.pki.certificationRequestToPem(req);
    expect(() => signNodeCsr(ca, forged, "n3", 60_000)).toThrow("csr: its signature does not match its public key");
  });
});
