// Repository: typed resources (App, Instance, Node) over any Store.
//
// It owns the server-set metadata: uid, namespace defaulting, generation,
// creationTimestamp and resourceVersion. The resourceVersion is the key's mod
// revision and is never stored inside the value: it is filled in on every read.
import { randomUUID } from "node:crypto";
import {
  API_VERSION,
  DEFAULT_NAMESPACE,
  GroveError,
  KINDS,
  isNamespaced,
  pluralOf,
  type App,
  type AppStatus,
  type Instance,
  type InstanceStatus,
  type Kind,
  type Node,
  type NodeStatus,
  type Task,
  type TaskStatus,
  type WatchEvent,
} from "@grove/api";
import { Keys, type KeyValue, type Store, type TxnCompare, type TxnOp, type Watch } from "../store/store";
import { writeHoldingPorts } from "./host-port-holds";

export interface ResourceTypes {
  App: App;
  Instance: Instance;
  Node: Node;
  Task: Task;
}
export interface StatusTypes {
  App: AppStatus;
  Instance: InstanceStatus;
  Node: NodeStatus;
  Task: TaskStatus;
}
export type ResourceOf<K extends Kind> = ResourceTypes[K];
export type StatusOf<K extends Kind> = StatusTypes[K];

export type ApplyResult = "created" | "configured" | "unchanged";

export interface ResourceList<T> {
  items: T[];
  /** The store revision the list was read at; watch from it to see what follows. */
  resourceVersion: string;
}

export interface ResourceWatchHandlers<T> {
  /** ADDED / MODIFIED / DELETED, in revision order. */
  onEvent(event: WatchEvent<T>): void;
  /**
   * Events were lost to compaction and the watch relisted: `items` is the whole
   * current collection at `resourceVersion`. Without this handler the watch
   * reports GroveError Gone through onError instead.
   */
  onRelist?(items: T[], resourceVersion: string): void;
  onError?(err: Error): void;
}

/**
 * Extra compares and ops a create or apply commits in the same etcd
 * transaction as the object (namespaces/admission.ts: a quota checked against
 * usage read at a revision the transaction compares). Called with the stored
 * object (undefined when new) and the one about to be written, on every retry.
 */
export type WriteGuard = (
  current: ResourceOf<Kind> | undefined,
  next: ResourceOf<Kind>,
) => Promise<{ compares: TxnCompare[]; ops: TxnOp<unknown>[] }>;

/** A guarded write lost to a concurrent one on the guard's keys: apply reads again and retries. */
export class GuardConflict extends GroveError {
  constructor(what: string) {
    super("Conflict", `${what} changed concurrently: read it again and retry`);
  }
}
/** Guarded writes race on one key per namespace: give them more tries than plain ones. */
const GUARDED_RETRIES = 50;

export interface RepositoryOptions {
  /** Clock for creationTimestamp (the simulator passes its own). */
  now?: () => Date;
  /** uid generator (the simulator passes a deterministic one). */
  uid?: () => string;
  /** How many times updateStatus / apply re-read and retry after a Conflict. */
  conflictRetries?: number;
}

/** The store key of one object. */
export function storeKey(kind: Kind, namespace: string | undefined, name: string): string {
  return Keys.object(pluralOf(kind), isNamespaced(kind) ? (namespace ?? DEFAULT_NAMESPACE) : undefined, name);
}

/** The store prefix of a collection (every namespace when `namespace` is undefined). */
export function collectionPrefix(kind: Kind, namespace?: string): string {
  return Keys.collection(pluralOf(kind), isNamespaced(kind) ? namespace : undefined);
}

export function isKind(kind: string): kind is Kind {
  return (KINDS as readonly string[]).includes(kind);
}

export class Repository {
  private readonly now: () => Date;
  private readonly newUid: () => string;
  private readonly retries: number;

  constructor(
    readonly store: Store,
    opts: RepositoryOptions = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.newUid = opts.uid ?? randomUUID;
    this.retries = opts.conflictRetries ?? 5;
  }

