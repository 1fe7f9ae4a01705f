// grove-server's certificates on disk, under <data-dir>/pki (mode 0700):
//   ca.crt, ca.key (0600)          the cluster CA, made at first start unless the operator gives one
//   server.crt, server.key         HTTPS API and agent gRPC (re-issued at every start: SANs follow the flags)
//   etcd-server.crt/.key           the embedded etcd's client and peer ports
//   etcd-client.crt/.key           grove-server's client certificate for etcd (only grove-server holds one)

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { caHash, createCa, issueKeyPair, type KeyPair, SERVER_COMMON_NAME } from "./ca";

export interface ClusterPkiOptions {
  /** Extra names and addresses the serving certificate is valid for (besides localhost, 127.0.0.1, ::1 and the host name). */
  sans?: string[];
  /** An operator's CA (PEM files): used instead of creating one. */
  caCertFile?: string;
  caKeyFile?: string;
  /** How long the etcd certificates are valid (default 1 year; re-issued at each start). */
  validForMs?: number;
  /**
   * How long the serving certificate (HTTPS API, agents' gRPC) is valid
   * (default 1 year): re-issued at each start, and by renewServingCertificate
   * while the server runs.
   */
  servingValidForMs?: number;
}

export interface ClusterPki {
  dir: string;
  ca: KeyPair;
  /** "sha256:<hex>" of the CA's public key: what `grove-agent --ca-hash` pins. */
  caHash: string;
  caFile: string;
  server: KeyPair;
  /** The names and addresses the serving certificate is valid for. */
  sans: string[];
  servingValidForMs: number;
  etcdServer: { certFile: string; keyFile: string };
  etcdClient: KeyPair & { certFile: string; keyFile: string };
}

const YEAR_MS = 365 * 86_400_000;

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Writes atomically (temp file, then rename) so a crash never leaves half a key. */
function writeFile(file: string, data: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

function loadOrCreateCa(dir: string, o: ClusterPkiOptions): KeyPair {
  const certFile = path.join(dir, "ca.crt");
  const keyFile = path.join(dir, "ca.key");
  if (o.caCertFile || o.caKeyFile) {
    if (!o.caCertFile || !o.caKeyFile) throw new Error("--ca-cert and --ca-key must be given together");
    const ca = { certPem: fs.readFileSync(o.caCertFile, "utf8"), keyPem: fs.readFileSync(o.caKeyFile, "utf8") };
    const stored = readIfExists(certFile);
    if (stored !== undefined && caHash(stored) !== caHash(ca.certPem)) {
      throw new Error(
        `--ca-cert ${o.caCertFile} is not the CA this data directory was set up with (${certFile}); ` +
          "certificates it issued would no longer be trusted",
      );
    }
    writeFile(certFile, ca.certPem, 0o644);
    writeFile(keyFile, ca.keyPem, 0o600);
    return ca;
  }
  const certPem = readIfExists(certFile);
  const keyPem = readIfExists(keyFile);
  if (certPem && keyPem) {
    // The key must stay private: tighten it if someone loosened it.
    if ((fs.statSync(keyFile).mode & 0o077) !== 0) fs.chmodSync(keyFile, 0o600);
    return { certPem, keyPem };
  }
  if (certPem || keyPem)
    throw new Error(`${dir} holds only one of ca.crt and ca.key: restore the other or remove both`);
  const ca = createCa();
  writeFile(keyFile, ca.keyPem, 0o600);
  writeFile(certFile, ca.certPem, 0o644);
  return ca;
}

/** Loads the cluster CA (creating it at first start) and issues grove-server's own certificates. */
export function ensureClusterPki(dataDir: string, o: ClusterPkiOptions = {}): ClusterPki {
  const dir = path.join(dataDir, "pki");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const ca = loadOrCreateCa(dir, o);
  const validForMs = o.validForMs ?? YEAR_MS;
  const sans = [...new Set(["localhost", "127.0.0.1", "::1", os.hostname(), ...(o.sans ?? [])])].filter(Boolean);
  const servingValidForMs = o.servingValidForMs ?? YEAR_MS;
  const server = issueServingCertificate(dir, ca, sans, servingValidForMs);
  const etcdServer = issueKeyPair(ca, {
    commonName: "grove-etcd",
    sans: ["localhost", "127.0.0.1"],
    usage: "server-and-client", // etcd's peer port is both
    validForMs,
  });
  const etcdServerFiles = { certFile: path.join(dir, "etcd-server.crt"), keyFile: path.join(dir, "etcd-server.key") };
  writeFile(etcdServerFiles.certFile, etcdServer.certPem, 0o644);
  writeFile(etcdServerFiles.keyFile, etcdServer.keyPem, 0o600);
  const etcdClient = issueKeyPair(ca, { commonName: SERVER_COMMON_NAME, usage: "client", validForMs });
  const etcdClientFiles = { certFile: path.join(dir, "etcd-client.crt"), keyFile: path.join(dir, "etcd-client.key") };
  writeFile(etcdClientFiles.certFile, etcdClient.certPem, 0o644);
  writeFile(etcdClientFiles.keyFile, etcdClient.keyPem, 0o600);
  return {
    dir,
    ca,
    caHash: caHash(ca.certPem),
    caFile: path.join(dir, "ca.crt"),
    server,
    sans,
    servingValidForMs,
    etcdServer: etcdServerFiles,
    etcdClient: { ...etcdClient, ...etcdClientFiles },
  };
}

/** A new serving certificate with a fresh key, written to <pki>/server.crt and server.key. */
export function issueServingCertificate(dir: string, ca: KeyPair, sans: string[], validForMs: number): KeyPair {
  const server = issueKeyPair(ca, { commonName: SERVER_COMMON_NAME, sans, usage: "server", validForMs });
  // Key first: a reader that sees the new certificate finds its key.
  writeFile(path.join(dir, "server.key"), server.keyPem, 0o600);
  writeFile(path.join(dir, "server.crt"), server.certPem, 0o644);
  return server;
}
