// The cluster CA on disk: made once at first start, private key 0600, kept
// across restarts, and an operator's CA that is not the data directory's refused.
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { caHash, createCa } from "./ca";
import { ensureClusterPki } from "./cluster-pki";

describe("ensureClusterPki", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-unit-pki-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("makes a CA at first start, keeps it afterwards, and signs the server's certificates with it", () => {
    const first = ensureClusterPki(dir, { sans: ["cp.example", "10.1.2.3"] });
    expect(fs.statSync(path.join(dir, "pki")).mode & 0o777).toBe(0o700);
    for (const key of ["ca.key", "server.key", "etcd-server.key", "etcd-client.key"]) {
      expect({ key, mode: fs.statSync(path.join(dir, "pki", key)).mode & 0o777 }).toEqual({ key, mode: 0o600 });
    }
    const ca = new X509Certificate(first.ca.certPem);
    expect(ca.ca).toBe(true);
    const server = new X509Certificate(first.server.certPem);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.subjectAltName).toContain("DNS:cp.example");
    expect(server.subjectAltName).toContain("IP Address:10.1.2.3");
    expect(server.checkIP("127.0.0.1")).toBe("127.0.0.1");
    const again = ensureClusterPki(dir);
    expect(again.ca.certPem).toBe(first.ca.certPem);
    expect(again.caHash).toBe(first.caHash);
    expect(first.caHash).toBe(caHash(first.ca.certPem));
    expect(first.caHash).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("takes an operator's CA, and refuses one that is not the data directory's", () => {
    const mine = createCa("operator-ca");
    fs.writeFileSync(path.join(dir, "op.crt"), mine.certPem);
    fs.writeFileSync(path.join(dir, "op.key"), mine.keyPem);
    const opts = { caCertFile: path.join(dir, "op.crt"), caKeyFile: path.join(dir, "op.key") };
    expect(ensureClusterPki(dir, opts).caHash).toBe(caHash(mine.certPem));
    const other = createCa("another");
    fs.writeFileSync(path.join(dir, "other.crt"), other.certPem);
    fs.writeFileSync(path.join(dir, "other.key"), other.keyPem);
    expect(() =>
      ensureClusterPki(dir, { caCertFile: path.join(dir, "other.crt"), caKeyFile: path.join(dir, "other.key") }),
    ).toThrow(/is not the CA this data directory was set up with/);
    expect(() => ensureClusterPki(dir, { caCertFile: opts.caCertFile })).toThrow(/--ca-cert and --ca-key/);
  });
});