  /** The object; throws GroveError NotFound when it does not exist. */
  async get<K extends Kind>(kind: K, namespace: string | undefined, name: string): Promise<ResourceOf<K>> {
    const obj = await this.tryGet(kind, namespace, name);
    if (!obj) throw notFound(kind, namespace, name);
    return obj;
  }

  /** The object, or undefined when it does not exist. */
  async tryGet<K extends Kind>(
    kind: K,
    namespace: string | undefined,
    name: string,
  ): Promise<ResourceOf<K> | undefined> {
    const kv = await this.store.get<ResourceOf<K>>(storeKey(kind, namespace, name));
    return kv ? fromKeyValue(kv) : undefined;
  }

  /** Every object of the kind (in one namespace, or all when `namespace` is undefined), sorted by key. */
  async list<K extends Kind>(kind: K, namespace?: string): Promise<ResourceList<ResourceOf<K>>> {
    const res = await this.store.list<ResourceOf<K>>(collectionPrefix(kind, namespace));
    return { items: res.items.map(fromKeyValue), resourceVersion: res.revision };
  }

  /**
   * One page of the kind's objects, read at `revision` when given (continuing
   * an earlier page: a consistent snapshot; GroveError Gone once compacted).
   * `nextKey` is where the next page starts when more remain.
   */
  async listPage<K extends Kind>(
    kind: K,
    namespace: string | undefined,
    opts: { limit?: number; startKey?: string; revision?: string },
  ): Promise<ResourceList<ResourceOf<K>> & { nextKey?: string; remaining: number }> {
    const res = await this.store.listPage<ResourceOf<K>>(collectionPrefix(kind, namespace), opts);
    return {
      items: res.items.map(fromKeyValue),
      resourceVersion: res.revision,
      remaining: res.remaining,
      ...(res.nextKey !== undefined ? { nextKey: res.nextKey } : {}),
    };
  }

  /**
   * Creates the object; throws AlreadyExists. Status, uid and
   * creationTimestamp given by the caller are kept (controllers set them);
   * generation starts at 1.
   */
  async create<T extends ResourceOf<Kind>>(obj: T, guard?: WriteGuard): Promise<T> {
    const kind = kindOf(obj);
    const value = this.newObject(kind, obj);
    const key = storeKey(kind, value.metadata.namespace, value.metadata.name);
    if (guard) return withVersion(value, await this.guardedPut(key, undefined, value, "0", guard));
    const rev = await this.store.create(key, value);
    return withVersion(value, rev);
  }

  /**
   * Declarative create-or-update (`grove apply`). A new object is created; an
   * existing one gets the given spec and labels, keeping its uid,
   * creationTimestamp and status; generation goes up when the spec changed.
   * With metadata.resourceVersion set, it must be the stored one (else Conflict).
   */
  async apply<T extends ResourceOf<Kind>>(obj: T, guard?: WriteGuard): Promise<{ object: T; result: ApplyResult }> {
    const kind = kindOf(obj);
    const { namespace, name } = this.identity(kind, obj);
    const expected = obj.metadata.resourceVersion;
    for (let attempt = 0; ; attempt++) {
      const current = await this.tryGet(kind, namespace, name);
      try {
        if (!current) {
          if (expected !== undefined) {
            throw new GroveError(
              "Conflict",
              `${describe(kind, namespace, name)} does not exist, so it cannot be at resourceVersion ${expected}`,
            );
          }
          return { object: (await this.create(obj, guard)) as T, result: "created" };
        }
        checkVersion(kind, current, expected);
        const specChanged = !deepEqual(current.spec, obj.spec);
        const labelsChanged = !deepEqual(current.metadata.labels ?? {}, obj.metadata.labels ?? {});
        if (!specChanged && !labelsChanged) return { object: current as T, result: "unchanged" };
        const next = structuredClone(current) as T;
        next.spec = structuredClone(obj.spec);
        setLabels(next, obj.metadata.labels);
        if (specChanged) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
        const object = await this.write(
          kind,
          next,
          current.metadata.resourceVersion!,
          guard ? { guard, current } : undefined,
        );
        return { object, result: "configured" };
      } catch (err) {
        // Someone else wrote between our read and write. Without a
        // resourceVersion the caller asked for last-write-wins: read again.
        // A lost race on the guard's keys says nothing about this object: retry in any case.
        if (err instanceof GuardConflict && attempt < GUARDED_RETRIES) continue;
        if (expected !== undefined || !isRetryable(err) || attempt >= this.retries) throw err;
      }
    }
  }

