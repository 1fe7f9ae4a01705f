// `grove-server rotate-encryption-key`: adds a new key-encryption key, makes
// it the primary one, and re-encrypts every Secret under it. Against a
// running cluster give --etcd-endpoints (running servers read the new key
// from the file when they meet it); without, the data dir's embedded etcd is
// started for the rotation (grove-server must be stopped).
import type { Logger } from "pino";
import { EmbeddedEtcd } from "../etcd/embedded-etcd";
import { createStore } from "../store/etcd-store";
import { KeyRing } from "./key-ring";
import { SecretService } from "./secret-store";
import { encryptionKeyFileOf } from "./setup";

export interface RotateOptions {
  dataDir: string;
  encryptionKeyFile?: string;
  etcdEndpoints: string[];
  etcdPort?: number;
  logger: Logger;
}

export async function rotateEncryptionKey(opts: RotateOptions): Promise<{ keyId: string; reencrypted: number }> {
  let etcd: EmbeddedEtcd | undefined;
  let endpoints = opts.etcdEndpoints;
  if (endpoints.length === 0) {
    etcd = new EmbeddedEtcd({ dataDir: opts.dataDir, clientPort: opts.etcdPort ?? 2479, logger: opts.logger });
    await etcd.start();
    endpoints = etcd.endpoints;
  }
  const store = createStore(endpoints, { logger: opts.logger });
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
