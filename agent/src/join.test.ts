// The certificate request an agent sends when it joins or renews: signed by
// node's crypto, it must be the very bytes node-forge's own (JavaScript)
// csr.sign made before (PKCS#1 v1.5 signatures are deterministic), and a
// request the server's parser verifies.
import forge from "node-forge";
import { certificateRequest, newNodeKey } from "./join";

describe("certificateRequest", () => {
  const key = newNodeKey();

  it("is byte for byte the request node-forge signed", () => {
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.publicKeyFromPem(key.publicKeyPem);
    csr.setSubject([{ name: "commonName", value: "node-1" }]);
    csr.sign(forge.pki.privateKeyFromPem(key.keyPem), forge.md.sha256.create());
    expect(certificateRequest("node-1", key)).toBe(forge.pki.certificationRequestToPem(csr));
  });

  it("verifies against its own public key and names the node", () => {
    const parsed = forge.pki.certificationRequestFromPem(certificateRequest("node-2", key));
    expect(parsed.verify()).toBe(true);
    expect(parsed.subject.getField("CN").value).toBe("node-2");
  });
});
