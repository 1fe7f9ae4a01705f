// The node certificate over time on the agent: when a renewal is due, a
// renewed pair saved so that a crash at any step leaves a matching key and
// certificate, the renewer handing the new pair to the channel's provider and
// retrying a failed renewal, and an expired certificate refused with a clear
// error at start.
import { createPrivateKey, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import forge from "node-forge";
import { pino } from "pino";
import { CertificateRenewer, newCertificateRequest, renewalDue } from "./cert-renewal";
import { loadNodeCredentials, NodeCertificateProvider, nodeCredentials, saveRenewedCertificate } from "./join";

const caKeys = forge.pki.rsa.generateKeyPair(2048);
const caCert = (() => {
  const c = forge.pki.createCertificate();
  c.publicKey = caKeys.publicKey;
  c.serialNumber = "01";
  c.validity.notBefore = new Date(Date.now() - 60_000);
  c.validity.notAfter = new Date(Date.now() + 3_600_000);
  c.setSubject([{ name: "commonName", value: "test-ca" }]);
  c.setIssuer([{ name: "commonName", value: "test-ca" }]);
  c.setExtensions([{ name: "basicConstraints", cA: true }]);
  c.sign(caKeys.privateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(c);
})();

let serial = 16;
/** Signs the request's key as node `name`, valid from `fromMs` to `toMs` (wall clock). */
function sign(csrPem: string, name: string, fromMs: number, toMs: number): string {
  const csr = forge.pki.certificationRequestFromPem(csrPem);
  const c = forge.pki.createCertificate();
  c.publicKey = csr.publicKey!;
  c.serialNumber = (serial++).toString(16);
  c.validity.notBefore = new Date(fromMs);
  c.validity.notAfter = new Date(toMs);
  c.setSubject([
    { name: "commonName", value: name },
    { name: "organizationName", value: "grove:nodes" },
  ]);
  c.setIssuer([{ name: "commonName", value: "test-ca" }]);
  c.sign(caKeys.privateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(c);
}

function stateWith(certPem: string, keyPem: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-certs-unit-"));
  fs.mkdirSync(path.join(dir, "pki"));
  fs.writeFileSync(path.join(dir, "pki", "ca.crt"), caCert);
  fs.writeFileSync(path.join(dir, "pki", "node.key"), keyPem);
  fs.writeFileSync(path.join(dir, "pki", "node.crt"), certPem);
  fs.writeFileSync(path.join(dir, "pki", "grpc-address"), "127.0.0.1:7481\n");
  return dir;
}

const matches = (certPem: string, keyPem: string) =>
  new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));

describe("node certificate renewal (agent)", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it("is due at the given fraction of the certificate's lifetime", () => {
    const { csrPem } = newCertificateRequest("n1");
    const from = Date.now() - 10_000;
    const pem = sign(csrPem, "n1", from, from + 30_000);
    const lifetimeStart = Date.parse(new X509Certificate(pem).validFrom);
    expect(renewalDue(pem, 2 / 3)).toBeCloseTo(lifetimeStart + 20_000, -3);
  });

  it("a crash at any step of saving leaves a matching pair, the new one once its certificate is in place", () => {
    const old = newCertificateRequest("n1");
    const oldPem = sign(old.csrPem, "n1", Date.now() - 1_000, Date.now() + 60_000);
    const fresh = newCertificateRequest("n1");
    const freshPem = sign(fresh.csrPem, "n1", Date.now() - 1_000, Date.now() + 60_000);
    const pki = (d: string) => path.join(d, "pki");

    // Crashed after writing node.next.*: the new pair is taken.
    const a = stateWith(oldPem, old.keyPem);
    dirs.push(a);
    fs.writeFileSync(path.join(pki(a), "node.next.key"), fresh.keyPem);
    fs.writeFileSync(path.join(pki(a), "node.next.crt"), freshPem);
    const la = loadNodeCredentials(a)!;
    expect([la.certPem, matches(la.certPem, la.keyPem)]).toEqual([freshPem, true]);
    expect(fs.existsSync(path.join(pki(a), "node.next.crt"))).toBe(false);

    // Crashed after the key's rename, before the certificate's: still the new pair.
    const b = stateWith(oldPem, fresh.keyPem);
    dirs.push(b);
    fs.writeFileSync(path.join(pki(b), "node.next.crt"), freshPem);
    const lb = loadNodeCredentials(b)!;
    expect([lb.certPem, matches(lb.certPem, lb.keyPem)]).toEqual([freshPem, true]);

    // Crashed while writing node.next.crt (only its temp file): the old pair.
    const c = stateWith(oldPem, old.keyPem);
    dirs.push(c);
    fs.writeFileSync(path.join(pki(c), "node.next.key"), fresh.keyPem);
    fs.writeFileSync(path.join(pki(c), "node.next.crt.tmp"), freshPem.slice(0, 100));
    const lc = loadNodeCredentials(c)!;
    expect([lc.certPem, matches(lc.certPem, lc.keyPem)]).toEqual([oldPem, true]);

    // The whole save.
    saveRenewedCertificate(c, freshPem, fresh.keyPem);
    const ld = loadNodeCredentials(c)!;
    expect([ld.certPem, ld.keyPem]).toEqual([freshPem, fresh.keyPem]);
    expect(fs.statSync(path.join(pki(c), "node.key")).mode & 0o777).toBe(0o600);
  });

  it("renews when due, saves the pair and hands it to the provider; retries a failed renewal", async () => {
    const first = newCertificateRequest("n1");
    // Issued 9 s ago, valid 10 s: due at once (60-70 % of its lifetime).
    const firstPem = sign(first.csrPem, "n1", Date.now() - 9_000, Date.now() + 1_000);
    const dir = stateWith(firstPem, first.keyPem);
    dirs.push(dir);
    const provider = new NodeCertificateProvider(loadNodeCredentials(dir)!);
    const seen: Buffer[] = [];
    provider.addIdentityCertificateListener((u) => u && seen.push(u.certificate));
    let calls = 0;
    const renewer = new CertificateRenewer({
      stateDir: dir,
      nodeName: "n1",
      provider,
      renew: async (csrPem) => {
        if (++calls === 1) throw new Error("no registered stream");
        return sign(csrPem, "n1", Date.now() - 1_000, Date.now() + 3_600_000);
      },
      logger: pino({ level: "silent" }),
    });
    renewer.start();
    try {
      for (let i = 0; i < 400 && provider.current.certPem === firstPem; i++)
        await new Promise((r) => setTimeout(r, 50));
    } finally {
      renewer.stop();
    }
    expect(calls).toBe(2);
    const now = provider.current;
    expect(now.certPem).not.toBe(firstPem);
    expect(matches(now.certPem, now.keyPem)).toBe(true);
    expect(loadNodeCredentials(dir)!.certPem).toBe(now.certPem);
    expect(seen.map((b) => b.toString())).toEqual([firstPem, now.certPem]);
  }, 30_000);

  it("refuses to start on an expired certificate, saying how to join again", async () => {
    const req = newCertificateRequest("n1");
    const dir = stateWith(sign(req.csrPem, "n1", Date.now() - 20_000, Date.now() - 10_000), req.keyPem);
    dirs.push(dir);
    await expect(
      nodeCredentials({ server: "https://127.0.0.1:1", stateDir: dir, nodeName: "n1" }, { info: () => undefined }),
    ).rejects.toThrow(/certificate expired at .* \(it was not renewed\): join again .*grove token create --node n1/);
  });
});
