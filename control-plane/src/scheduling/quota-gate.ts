// Namespace quotas enforced where instances are placed, not only at
// admission. Admission (namespaces/admission.ts) checks an App's desired
// share when it is written; but instances also appear without such a write,
// or after it: a rolling update's surge instances, a `rollout undo` (which
// writes the App's spec back without admission), and any instance still to be
// placed when an operator lowers the quota. The scheduler asks this gate
// before it places a pending instance: an instance that would take its
// namespace past a quota stays Pending with reason QuotaExceeded and the
// quota named, and is looked at again on every pass (a pass runs when
// instances, nodes or Namespaces change).
//
// What counts is the namespace's unfinished instances: every bound one (it
// runs or is about to), then pending ones in creation order as the gate
// admits them (first come, first served, as Kubernetes counts pods when they
// are created). A replacement that is not a rollout's surge (its node was
// lost, or is draining) takes over the share of the instance it replaces:
// make-before-break moves must not be blocked by the copy they move.
import { ROLLOUT_LABEL, isFinished, replacesUid, type Instance, type NamespaceUsage } from "@grove/api";
import { addUsage, NO_USAGE, quotaProblems, type Hard } from "../namespaces/usage";

/** A Namespace's quota as the gate needs it (namespaces without a quota are not listed). */
export interface QuotaOf {
  hard: Hard;
}

/** One instance's share: one copy of its resources and of its ports. */
export function instanceUsage(inst: Instance): NamespaceUsage {
  const r = inst.spec.resources;
  return { cpuMillis: r.cpuMillis, memoryBytes: r.memoryBytes, instances: 1, hostPorts: inst.spec.ports?.length ?? 0 };
}

function subtract(a: NamespaceUsage, b: NamespaceUsage): NamespaceUsage {
  return {
    cpuMillis: a.cpuMillis - b.cpuMillis,
    memoryBytes: a.memoryBytes - b.memoryBytes,
    instances: a.instances - b.instances,
    hostPorts: a.hostPorts - b.hostPorts,
  };
}

export class QuotaGate {
  /** What each namespace with a quota uses now, and the instances counted in it by uid. */
  private readonly used = new Map<string, NamespaceUsage>();
  private readonly counted = new Map<string, Instance>();

  /** `all`: every instance the scheduler sees; `quotas`: by namespace name. */
  constructor(
    all: readonly Instance[],
    private readonly quotas: ReadonlyMap<string, QuotaOf>,
  ) {
    for (const i of all) {
      if (i.spec.nodeName && !isFinished(i) && quotas.has(namespaceOf(i))) this.count(i);
    }
  }

  /**
   * Whether `inst` (pending) fits its namespace's quota beside what is
   * counted: undefined when it does (it is counted from now on), otherwise
   * the message naming each quota it would exceed.
   */
  admit(inst: Instance): string | undefined {
    const ns = namespaceOf(inst);
    const quota = this.quotas.get(ns);
    if (!quota) return undefined;
    const share = instanceUsage(inst);
    let before = this.used.get(ns) ?? NO_USAGE;
    const replaced = inst.metadata.labels?.[ROLLOUT_LABEL] === undefined ? replacesUid(inst) : undefined;
    const original = replaced !== undefined ? this.counted.get(replaced) : undefined;
    if (original) before = subtract(before, instanceUsage(original));
    const problems = quotaProblems(before, share, NO_USAGE, quota.hard);
    if (problems.length > 0) {
      return `${inst.metadata.name} would exceed the quota of namespace ${ns}: ${problems.join("; ")}`;
    }
    if (original) this.uncount(original);
    this.count(inst);
    return undefined;
  }

  private count(inst: Instance): void {
    const ns = namespaceOf(inst);
    this.used.set(ns, addUsage(this.used.get(ns) ?? NO_USAGE, instanceUsage(inst)));
    if (inst.metadata.uid) this.counted.set(inst.metadata.uid, inst);
  }

  private uncount(inst: Instance): void {
    const ns = namespaceOf(inst);
    this.used.set(ns, subtract(this.used.get(ns) ?? NO_USAGE, instanceUsage(inst)));
    if (inst.metadata.uid) this.counted.delete(inst.metadata.uid);
  }
}

function namespaceOf(inst: Instance): string {
  return inst.metadata.namespace ?? "default";
}
