// Join tokens: single use (also when two uses race), expiry, the node name a
// token allows, and the record of each node's current certificate.
import { X509Certificate } from "node:crypto";
import forge from "node-forge";
import { GroveError } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { createCa, newKey } from "./ca";
import { JoinService } from "./join";

const ca = createCa("test-ca");

function csr(commonName: string): string {
  const { keyPem, publicKeyPem } = newKey();
  const req = forge.pki.createCertificationRequest();
  req.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  req.setSubject([{ name: "commonName", value: commonName }]);
  req.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(req);
}

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (err: unknown) => (err instanceof GroveError ? err.code : String(err)),
  );

describe("JoinService", () => {
  let store: MemoryStore;
  let join: JoinService;
  beforeEach(() => {
    store = new MemoryStore();
    join = new JoinService(store, ca);
  });

  it("stores only a hash of the token, and a token works once", async () => {
    const { token } = await join.createToken(60_000, "n1");
    const keys = (await store.list("/grove/join-tokens/")).items.map((kv) => kv.key);
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toContain(token.split(".")[1]);
    const r = await join.join(token, "n1", csr("n1"));
    const cert = new X509Certificate(r.certificatePem);
    expect(cert.subject).toBe("CN=n1\nO=grove:nodes");
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(await codeOf(join.join(token, "n1", csr("n1")))).toBe("Unauthorized");
  });

  it("of two uses at once, exactly one gets a certificate", async () => {
    const { token } = await join.createToken(60_000, "n1");
    const results = await Promise.all([
      codeOf(join.join(token, "n1", csr("n1"))),
      codeOf(join.join(token, "n1", csr("n1"))),
    ]);
    expect(results.sort()).toEqual(["Unauthorized", "ok"]);
  });

  it("refuses an expired token, and a token bound to another name (spending it)", async () => {
    const { token: short } = await join.createToken(1, "n1");
    await new Promise((r) => setTimeout(r, 20));
    expect(await codeOf(join.join(short, "n1", csr("n1")))).toBe("Unauthorized");
    const { token } = await join.createToken(60_000, "n1");
    expect(await codeOf(join.join(token, "n2", csr("n2")))).toBe("Unauthorized");
    expect(await codeOf(join.join(token, "n1", csr("n1")))).toBe("Unauthorized");
  });

  it("names the certificate after the token, not after what the request asks for", async () => {
    const { token } = await join.createToken(60_000, "n1");
    const r = await join.join(token, "n1", csr("admin"));
    expect(new X509Certificate(r.certificatePem).subject).toBe("CN=n1\nO=grove:nodes");
  });

  it("an unbound token cannot take over a node that joined; a bound one replaces its certificate", async () => {
    const first = await join.join((await join.createToken(60_000)).token, "n1", csr("n1"));
    const serial1 = new X509Certificate(first.certificatePem).serialNumber;
    expect(await join.certificateCurrent("n1", serial1)).toBe(true);
    expect(await codeOf(join.join((await join.createToken(60_000)).token, "n1", csr("n1")))).toBe("Conflict");
    const second = await join.join((await join.createToken(60_000, "n1")).token, "n1", csr("n1"));
    const serial2 = new X509Certificate(second.certificatePem).serialNumber;
    expect(await join.certificateCurrent("n1", serial1)).toBe(false);
    expect(await join.certificateCurrent("n1", serial2)).toBe(true);
    await join.revoke("n1");
    expect(await join.certificateCurrent("n1", serial2)).toBe(false);
    // A deleted node may join again with a new token, and its new certificate counts.
    const third = await join.join((await join.createToken(60_000)).token, "n1", csr("n1"));
    expect(await join.certificateCurrent("n1", new X509Certificate(third.certificatePem).serialNumber)).toBe(true);
    // A node of the CA without any record (a store restored without them) is not refused.
    expect(await join.certificateCurrent("n9", "0abc")).toBe(true);
  });

  it("renews for the stream's certificate: same name, new key; the one renewed from counts until a join or revocation", async () => {
    join = new JoinService(store, ca, 9_000);
    const joined = await join.join((await join.createToken(60_000, "n1")).token, "n1", csr("n1"));
    const serial1 = new X509Certificate(joined.certificatePem).serialNumber;
    const renewed = await join.renew("n1", serial1, csr("someone-else"));
    const cert2 = new X509Certificate(renewed.certificatePem);
    expect(cert2.subject).toBe("CN=n1\nO=grove:nodes");
    expect(cert2.serialNumber).not.toBe(serial1);
    // The lifetime given, backdated a tenth of it (not a whole minute): renewal at 2/3 falls after the issue.
    expect(Date.parse(cert2.validTo) - Date.parse(cert2.validFrom)).toBeGreaterThanOrEqual(9_000);
    expect(Date.parse(cert2.validTo) - Date.parse(cert2.validFrom)).toBeLessThanOrEqual(11_000);
    expect(await join.certificateCurrent("n1", cert2.serialNumber)).toBe(true);
    // The answer may have been lost: the old certificate still renews (and only the two count).
    expect(await join.certificateCurrent("n1", serial1)).toBe(true);
    const again = await join.renew("n1", serial1, csr("n1"));
    const serial3 = new X509Certificate(again.certificatePem).serialNumber;
    expect(await join.certificateCurrent("n1", cert2.serialNumber)).toBe(false);
    expect(await codeOf(join.renew("n1", cert2.serialNumber, csr("n1")))).toBe("Unauthorized");
    await join.revoke("n1");
    expect(await join.certificateCurrent("n1", serial1)).toBe(false);
    expect(await join.certificateCurrent("n1", serial3)).toBe(false);
    expect(await codeOf(join.renew("n1", serial3, csr("n1")))).toBe("Unauthorized");
    expect(await codeOf(join.renew("n1", serial3, "not a csr"))).toBe("Unauthorized");
  });

  it("tells a watcher about every change of a node's record (revocations end open streams)", async () => {
    const seen: string[] = [];
    const watch = await join.watchRecords((node) => seen.push(node));
    try {
      await join.join((await join.createToken(60_000, "n1")).token, "n1", csr("n1"));
      await join.revoke("n1");
      await join.revoke("n1"); // already revoked: no write
      for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(seen).toEqual(["n1", "n1"]);
    } finally {
      await watch.close();
    }
  });

  it("refuses bad input naming the field", async () => {
    expect(await codeOf(join.createToken(0))).toBe("BadRequest");
    expect(await codeOf(join.createToken(60_000, "Not_A_Name"))).toBe("BadRequest");
    const { token } = await join.createToken(60_000, "n1");
    await expect(join.join(token, "n1", "not a csr")).rejects.toThrow(/csr: not a PEM certificate request/);
  });
});