  /**
   * Replaces spec, labels and status, compare-and-swap on
   * obj.metadata.resourceVersion (required). uid, creationTimestamp and
   * namespace stay as stored; generation goes up when the spec changed.
   */
  async update<T extends ResourceOf<Kind>>(obj: T): Promise<T> {
    const kind = kindOf(obj);
    const { namespace, name } = this.identity(kind, obj);
    const expected = obj.metadata.resourceVersion;
    if (expected === undefined) {
      throw new GroveError("BadRequest", `update of ${describe(kind, namespace, name)} needs metadata.resourceVersion`);
    }
    const current = await this.get(kind, namespace, name);
    checkVersion(kind, current, expected);
    const next = structuredClone(obj);
    next.metadata = { ...structuredClone(current.metadata), labels: structuredClone(obj.metadata.labels) };
    if (next.metadata.labels === undefined) delete next.metadata.labels;
    if (!deepEqual(current.spec, obj.spec)) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    return this.write(kind, next, expected);
  }

  /**
   * Puts a new incarnation of an object at the same key: compare-and-swap on
   * obj.metadata.resourceVersion (required), and the result is a new object
   * (its own uid, or a fresh one; generation 1; its own creationTimestamp, or
   * now). The App controller uses it to replace an ended instance in place.
   */
  async replace<T extends ResourceOf<Kind>>(obj: T): Promise<T> {
    const kind = kindOf(obj);
    const { namespace, name } = this.identity(kind, obj);
    const expected = obj.metadata.resourceVersion;
    if (expected === undefined) {
      throw new GroveError(
        "BadRequest",
        `replace of ${describe(kind, namespace, name)} needs metadata.resourceVersion`,
      );
    }
    const next = this.newObject(kind, obj);
    // An overwritten instance may still run on its node: its host ports stay held there.
    const current = kind === "Instance" ? await this.get(kind, namespace, name) : undefined;
    if (current) checkVersion(kind, current, expected);
    const op = { type: "put" as const, key: storeKey(kind, namespace, name), value: next };
    const rev = current && (await writeHoldingPorts(this.store, current as Instance, op, this.now()));
    return rev ? withVersion(next, rev) : this.write(kind, next, expected);
  }

