// Secrets in the store: values only ever in an Envelope (key-ring.ts), the
// keys of the data map with them, so even key names are not plaintext in etcd.
import { randomUUID } from "node:crypto";
import { API_VERSION, GroveError, type Secret } from "@grove/api";
import { Keys, type KeyValue, type Store } from "../store/store";
import type { Envelope, KeyRing } from "./key-ring";

/** A Secret as etcd holds it. */
export interface StoredSecret {
  apiVersion: typeof API_VERSION;
  kind: "Secret";
  metadata: Secret["metadata"];
  encrypted: Envelope;
}

export const SECRETS = "secrets";

export function secretKey(namespace: string, name: string): string {
  return Keys.object(SECRETS, namespace, name);
}

export class SecretService {
  constructor(
    readonly store: Store,
    readonly ring: KeyRing,
  ) {}

  /** The values of a stored Secret. */
  open(key: string, s: StoredSecret): Record<string, string> {
    return JSON.parse(this.ring.decrypt(s.encrypted, key).toString("utf8")) as Record<string, string>;
  }

  seal(key: string, data: Record<string, string>): Envelope {
    return this.ring.encrypt(Buffer.from(JSON.stringify(data)), key);
  }

  /** The API's view: keys always, values only when asked for (and allowed). */
  view(kv: KeyValue<StoredSecret>, withValues: boolean): Secret {
    const data = this.open(kv.key, kv.value);
    return {
      apiVersion: API_VERSION,
      kind: "Secret",
      metadata: { ...kv.value.metadata, resourceVersion: kv.modRevision },
      keys: Object.keys(data).sort(),
      ...(withValues ? { data } : {}),
    };
  }

  async get(namespace: string, name: string): Promise<KeyValue<StoredSecret>> {
    const kv = await this.store.get<StoredSecret>(secretKey(namespace, name));
    if (!kv) throw new GroveError("NotFound", `Secret ${namespace}/${name} not found`);
    return kv;
  }

  async list(namespace?: string): Promise<{ items: KeyValue<StoredSecret>[]; revision: string }> {
    const r = await this.store.list<StoredSecret>(Keys.collection(SECRETS, namespace));
    return { items: r.items, revision: r.revision };
  }

  /** Creates or replaces; answers whether it was created. */
  async apply(s: Secret, createOnly: boolean): Promise<{ kv: KeyValue<StoredSecret>; created: boolean }> {
    const ns = s.metadata.namespace ?? "default";
    const key = secretKey(ns, s.metadata.name);
    const cur = await this.store.get<StoredSecret>(key);
    if (cur && createOnly) throw new GroveError("AlreadyExists", `Secret ${ns}/${s.metadata.name} already exists`);
    const want = s.metadata.resourceVersion;
    if (cur && want !== undefined && want !== cur.modRevision) {
      throw new GroveError("Conflict", `Secret ${ns}/${s.metadata.name} changed: resourceVersion ${want} is stale`);
    }
    const metadata: Secret["metadata"] = {
      name: s.metadata.name,
      namespace: ns,
      ...(s.metadata.labels ? { labels: s.metadata.labels } : {}),
      uid: cur?.value.metadata.uid ?? randomUUID(),
      generation: (cur?.value.metadata.generation ?? 0) + 1,
      creationTimestamp: cur?.value.metadata.creationTimestamp ?? new Date().toISOString(),
    };
    const value: StoredSecret = {
      apiVersion: API_VERSION,
      kind: "Secret",
      metadata,
      encrypted: this.seal(key, s.data ?? {}),
    };
    const rev = cur ? await this.store.update(key, value, cur.modRevision) : await this.store.create(key, value);
    return { kv: { key, value, modRevision: rev } as KeyValue<StoredSecret>, created: !cur };
  }

  async delete(namespace: string, name: string): Promise<KeyValue<StoredSecret>> {
    const kv = await this.get(namespace, name);
    await this.store.delete(kv.key, kv.modRevision);
    return kv;
  }

  /**
   * Re-encrypts every Secret not yet under the primary key (after a
   * rotation). Each rewrite compares the revision it read, so a concurrent
   * write wins and is already under the new key. Answers how many it rewrote.
   */
  async reencryptAll(): Promise<number> {
    let n = 0;
    // A Secret written meanwhile fails its compare; the next pass sees it (already under the new key).
    for (let pass = 0; pass < 5; pass++) {
      const primary = this.ring.primaryId;
      const stale = (await this.list()).items.filter((kv) => kv.value.encrypted.keyId !== primary);
      if (stale.length === 0) break;
      for (const kv of stale) {
        const value: StoredSecret = { ...kv.value, encrypted: this.seal(kv.key, this.open(kv.key, kv.value)) };
        const r = await this.store.txn(
          [{ key: kv.key, modRevision: kv.modRevision }],
          [{ type: "put", key: kv.key, value }],
        );
        if (r.succeeded) n++;
      }
    }
    return n;
  }
}
