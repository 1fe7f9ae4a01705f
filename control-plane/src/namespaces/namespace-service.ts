// Namespace objects in the store (/grove/namespaces/<name>). A Namespace turns
// on its quota and admission policy (admission.ts); a namespace that has no
// object is implicit and keeps the behaviour it had before (no quota, no
// policy). status.used is computed on every read, never stored.
import { randomUUID } from "node:crypto";
import {
  API_VERSION,
  DEFAULT_POLICY_LEVEL,
  GroveError,
  namespaceSpecProblems,
  type Namespace,
  type NamespaceUsage,
} from "@grove/api";
import type { Repository } from "../resources/repository";
import { Keys, type KeyValue, type Store } from "../store/store";
import { hardOf, namespaceUsage } from "./usage";

/** The stored object: no resourceVersion (the mod revision), no status. */
export type StoredNamespace = Omit<Namespace, "status">;

export function namespaceKey(name: string): string {
  return Keys.object("namespaces", undefined, name);
}

/** The key every quota-checked write in the namespace rewrites, so two of them cannot both pass on one reading. */
export function admissionKey(name: string): string {
  return Keys.object("namespace-admission", undefined, name);
}

/** The Namespace that lists `secret` in spec.pullSecrets (other than `except`), if any. */
export async function pullSecretOwner(store: Store, secret: string, except?: string): Promise<string | undefined> {
  const all = await store.list<StoredNamespace>(Keys.collection("namespaces"));
  return all.items.find((kv) => kv.value.metadata.name !== except && kv.value.spec?.pullSecrets?.includes(secret))
    ?.value.metadata.name;
}

/** What a namespace holds, by store collection, for deletion. */
const CONTENTS = ["apps", "tasks", "instances", "secrets", "tokens"] as const;

export class NamespaceService {
  constructor(
    readonly store: Store,
    private readonly repo: Repository,
  ) {}

  async get(name: string): Promise<KeyValue<StoredNamespace> | undefined> {
    return this.store.get<StoredNamespace>(namespaceKey(name));
  }

  /** The Namespace with its usage; NotFound when it has no object. */
  async describe(name: string): Promise<Namespace> {
    const kv = await this.get(name);
    if (!kv) throw new GroveError("NotFound", `Namespace ${name} not found`);
    return this.view(kv, await this.usage(name));
  }

  /** Every Namespace, or those `only` admits (a tenant's own), each with its usage. */
  async list(only: (name: string) => boolean = () => true): Promise<{ items: Namespace[]; revision: string }> {
    const r = await this.store.list<StoredNamespace>(Keys.collection("namespaces"));
    const mine = r.items.filter((kv) => only(kv.value.metadata.name));
    const items = await Promise.all(mine.map(async (kv) => this.view(kv, await this.usage(kv.value.metadata.name))));
    return { items, revision: r.revision };
  }

  async usage(name: string): Promise<NamespaceUsage> {
    const [apps, tasks] = await Promise.all([this.repo.list("App", name), this.repo.list("Task", name)]);
    return namespaceUsage(apps.items, tasks.items);
  }

  view(kv: KeyValue<StoredNamespace>, used: NamespaceUsage): Namespace {
    const ns = structuredClone(kv.value) as Namespace;
    ns.metadata.resourceVersion = kv.modRevision;
    ns.spec = { policy: DEFAULT_POLICY_LEVEL, ...ns.spec };
    ns.status = { used, hard: hardOf(ns.spec.quota) };
    return ns;
  }

