// Admission of Apps and Tasks into a namespace that has a Namespace object:
// its policy level (restricted, baseline, privileged) and its quota. The
// quota is checked against usage read inside a guard (resources/repository.ts
// WriteGuard) whose transaction also rewrites the namespace's admission key
// and compares the Namespace's revision: of two writes that each fit alone but
// not together, one commits and the other reads again and is refused.
import {
  DEFAULT_NAMESPACE,
  DEFAULT_POLICY_LEVEL,
  GroveError,
  policyProblems,
  type App,
  type Kind,
  type NamespaceUsage,
  type Task,
} from "@grove/api";
import {
  GuardConflict,
  type ApplyResult,
  type Repository,
  type ResourceOf,
  type WriteGuard,
} from "../resources/repository";
import type { KeyValue } from "../store/store";
import {
  admissionKey,
  namespaceKey,
  pullSecretOwner,
  type NamespaceService,
  type StoredNamespace,
} from "./namespace-service";
import { NO_USAGE, addUsage, appUsage, hardOf, namespaceUsage, quotaProblems, taskUsage } from "./usage";
import {
  WorkloadSource,
  nextRecord,
  type AdmissionRecord,
  type WorkloadCaches,
  type Workloads,
} from "./workload-source";

/** What the HTTP routes call instead of the Repository for objects users write. */
export interface Admission {
  create<T extends ResourceOf<Kind>>(obj: T): Promise<T>;
  apply<T extends ResourceOf<Kind>>(obj: T): Promise<{ object: T; result: ApplyResult }>;
}

const ADMITTED = new Set(["App", "Task"]);
/** A create that keeps losing races on the admission key gives up after this many tries (409). */
const CREATE_TRIES = 50;

/** The release of the namespace lock a write holds (NamespaceAdmission's guard). */
interface Held {
  release?: () => void;
}

/** One holder at a time per key, first come first served; in this process only. */
class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async lock(key: string): Promise<() => void> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    await before;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}

export class NamespaceAdmission implements Admission {
  private readonly serial = new KeyedLock();
  private readonly workloads: WorkloadSource;

  constructor(
    private readonly repo: Repository,
    private readonly namespaces: NamespaceService,
    /** This replica's App and Task informers: quota checks read them instead of etcd when they can. */
    caches: WorkloadCaches = {},
  ) {
    this.workloads = new WorkloadSource(repo, caches);
  }