  /**
   * Changes the status of an object, for controllers. `mutate` gets a copy of
   * the object and edits its status in place (returning false skips the
   * write). The write is a compare-and-swap; on Conflict the object is read
   * again and `mutate` runs again on the fresh copy, a few times. Nothing is
   * written when the status did not change. Returns the stored object.
   */
  async updateStatus<K extends Kind>(
    kind: K,
    obj: ResourceOf<K> | { metadata: { name: string; namespace?: string; resourceVersion?: string } },
    mutate: (current: ResourceOf<K>) => void | boolean,
  ): Promise<ResourceOf<K>> {
    const namespace = isNamespaced(kind) ? (obj.metadata.namespace ?? DEFAULT_NAMESPACE) : undefined;
    const name = obj.metadata.name;
    // Start from the caller's copy when it is a whole object at a known version.
    let current: ResourceOf<K> =
      "spec" in obj && obj.metadata.resourceVersion !== undefined
        ? (obj as ResourceOf<K>)
        : await this.get(kind, namespace, name);
    for (let attempt = 0; ; attempt++) {
      const next = structuredClone(current);
      if (mutate(next) === false || deepEqual(next.status, current.status)) return current;
      const value = structuredClone(current);
      if (next.status === undefined) delete value.status;
      else value.status = next.status as never;
      try {
        return await this.write(kind, value, current.metadata.resourceVersion!);
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.retries) throw err;
        current = await this.get(kind, namespace, name);
      }
    }
  }

  /** Deletes the object (only at `resourceVersion` when given) and returns it as it was. */
  async delete<K extends Kind>(
    kind: K,
    namespace: string | undefined,
    name: string,
    resourceVersion?: string,
  ): Promise<ResourceOf<K>> {
    const key = storeKey(kind, namespace, name);
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(kind, namespace, name);
      if (resourceVersion !== undefined) checkVersion(kind, current, resourceVersion);
      try {
        // An instance's host ports stay held on its node until its agent reports it gone.
        const op = { type: "delete" as const, key };
        const held = kind === "Instance" && (await writeHoldingPorts(this.store, current as Instance, op, this.now()));
        if (!held) await this.store.delete(key, current.metadata.resourceVersion);
        return current;
      } catch (err) {
        if (resourceVersion !== undefined || !isRetryable(err) || attempt >= this.retries) throw err;
      }
    }
  }

  /**
   * Watches a collection from `fromResourceVersion` (inclusive; pass a list's
   * resourceVersion + 1 to see what follows the list). Objects in events carry
   * metadata.resourceVersion = the event's revision.
   */
  async watch<K extends Kind>(
    kind: K,
    namespace: string | undefined,
    fromResourceVersion: string,
    handlers: ResourceWatchHandlers<ResourceOf<K>>,
  ): Promise<Watch> {
    const onRelist = handlers.onRelist;
    return this.store.watch<ResourceOf<K>>(collectionPrefix(kind, namespace), fromResourceVersion, {
      onEvent: (ev) => {
        if (ev.type === "put") {
          handlers.onEvent({
            type: ev.created ? "ADDED" : "MODIFIED",
            object: withVersion(ev.value, ev.modRevision),
          });
        } else {
          const prev = ev.prevValue ?? (stubFromKey(kind, ev.key) as ResourceOf<K>);
          handlers.onEvent({ type: "DELETED", object: withVersion(prev, ev.modRevision) });
        }
      },
      onRelist: onRelist ? (items, revision) => onRelist(items.map(fromKeyValue), revision) : undefined,
      onError: handlers.onError ? (err) => handlers.onError!(err) : undefined,
    });
  }

  /** A new object's stored value: server-set metadata filled in, resourceVersion left out. */
  private newObject<T extends ResourceOf<Kind>>(kind: Kind, obj: T): T {
    const { namespace } = this.identity(kind, obj);
    const value = structuredClone(obj);
    const meta = value.metadata;
    delete meta.resourceVersion;
    if (namespace !== undefined) meta.namespace = namespace;
    // In-process callers (controllers) may choose uid and creation time; the
    // HTTP layer strips both from what users send.
    meta.uid = meta.uid ?? this.newUid();
    meta.generation = 1;
    meta.creationTimestamp = meta.creationTimestamp ?? this.now().toISOString();
    return value;
  }

  /** The object's namespace (defaulted) and name; cluster-scoped kinds take no namespace. */
  private identity(kind: Kind, obj: ResourceOf<Kind>): { namespace: string | undefined; name: string } {
    if (!isNamespaced(kind)) {
      if (obj.metadata.namespace !== undefined) {
        throw new GroveError("BadRequest", `${kind} is cluster-scoped: metadata.namespace must not be set`, [
          { path: "/metadata/namespace", message: "must not be set for a cluster-scoped kind" },
        ]);
      }
      return { namespace: undefined, name: obj.metadata.name };
    }
    return { namespace: obj.metadata.namespace ?? DEFAULT_NAMESPACE, name: obj.metadata.name };
  }

  private async write<T extends ResourceOf<Kind>>(
    kind: Kind,
    obj: T,
    expectedVersion: string,
    guarded?: { guard: WriteGuard; current: ResourceOf<Kind> },
  ): Promise<T> {
    const value = structuredClone(obj);
    delete value.metadata.resourceVersion;
    const key = storeKey(kind, value.metadata.namespace, value.metadata.name);
    if (guarded)
      return withVersion(value, await this.guardedPut(key, guarded.current, value, expectedVersion, guarded.guard));
    const rev = await this.store.update(key, value, expectedVersion);
    return withVersion(value, rev);
  }

  /** Puts the object at `expectedVersion` ("0": new) together with the guard's compares and ops. */
  private async guardedPut(
    key: string,
    current: ResourceOf<Kind> | undefined,
    value: ResourceOf<Kind>,
    expectedVersion: string,
    guard: WriteGuard,
  ): Promise<string> {
    const g = await guard(current, value);
    const r = await this.store.txn<unknown>(
      [{ key, modRevision: expectedVersion }, ...g.compares],
      [{ type: "put", key, value }, ...g.ops],
    );
    if (r.succeeded) return r.revision;
    // Which compare failed: the object's own (as an unguarded write would report it) or the guard's.
    const now = await this.store.get(key);
    const what = `${value.kind} ${value.metadata.namespace ?? ""}/${value.metadata.name}`;
    if (expectedVersion === "0" && now) throw new GroveError("AlreadyExists", `${what} already exists`);
    if (expectedVersion !== "0" && !now) throw new GroveError("NotFound", `${what} not found`);
    if ((now?.modRevision ?? "0") !== expectedVersion) throw new GroveError("Conflict", `${what} changed: retry`);
    throw new GuardConflict(`the admission state of ${what}`);
  }
}

