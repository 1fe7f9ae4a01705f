// Turns an Instance's env (literals and Secret references) into the plain
// strings its agent is sent. Runs only where the desired set is built for one
// node (grpc/agent-gateway.ts), so a value leaves the control plane only
// towards the node that runs the instance, and is never written to an App,
// an Instance, a status or a log line.
import type { Logger } from "pino";
import { InstanceReason, isFinished, secretRefOf, type Instance } from "@grove/api";
import { Informer, objectKey } from "../controllers/informer";
import { Keys, type Store } from "../store/store";
import { SECRETS, secretKey, type SecretService, type StoredSecret } from "./secret-store";

/** The env an agent gets for an instance, or undefined when it cannot be sent yet. */
export type EnvResolver = (inst: Instance) => Record<string, string> | undefined;

/** Literal values only (no Secrets configured): a reference cannot be resolved. */
export const literalEnv: EnvResolver = (inst) => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(inst.spec.env ?? {})) {
    if (secretRefOf(v)) return undefined;
    out[k] = v as string;
  }
  return out;
};

export class SecretEnvResolver {
  readonly informer: Informer<StoredSecret>;
  /** Opened values by "ns/name@revision": decrypt once per Secret version. */
  private readonly opened = new Map<string, Record<string, string>>();
  /**
   * The env last sent per instance uid: a Secret deleted while its instance
   * runs does not stop the instance (the agent would stop what leaves its set).
   */
  private readonly lastSent = new Map<string, Record<string, string>>();
  private readonly reported = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly secrets: SecretService,
    private readonly logger: Logger,
  ) {
    this.informer = new Informer<StoredSecret>(store, Keys.collection(SECRETS), logger);
    this.informer.on(() => this.opened.clear());
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }

  readonly resolve: EnvResolver = (inst) => {
    const ns = inst.metadata.namespace ?? "default";
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(inst.spec.env ?? {})) {
      const ref = secretRefOf(v);
      if (!ref) {
        out[k] = v as string;
        continue;
      }
      const value = this.valueOf(ns, ref.name, ref.key);
      if (value === undefined) {
        const kept = this.lastSent.get(inst.metadata.uid ?? "");
        if (kept) return kept;
        this.reportMissing(inst, `env ${k}: Secret ${ns}/${ref.name} has no key "${ref.key}" (or does not exist)`);
        return undefined;
      }
      out[k] = value;
    }
    if (inst.metadata.uid) this.lastSent.set(inst.metadata.uid, out);
    return out;
  };

  /** Forgets instances that ended (called with the live set now and then). */
  prune(live: readonly Instance[]): void {
    const keep = new Set(live.filter((i) => !isFinished(i)).map((i) => i.metadata.uid));
    for (const uid of this.lastSent.keys()) if (!keep.has(uid)) this.lastSent.delete(uid);
  }

  private valueOf(ns: string, name: string, key: string): string | undefined {
    const s = this.informer.get(`${ns}/${name}`);
    if (!s) return undefined;
    const id = `${objectKey(s)}@${s.metadata.resourceVersion ?? ""}`;
    let data = this.opened.get(id);
    if (!data) {
      try {
        data = this.secrets.open(secretKey(ns, name), s);
      } catch (err) {
        // Never log the value; the error of a failed decryption carries none.
        this.logger.error({ secret: `${ns}/${name}`, err: (err as Error).message }, "cannot decrypt Secret");
        return undefined;
      }
      this.opened.set(id, data);
    }
    return Object.prototype.hasOwnProperty.call(data, key) ? data[key] : undefined;
  }

  /** Pending with the Secret named (once per instance version), written where the scheduler writes its reasons. */
  private reportMissing(inst: Instance, message: string): void {
    const st = inst.status;
    if (st?.reason === InstanceReason.SecretMissing && st.message === message) return;
    const id = `${inst.metadata.uid}@${inst.metadata.resourceVersion}`;
    if (this.reported.has(id)) return;
    this.reported.add(id);
    const key = Keys.object("instances", inst.metadata.namespace, inst.metadata.name);
    const { resourceVersion: _rv, ...metadata } = inst.metadata;
    const next: Instance = {
      ...inst,
      metadata,
      status: { ...st, state: "Pending", reason: InstanceReason.SecretMissing, message },
    };
    this.store
      .txn([{ key, modRevision: inst.metadata.resourceVersion ?? "0" }], [{ type: "put", key, value: next }])
      .catch((err: unknown) => this.logger.warn({ err, instance: objectKey(inst) }, "recording SecretMissing failed"));
  }
}