  async create<T extends ResourceOf<Kind>>(obj: T): Promise<T> {
    if (!ADMITTED.has(obj.kind)) return this.repo.create(obj);
    const held: Held = {};
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.repo.create(obj, this.guard(held));
        } catch (err) {
          if (!(err instanceof GuardConflict) || attempt >= CREATE_TRIES) throw err;
        }
      }
    } finally {
      held.release?.();
    }
  }

  async apply<T extends ResourceOf<Kind>>(obj: T): Promise<{ object: T; result: ApplyResult }> {
    if (!ADMITTED.has(obj.kind)) return this.repo.apply(obj);
    const held: Held = {};
    try {
      return await this.repo.apply(obj, this.guard(held));
    } finally {
      held.release?.();
    }
  }

  /**
   * An App or Task may name only a pull secret its namespace owns (the
   * Namespace's spec.pullSecrets); in a namespace without an object, none
   * that a Namespace owns. The credentials stay in the agents' image config:
   * this keeps team-b from pulling with team-a's.
   */
  private async checkPullSecret(
    ns: string,
    nsKv: KeyValue<StoredNamespace> | undefined,
    obj: ResourceOf<Kind>,
  ): Promise<void> {
    const secret = (obj.spec as { imagePullSecret?: unknown }).imagePullSecret;
    if (typeof secret !== "string") return;
    if (nsKv?.value.spec?.pullSecrets?.includes(secret)) return;
    const owner = nsKv ? undefined : await pullSecretOwner(this.namespaces.store, secret);
    if (!nsKv && owner === undefined) return;
    const why = owner
      ? `pull secret ${secret} belongs to namespace ${owner}`
      : `pull secret ${secret} does not belong to namespace ${ns} (its Namespace's spec.pullSecrets)`;
    throw new GroveError("AdmissionDenied", `${obj.kind} ${ns}/${obj.metadata.name}: ${why}`, [
      { path: "/spec/imagePullSecret", message: why },
    ]);
  }

  /** Reads the Namespace and the usage afresh on every try (the repository calls it per attempt). */
  private guard(held: Held): WriteGuard {
    return async (current, next) => {
      const ns = next.metadata.namespace ?? DEFAULT_NAMESPACE;
      const nsKey = namespaceKey(ns);
      const nsKv = await this.namespaces.get(ns);
      await this.checkPullSecret(ns, nsKv, next);
      // An implicit namespace: no policy, no quota, but it must still have no object when we commit.
      if (!nsKv) return { compares: [{ key: nsKey, modRevision: "0" }], ops: [] };
      checkPolicy(nsKv, next);
      const hard = hardOf(nsKv.value.spec?.quota);
      const nsOnly = { compares: [{ key: nsKey, modRevision: nsKv.modRevision }], ops: [] };
      if (Object.keys(hard).length === 0) return nsOnly;
      // An App change that grows no quota'd resource (labels, image, env, a scale-down) can take
      // nobody past a quota: no usage to read, no admission key to serialize on (25 connections
      // applying label changes in one namespace went from 1 to ~270 applies/s: each had listed the
      // namespace and then lost the race on that key, again and again). A growing write racing
      // this one counted its old, larger share: it errs on the safe side.
      if (current?.kind === "App" && next.kind === "App" && !grows(appUsage(current as App), appUsage(next as App))) {
        return nsOnly;
      }
      // Quota-checked writes of one namespace queue in this replica rather than race on its
      // admission key: losers had read the usage for nothing, again and again (4 parallel creators
      // in a namespace with a quota: ~5x fewer creations per second than without one). The etcd
      // compare below still decides between replicas. Kept (held) until the write is done.
      held.release ??= await this.serial.lock(ns);
      // The admission key before the usage: any quota-checked write committed after this read fails our compare.
      const lock = await this.namespaces.store.get<AdmissionRecord>(admissionKey(ns));

      // From this replica's caches when they hold every write the check must count (workload-source.ts);
      // a refusal read from them is checked again against etcd, as they may still count what went away.
      let checked = assess(await this.workloads.read(ns, lock, nsKv.modRevision));
      if (checked.problems.length > 0 && checked.cached) checked = assess(await this.workloads.fromStore(ns));
      const { before, request, problems } = checked;
      if (problems.length > 0) {
        throw new GroveError(
          "QuotaExceeded",
          `${next.kind} ${ns}/${next.metadata.name} would exceed the quota of namespace ${ns}: ${problems.join("; ")}`,
        );
      }
      return {
        compares: [
          { key: nsKey, modRevision: nsKv.modRevision },
          { key: admissionKey(ns), modRevision: lock?.modRevision ?? "0" },
        ],
        ops: [{ type: "put", key: admissionKey(ns), value: nextRecord(lock, addUsage(before, request), next) }],
      };

      function assess(w: Workloads) {
        const others = (o: { kind: string; metadata: { name: string } }) =>
          !(o.kind === next.kind && o.metadata.name === next.metadata.name);
        const before = namespaceUsage(w.apps.filter(others), w.tasks.filter(others));
        const byName = new Map(w.apps.map((a) => [a.metadata.name, a]));
        const share = (o: ResourceOf<Kind> | undefined): NamespaceUsage =>
          o === undefined ? NO_USAGE : o.kind === "App" ? appUsage(o as App) : taskUsage(o as Task, byName);
        const request = share(next);
        return { before, request, problems: quotaProblems(before, request, share(current), hard), cached: w.cached };
      }
    };
  }
}

function grows(before: NamespaceUsage, after: NamespaceUsage): boolean {
  return (Object.keys(before) as Array<keyof NamespaceUsage>).some((k) => after[k] > before[k]);
}

function checkPolicy(nsKv: KeyValue<StoredNamespace>, obj: ResourceOf<Kind>): void {
  const level = nsKv.value.spec?.policy ?? DEFAULT_POLICY_LEVEL;
  const problems = policyProblems(obj.spec, level, nsKv.value.spec?.hostPortRange);
  if (problems.length === 0) return;
  const ns = nsKv.value.metadata.name;
  throw new GroveError(
    "AdmissionDenied",
    `namespace ${ns} is ${level}: ${problems.map((p) => `${p.pointer}: ${p.message}`).join("; ")}`,
    problems.map((p) => ({ path: p.pointer, message: p.message })),
  );
}
