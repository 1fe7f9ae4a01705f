// An App's revisions in etcd: one key per revision under its own prefix,
// /grove/revisions/<namespace>/<app>/<revision, zero-padded>, apart from the
// Apps so that the App informer and App watches never carry them. The App
// controller records the current template's revision on every sync (cached,
// so a store write only happens when the template changes), keeps the last
// REVISION_HISTORY_LIMIT, and deletes them all when the App is deleted or
// replaced by another of the same name (another uid).
//
// Numbers are stable: a template that comes back (a rollback, `grove rollout
// undo`, or applying an old manifest again) is its old revision again, found
// by its config hash; only a template never seen gets the next number.
import {
  API_VERSION,
  GroveError,
  REVISION_HISTORY_LIMIT,
  configHash,
  revisionTemplate,
  type App,
  type AppRevision,
} from "@grove/api";
import type { Store, TxnOp } from "../store/store";

const PREFIX = "/grove/revisions/";

export const RevisionKeys = {
  all: PREFIX,
  ofApp: (namespace: string, app: string) => `${PREFIX}${namespace}/${app}/`,
  one: (namespace: string, app: string, revision: number) =>
    `${PREFIX}${namespace}/${app}/${String(revision).padStart(10, "0")}`,
} as const;

export class RevisionStore {
  /** Per App key: the config hash and uid last recorded, and its revision number. */
  private readonly recorded = new Map<string, { hash: string; uid: string; revision: number }>();

  constructor(
    private readonly store: Store,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** The App's revisions, oldest first. */
  async list(namespace: string, app: string): Promise<AppRevision[]> {
    const res = await this.store.list<AppRevision>(RevisionKeys.ofApp(namespace, app));
    return res.items.map((kv) => kv.value);
  }

  async get(namespace: string, app: string, revision: number): Promise<AppRevision | undefined> {
    return (await this.store.get<AppRevision>(RevisionKeys.one(namespace, app, revision)))?.value;
  }

  /** The revision whose template has this config hash, if the App still keeps it. */
  async byHash(namespace: string, app: string, hash: string): Promise<AppRevision | undefined> {
    return (await this.list(namespace, app)).find((r) => r.configHash === hash);
  }

  /**
   * The revision number of the App's current template, recording it first
   * when it is new. `keep` names a revision pruning must not drop (where a
   * rollback would return). Throws to retry when another writer raced it.
   */
  async record(app: App, keep?: number): Promise<number> {
    const ns = app.metadata.namespace ?? "default";
    const name = app.metadata.name;
    const key = `${ns}/${name}`;
    const hash = configHash(app);
    const uid = app.metadata.uid ?? "";
    const cached = this.recorded.get(key);
    if (cached && cached.hash === hash && cached.uid === uid) return cached.revision;

    const all = await this.store.list<AppRevision>(RevisionKeys.ofApp(ns, name));
    const ops: TxnOp<AppRevision>[] = [];
    // Revisions of an earlier App of the same name go.
    const mine = all.items.filter((kv) => {
      if (kv.value.appUid === uid) return true;
      ops.push({ type: "delete", key: kv.key });
      return false;
    });
    const found = mine.find((kv) => kv.value.configHash === hash);
    if (found && ops.length === 0) {
      this.recorded.set(key, { hash, uid, revision: found.value.revision });
      return found.value.revision;
    }
    const revision = found?.value.revision ?? Math.max(0, ...mine.map((kv) => kv.value.revision)) + 1;
    const compares = all.items.map((kv) => ({ key: kv.key, modRevision: kv.modRevision }));
    if (!found) {
      const rev: AppRevision = {
        apiVersion: API_VERSION,
        kind: "AppRevision",
        app: name,
        namespace: ns,
        appUid: uid,
        revision,
        configHash: hash,
        createdAt: new Date(this.now()).toISOString(),
        template: revisionTemplate(app.spec),
      };
      const newKey = RevisionKeys.one(ns, name, revision);
      compares.push({ key: newKey, modRevision: "0" });
      ops.push({ type: "put", key: newKey, value: rev });
      // The oldest beyond the limit go, never the current one or the one a rollback needs.
      const kept = [...mine.map((kv) => kv.value.revision), revision].sort((a, b) => b - a);
      const drop = kept.slice(REVISION_HISTORY_LIMIT).filter((n) => n !== keep && n !== revision);
      for (const n of drop) ops.push({ type: "delete", key: RevisionKeys.one(ns, name, n) });
    }
    const r = await this.store.txn(compares, ops);
    if (!r.succeeded) throw new Error(`the revisions of App ${key} changed while recording one; retrying`);
    this.recorded.set(key, { hash, uid, revision });
    return revision;
  }

  /** Deletes every revision of the App (it was deleted). */
  async deleteAll(namespace: string, app: string): Promise<void> {
    this.recorded.delete(`${namespace}/${app}`);
    const all = await this.store.list<AppRevision>(RevisionKeys.ofApp(namespace, app));
    if (all.items.length === 0) return;
    const r = await this.store.txn(
      [],
      all.items.map((kv) => ({ type: "delete" as const, key: kv.key })),
    );
    if (!r.succeeded) throw new GroveError("Conflict", `deleting the revisions of App ${namespace}/${app} failed`);
  }

  /** The "namespace/app" keys that have revisions stored (to find those of Apps deleted while no leader ran). */
  async appKeys(): Promise<string[]> {
    const all = await this.store.list<AppRevision>(PREFIX);
    return [...new Set(all.items.map((kv) => `${kv.value.namespace}/${kv.value.app}`))];
  }
}
