// What a namespace's workloads ask for, as its quota counts it, and whether a
// quota holds. Pure: admission (admission.ts) and `grove describe namespace`
// (the Namespace's status) use the same arithmetic.
//
// The quota counts desired state, not what runs: an App counts
// spec.instances copies of its resources and ports, a Task that has not
// finished counts one copy. A rolling update's surge is not counted.
import {
  normalizeResources,
  parseBytes,
  quotaCpuMillis,
  type App,
  type NamespaceQuota,
  type NamespaceUsage,
  type ResourceRequest,
  type Task,
} from "@grove/api";

export type Hard = Partial<NamespaceUsage>;

export const NO_USAGE: NamespaceUsage = { cpuMillis: 0, memoryBytes: 0, instances: 0, hostPorts: 0 };

function times(r: ResourceRequest | undefined, n: number, ports: number): NamespaceUsage {
  const res = normalizeResources(r);
  return { cpuMillis: res.cpuMillis * n, memoryBytes: res.memoryBytes * n, instances: n, hostPorts: ports * n };
}

export function addUsage(a: NamespaceUsage, b: NamespaceUsage): NamespaceUsage {
  return {
    cpuMillis: a.cpuMillis + b.cpuMillis,
    memoryBytes: a.memoryBytes + b.memoryBytes,
    instances: a.instances + b.instances,
    hostPorts: a.hostPorts + b.hostPorts,
  };
}

/** One App's share: spec.instances copies; every port is published on a host port (fixed or dynamic). */
export function appUsage(app: App): NamespaceUsage {
  return times(app.spec.resources, app.spec.instances, app.spec.ports?.length ?? 0);
}

/** One Task's share while it has not finished: one copy of its resources (or its fromApp's). */
export function taskUsage(task: Task, appsByName: ReadonlyMap<string, App>): NamespaceUsage {
  const phase = task.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return NO_USAGE;
  const from = task.spec.fromApp !== undefined ? appsByName.get(task.spec.fromApp) : undefined;
  return times(task.spec.resources ?? from?.spec.resources, 1, 0);
}

/** The namespace's total. */
export function namespaceUsage(apps: readonly App[], tasks: readonly Task[]): NamespaceUsage {
  const byName = new Map(apps.map((a) => [a.metadata.name, a]));
  let used = NO_USAGE;
  for (const a of apps) used = addUsage(used, appUsage(a));
  for (const t of tasks) used = addUsage(used, taskUsage(t, byName));
  return used;
}

/** The quota in the units of usage. */
export function hardOf(quota: NamespaceQuota | undefined): Hard {
  if (!quota) return {};
  return {
    ...(quota.cpu !== undefined ? { cpuMillis: quotaCpuMillis(quota.cpu) } : {}),
    ...(quota.memory !== undefined ? { memoryBytes: parseBytes(quota.memory) } : {}),
    ...(quota.instances !== undefined ? { instances: quota.instances } : {}),
    ...(quota.hostPorts !== undefined ? { hostPorts: quota.hostPorts } : {}),
  };
}

const SHOW: Record<keyof NamespaceUsage, { name: string; fmt: (n: number) => string }> = {
  cpuMillis: { name: "cpu", fmt: (n) => `${n}m` },
  memoryBytes: { name: "memory", fmt: (n) => formatBytes(n) },
  instances: { name: "instances", fmt: String },
  hostPorts: { name: "hostPorts", fmt: String },
};

export function formatBytes(n: number): string {
  for (const [unit, f] of [
    ["Gi", 2 ** 30],
    ["Mi", 2 ** 20],
    ["Ki", 2 ** 10],
  ] as const) {
    if (n >= f && n % f === 0) return `${n / f}${unit}`;
  }
  return String(n);
}

/**
 * What exceeds the quota when `before` (the namespace without the object)
 * grows by `request` (the object): one message per quota, naming it and the
 * amounts. Only quotas the change would push over are reported, so lowering
 * an App that is already over its quota is always allowed.
 */
export function quotaProblems(
  before: NamespaceUsage,
  request: NamespaceUsage,
  previous: NamespaceUsage,
  hard: Hard,
): string[] {
  const out: string[] = [];
  for (const k of Object.keys(SHOW) as Array<keyof NamespaceUsage>) {
    const limit = hard[k];
    if (limit === undefined) continue;
    const after = before[k] + request[k];
    if (after <= limit || request[k] <= previous[k]) continue;
    const { name, fmt } = SHOW[k];
    out.push(
      `quota ${name} exceeded: requested ${fmt(request[k])}, used ${fmt(before[k])} by the rest of the namespace, limit ${fmt(limit)}`,
    );
  }
  return out;
}
