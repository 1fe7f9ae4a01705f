// Where a quota check reads its namespace's Apps and Tasks: this replica's
// informer caches when they provably hold every write the check must count,
// else etcd (a list of the namespace per kind, as before). Listing from etcd
// on every creation was the cost of a quota'd creation (api-load: 20 creations
// per second asked, 2.7 reached once the namespace held a few hundred Apps).
//
// Why the caches are enough: every write that grows a namespace's usage is
// quota-checked and rewrites the namespace's admission key in its own
// transaction, and the check compares that key's revision L when it commits.
// So a check must count every quota-checked write at or before L (later ones
// fail its compare), plus what existed before the quota did (before the
// Namespace's revision M). The admission record says which object the write
// at L wrote and, per kind, the revision of the last earlier quota-checked
// write of that kind (carried forward from record to record). A kind's cache
// that has reached the revision needed holds all of them: a watch delivers a
// prefix's events in revision order. What a cache may still miss only lowers
// usage (deletions, scale-downs, finished Tasks): an accept from the cache is
// safe, and a refusal is checked again against etcd, so refusals are as
// before.
import type { App, Kind, NamespaceUsage, Task } from "@grove/api";
import type { Repository } from "../resources/repository";
import type { KeyValue } from "../store/store";

export type AdmittedKind = "App" | "Task";

/** The value of a namespace's admission key (namespace-service.ts admissionKey). */
export interface AdmissionRecord {
  /** The namespace's usage with the write that stored this record. */
  used: NamespaceUsage;
  /** The object that write wrote ("ns/name"); absent in records of servers before this file. */
  wrote?: { kind: AdmittedKind; key: string };
  /** Per kind, the revision of the last quota-checked write of it before that one (decimal). */
  earlier?: Partial<Record<AdmittedKind, string>>;
}

/** What the source needs of an informer (controllers/informer.ts). */
export interface WorkloadCache<T> {
  readonly isFresh: boolean;
  readonly revision: string;
  list(): T[];
  waitFor(key: string, revision: string, timeoutMs?: number): Promise<void>;
}

export interface WorkloadCaches {
  App?: WorkloadCache<App>;
  Task?: WorkloadCache<Task>;
}

export interface Workloads {
  apps: App[];
  tasks: Task[];
  /** Whether any of it came from a cache (a refusal is then checked again against etcd). */
  cached: boolean;
}

/**
 * How long a check waits for the cache to show the last quota-checked write
 * before it lists from etcd instead: its watch event normally arrives within
 * milliseconds of the write's answer.
 */
const CACHE_WAIT_MS = 250;

const KINDS: readonly AdmittedKind[] = ["App", "Task"];

/** The revision each kind's cache must have reached; undefined: an older server's record, read etcd. */
export function revisionsNeeded(
  lock: KeyValue<AdmissionRecord> | undefined,
  namespaceRevision: string,
): Record<AdmittedKind, bigint> | undefined {
  const m = BigInt(namespaceRevision);
  if (!lock) return { App: m, Task: m };
  const { wrote, earlier } = lock.value;
  if (!wrote) return undefined;
  const need = { App: m, Task: m };
  for (const k of KINDS) need[k] = max(need[k], BigInt(earlier?.[k] ?? "0"));
  need[wrote.kind] = max(need[wrote.kind], BigInt(lock.modRevision));
  return need;
}

/** The record a quota-checked write of `obj` stores, after the one it read (`lock`). */
export function nextRecord(
  lock: KeyValue<AdmissionRecord> | undefined,
  used: NamespaceUsage,
  obj: { kind: string; metadata: { name: string; namespace?: string } },
): AdmissionRecord {
  let earlier: Partial<Record<AdmittedKind, string>> = {};
  if (lock?.value.wrote) earlier = { ...lock.value.earlier, [lock.value.wrote.kind]: lock.modRevision };
  // An older server's record says not what it wrote: either kind may have been written at its revision.
  else if (lock) earlier = { App: lock.modRevision, Task: lock.modRevision };
  return {
    used,
    wrote: { kind: obj.kind as AdmittedKind, key: `${obj.metadata.namespace}/${obj.metadata.name}` },
    earlier,
  };
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

export class WorkloadSource {
  constructor(
    private readonly repo: Repository,
    private readonly caches: WorkloadCaches = {},
  ) {}

  /** The namespace's Apps and Tasks, from the caches where `need` allows. */
  async read(ns: string, lock: KeyValue<AdmissionRecord> | undefined, namespaceRevision: string): Promise<Workloads> {
    const need = revisionsNeeded(lock, namespaceRevision);
    const wrote = lock?.value.wrote;
    const last = (kind: AdmittedKind) =>
      lock && wrote?.kind === kind ? { key: wrote.key, revision: lock.modRevision } : undefined;
    const [apps, tasks] = await Promise.all([
      this.one("App", ns, need?.App, last("App")),
      this.one("Task", ns, need?.Task, last("Task")),
    ]);
    return { apps: apps.items as App[], tasks: tasks.items as Task[], cached: apps.cached || tasks.cached };
  }

  /** Both kinds from etcd. */
  async fromStore(ns: string): Promise<Workloads> {
    const [apps, tasks] = await Promise.all([this.repo.list("App", ns), this.repo.list("Task", ns)]);
    return { apps: apps.items, tasks: tasks.items, cached: false };
  }

  private async one(
    kind: AdmittedKind,
    ns: string,
    need: bigint | undefined,
    last: { key: string; revision: string } | undefined,
  ): Promise<{ items: Array<App | Task>; cached: boolean }> {
    const cache = this.caches[kind] as WorkloadCache<App | Task> | undefined;
    const reached = () => cache !== undefined && cache.isFresh && BigInt(cache.revision) >= need!;
    // The last quota-checked write's own event: the one a cache is most likely still waiting for.
    if (cache?.isFresh && need !== undefined && !reached() && last !== undefined) {
      await cache.waitFor(last.key, last.revision, CACHE_WAIT_MS);
    }
    if (need !== undefined && reached()) {
      return { items: cache!.list().filter((o) => o.metadata.namespace === ns), cached: true };
    }
    return { items: (await this.repo.list(kind as Kind, ns)).items as Array<App | Task>, cached: false };
  }
}