  /**
   * Creates the Namespace, or (createOnly false) replaces its spec and labels;
   * a given metadata.resourceVersion must be the stored one.
   */
  async apply(obj: Namespace, createOnly: boolean): Promise<{ object: Namespace; created: boolean }> {
    // Quantities the pattern admits but the parser does not, a descending host port range: as `grove apply -f` checks.
    const problems = namespaceSpecProblems(obj.spec).map((p) => ({ path: p.pointer, message: p.message }));
    if (problems.length > 0) {
      throw new GroveError("ValidationFailed", problems.map((p) => `${p.path}: ${p.message}`).join("; "), problems);
    }
    const name = obj.metadata.name;
    // A pull secret belongs to one namespace (two Namespaces written at once may both pass: cluster-admins only).
    for (const [i, secret] of (obj.spec?.pullSecrets ?? []).entries()) {
      const owner = await pullSecretOwner(this.store, secret, name);
      if (owner !== undefined) {
        throw new GroveError("ValidationFailed", `pull secret ${secret} belongs to namespace ${owner}`, [
          { path: `/spec/pullSecrets/${i}`, message: `belongs to namespace ${owner}` },
        ]);
      }
    }
    const key = namespaceKey(name);
    const current = await this.get(name);
    const expected = obj.metadata.resourceVersion;
    if (current && createOnly) throw new GroveError("AlreadyExists", `Namespace ${name} already exists`);
    if (expected !== undefined && expected !== (current?.modRevision ?? "0")) {
      throw new GroveError("Conflict", `Namespace ${name} is not at resourceVersion ${expected}: read it again`);
    }
    const value: StoredNamespace = {
      apiVersion: API_VERSION,
      kind: "Namespace",
      metadata: {
        name,
        ...(obj.metadata.labels ? { labels: obj.metadata.labels } : {}),
        uid: current?.value.metadata.uid ?? randomUUID(),
        creationTimestamp: current?.value.metadata.creationTimestamp ?? new Date().toISOString(),
      },
      spec: obj.spec ?? {},
    };
    const rev = current
      ? await this.store.update(key, value, current.modRevision)
      : await this.store.create(key, value);
    return { object: this.view({ key, value, modRevision: rev }, await this.usage(name)), created: !current };
  }

  /**
   * Deletes the Namespace. Without `cascade` it refuses (409) while the
   * namespace holds Apps, Tasks, Instances, Secrets or tokens, naming how many
   * of each; with it, those are deleted first (the controllers then stop the
   * instances of the deleted Apps and Tasks).
   */
  async delete(name: string, cascade: boolean): Promise<Namespace> {
    const kv = await this.get(name);
    if (!kv) throw new GroveError("NotFound", `Namespace ${name} not found`);
    const used = await this.usage(name);
    const held = await Promise.all(
      CONTENTS.map(async (c) => ({ c, items: (await this.store.list(Keys.collection(c, name))).items })),
    );
    const boundHere = await this.tokensBoundAsFurther(name);
    if (!cascade) {
      const left = held.filter((h) => h.items.length > 0).map((h) => `${h.items.length} ${h.c}`);
      if (boundHere.length > 0) left.push(`${boundHere.length} tokens of other namespaces bound to it`);
      if (left.length > 0) {
        throw new GroveError(
          "Conflict",
          `Namespace ${name} is not empty (${left.join(", ")}): delete them first, or delete with ?cascade=true`,
        );
      }
    } else {
      // Instances are left to the controllers, which stop them once their App or Task is gone.
      for (const h of held.filter((x) => x.c !== "instances")) {
        for (const item of h.items) await this.store.delete(item.key).catch(ignoreNotFound);
      }
      // A namespace is a name: one made again later under it must not be reachable by a
      // token that was bound to this one, so the name leaves every such token.
      for (const t of boundHere) await this.unbind(t, name);
    }
    await this.store.delete(admissionKey(name)).catch(ignoreNotFound);
    await this.store.delete(kv.key, kv.modRevision);
    return this.view(kv, used);
  }

  /** Tokens whose home is another namespace and that are bound to `name` as a further one. */
  private async tokensBoundAsFurther(name: string): Promise<KeyValue<TokenBinding>[]> {
    const all = await this.store.list<TokenBinding>(Keys.collection("tokens"));
    return all.items.filter((t) => t.value.namespace !== name && (t.value.namespaces ?? []).includes(name));
  }

  /** Removes `name` from a token's further namespaces (read again on a concurrent change). */
  private async unbind(t: KeyValue<TokenBinding>, name: string): Promise<void> {
    let cur: KeyValue<TokenBinding> | undefined = t;
    for (let attempt = 0; cur && (cur.value.namespaces ?? []).includes(name); attempt++) {
      const rest = (cur.value.namespaces ?? []).filter((n) => n !== name);
      const { namespaces: _drop, ...base } = cur.value;
      const next: TokenBinding = rest.length > 0 ? { ...base, namespaces: rest } : base;
      try {
        await this.store.update(cur.key, next, cur.modRevision);
        return;
      } catch (err) {
        if (!(err instanceof GroveError && (err.code === "Conflict" || err.code === "NotFound")) || attempt >= 5)
          throw err;
        cur = await this.store.get<TokenBinding>(cur.key);
      }
    }
  }
}

/** The part of a stored token a Namespace's deletion reads (auth/tokens.ts: StoredToken). */
interface TokenBinding {
  namespace?: string;
  namespaces?: string[];
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof GroveError && err.code === "NotFound")) throw err;
}
