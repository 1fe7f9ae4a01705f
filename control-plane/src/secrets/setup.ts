// Secrets and audit for grove-server: the key ring (created at first start),
// the Secret service, the env resolver the agent gateway uses, and the audit
// log. Kept here so server.ts wires them in a few lines.
import * as path from "node:path";
import type { Logger } from "pino";
import type { Instance } from "@grove/api";
import { AuditLog } from "../auth/audit";
import type { Informer } from "../controllers/informer";
import type { Store } from "../store/store";
import { ENCRYPTION_KEYS_FILE, KeyRing } from "./key-ring";
import { SecretEnvResolver } from "./env-resolver";
import { SecretService } from "./secret-store";

export interface TenancyOptions {
  dataDir: string;
  /** Key-encryption keys (default: <dataDir>/encryption-keys.json, created 0600 at first start). */
  encryptionKeyFile?: string;
  /** Audit log file (default: <dataDir>/audit.log); false: none. */
  auditLog?: string | false;
}

export interface Tenancy {
  secrets: SecretService;
  resolver: SecretEnvResolver;
  audit?: AuditLog;
  close(): Promise<void>;
}

export function encryptionKeyFileOf(opts: { dataDir: string; encryptionKeyFile?: string }): string {
  return opts.encryptionKeyFile ?? path.join(opts.dataDir, ENCRYPTION_KEYS_FILE);
}

/**
 * Starts the Secrets' informer; `onChange` runs when a Secret changes (the
 * gateway then sends nodes whose sets changed their new set).
 */
export async function startTenancy(
  opts: TenancyOptions,
  store: Store,
  instances: Informer<Instance>,
  logger: Logger,
  onChange: () => void,
): Promise<Tenancy> {
  const ring = KeyRing.openOrCreate(encryptionKeyFileOf(opts));
  const secrets = new SecretService(store, ring);
  const resolver = new SecretEnvResolver(store, secrets, logger);
  resolver.informer.on(() => onChange());
  instances.on((ev) => {
    if (ev.type === "deleted") resolver.prune(instances.list());
  });
  await resolver.start();
  const audit =
    opts.auditLog === false ? undefined : new AuditLog({ file: opts.auditLog ?? path.join(opts.dataDir, "audit.log") });
  return {
    secrets,
    resolver,
    ...(audit ? { audit } : {}),
    close: async () => {
      await resolver.stop();
      audit?.close();
    },
  };
}