/** A stored key-value as a resource, its resourceVersion filled in. */
export function fromKeyValue<T extends ResourceOf<Kind>>(kv: KeyValue<T>): T {
  return withVersion(kv.value, kv.modRevision);
}

function withVersion<T extends ResourceOf<Kind>>(value: T, revision: string): T {
  return { ...value, metadata: { ...value.metadata, resourceVersion: revision } };
}

function kindOf(obj: { kind?: unknown }): Kind {
  const kind = obj.kind;
  if (typeof kind !== "string" || !isKind(kind)) {
    throw new GroveError("UnknownKind", `unknown kind "${String(kind)}": known kinds are ${KINDS.join(", ")}`);
  }
  return kind;
}

function checkVersion(kind: Kind, current: ResourceOf<Kind>, expected: string | undefined): void {
  if (expected !== undefined && expected !== current.metadata.resourceVersion) {
    const { namespace, name } = current.metadata;
    throw new GroveError(
      "Conflict",
      `${describe(kind, namespace, name)} is at resourceVersion ${current.metadata.resourceVersion}, ` +
        `not ${expected}: read it again and retry`,
    );
  }
}

function setLabels(obj: ResourceOf<Kind>, labels: Record<string, string> | undefined): void {
  if (labels === undefined) delete obj.metadata.labels;
  else obj.metadata.labels = structuredClone(labels);
}

function isRetryable(err: unknown): boolean {
  return err instanceof GroveError && (err.code === "Conflict" || err.code === "AlreadyExists");
}

function notFound(kind: Kind, namespace: string | undefined, name: string): GroveError {
  return new GroveError("NotFound", `${describe(kind, namespace, name)} not found`);
}

function describe(kind: Kind, namespace: string | undefined, name: string): string {
  return isNamespaced(kind) ? `${kind} ${namespace ?? DEFAULT_NAMESPACE}/${name}` : `${kind} ${name}`;
}

/** What a DELETED event carries when the store could not give the previous value. */
function stubFromKey(kind: Kind, key: string): unknown {
  const parts = key.split("/").filter(Boolean); // grove, plural, [namespace], name
  const name = parts[parts.length - 1] ?? "";
  const metadata: Record<string, string> = { name };
  if (isNamespaced(kind) && parts.length >= 4) metadata.namespace = parts[parts.length - 2]!;
  return { apiVersion: API_VERSION, kind, metadata };
}

/** Structural equality of JSON values (key order does not matter). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  return (
    ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(rb, k) && deepEqual(ra[k], rb[k]))
  );
}
