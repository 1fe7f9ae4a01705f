// `grove-server rotate-encryption-key`: adds a new key-encryption key, makes
// it the primary one, and re-encrypts every Secret under it. Against a
// running cluster give --etcd-endpoints (running servers read the new key
// from the file when they meet it); without, the data dir's embedded etcd is
// started for the rotation (grove-server must be stopped).
import * as fs from "node:fs";
import * as path from "node:path";
import type { Logger } from "pino";
import { EmbeddedEtcd } from "../etcd/embedded-etcd";
import { ensureClusterPki } from "../pki/cluster-pki";
import type { EtcdClientTls } from "../store/etcd-store";
import { createStore } from "../store/etcd-store";
import { KeyRing } from "./key-ring";
import { SecretService } from "./secret-store";
import { encryptionKeyFileOf } from "./setup";

export interface RotateOptions {
  dataDir: string;
  encryptionKeyFile?: string;
  etcdEndpoints: string[];
  etcdPort?: number;
  /** TLS to an external etcd; default: grove-server's own etcd client certificate in the data dir. */
  etcdTls?: EtcdClientTls;
  logger: Logger;
}

/** grove-server's etcd client certificate (pki/etcd-client.*), read as it is: a running server keeps using it. */
function dataDirEtcdTls(dataDir: string): EtcdClientTls | undefined {
  const pki = path.join(dataDir, "pki");
  const read = (f: string) => fs.readFileSync(path.join(pki, f), "utf8");
  if (!fs.existsSync(path.join(pki, "etcd-client.key"))) return undefined;
  return { caPem: read("ca.crt"), certPem: read("etcd-client.crt"), keyPem: read("etcd-client.key") };
}

export async function rotateEncryptionKey(opts: RotateOptions): Promise<{ keyId: string; reencrypted: number }> {
  let etcd: EmbeddedEtcd | undefined;
  let endpoints = opts.etcdEndpoints;
  let tls = opts.etcdTls ?? dataDirEtcdTls(opts.dataDir);
  if (endpoints.length === 0) {
    // grove-server is stopped: its embedded etcd, with the certificates it would use.
    const pki = ensureClusterPki(opts.dataDir);
    const client = { caPem: pki.ca.certPem, certPem: pki.etcdClient.certPem, keyPem: pki.etcdClient.keyPem };
    tls = client;
    etcd = new EmbeddedEtcd({
      dataDir: opts.dataDir,
      clientPort: opts.etcdPort ?? 2479,
      logger: opts.logger,
      tls: { server: { caFile: pki.caFile, ...pki.etcdServer }, client },
    });
    await etcd.start();
    endpoints = etcd.endpoints;
  }
  const store = createStore(endpoints, { logger: opts.logger, ...(tls ? { tls } : {}) });
  try {
    const ring = KeyRing.openOrCreate(encryptionKeyFileOf(opts));
    const keyId = ring.rotate();
    const reencrypted = await new SecretService(store, ring).reencryptAll();
    return { keyId, reencrypted };
  } finally {
    await store.close();
    await etcd?.stop();
  }
}
