// Dry runs on a snapshot: `grove apply --plan` (where each new or changed
// instance would go, what would be preempted, utilization before and after)
// and `grove get capacity` (free room per node and how many more instances of
// a shape fit). Both use the scheduler loop's own inputs and the default profile.
import type { App, Instance, Node, PlannedInstance, PlanResult, PlanUtilization, Resources } from "@grove/api";
import {
  instanceTemplate,
  isFinished,
  normalizeResources,
  parseBytes,
  parseCpuMillis,
  resourcesUpdatePolicy,
  templateChange,
  GroveError,
} from "@grove/api";
import {
  addResources,
  capacity,
  DEFAULT_DYNAMIC_HOST_PORTS,
  defaultProfile,
  hostPortRequest,
  placeBatch,
  seededRng,
  withHostPorts,
  subtractResources,
  zeroResources,
  type CapacityReport,
  type HostPortRange,
  type NodeView,
  type PlacementRequest,
} from "../scheduler";
import { allocations, nodeViews, requestExtras } from "../scheduler/snapshot";
import { resizeFits } from "./resize";

const zero = zeroResources;
const add = addResources;

/** "cpu=500m,memory=1Gi[,pids=64][,disk=1Gi]" -> Resources; errors name the part. */
export function parseShape(shape: string): Resources {
  const out: Resources = { cpuMillis: 0, memoryBytes: 0, pids: 0 };
  if (shape.trim() === "") throw new GroveError("ValidationFailed", "shape: empty (expected e.g. cpu=500m,memory=1Gi)");
  for (const part of shape.split(",")) {
    const [k, v, ...more] = part.split("=").map((s) => s.trim());
    const bad = (msg: string) =>
      new GroveError("ValidationFailed", `shape: ${msg} in "${part}" (expected e.g. cpu=500m,memory=1Gi)`, [
        { path: `/shape/${k ?? ""}`, message: msg },
      ]);
    if (!k || v === undefined || v === "" || more.length) throw bad("expected key=value");
    try {
      if (k === "cpu") out.cpuMillis = parseCpuMillis(v);
      else if (k === "memory") out.memoryBytes = parseBytes(v);
      else if (k === "disk") out.diskBytes = parseBytes(v);
      else if (k === "pids") {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new Error(`"${v}" is not a whole number`);
        out.pids = n;
      } else throw bad(`unknown resource "${k}" (cpu, memory, pids, disk)`);
    } catch (e) {
      if (e instanceof GroveError) throw e;
      throw bad(e instanceof Error ? e.message : String(e));
    }
  }
  if (out.cpuMillis === 0 && out.memoryBytes === 0 && out.pids === 0 && !out.diskBytes) {
    throw new GroveError("ValidationFailed", "shape: asks for nothing");
  }
  return out;
}

export function capacityOf(nodes: readonly Node[], instances: readonly Instance[], shape?: Resources): CapacityReport {
  return capacity(nodeViews(nodes, instances), shape);
}

// The plan's shape is the HTTP contract (POST /v1/plan), defined once in @grove/api.
export type { PlannedInstance, PlanResult } from "@grove/api";
type Utilization = PlanUtilization;

function utilization(views: readonly NodeView[]): Utilization {
  let allocatable = zero();
  let allocated = zero();
  for (const v of views) {
    allocatable = add(allocatable, v.allocatable);
    allocated = add(allocated, v.allocated);
  }
  return {
    allocatable,
    allocated,
    cpu: allocatable.cpuMillis ? allocated.cpuMillis / allocatable.cpuMillis : 0,
    memory: allocatable.memoryBytes ? allocated.memoryBytes / allocatable.memoryBytes : 0,
  };
}

/**
 * What applying these Apps would do, without writing: instances whose
 * template changed are replaced (or resized where they run, when only
 * resources changed, the policy allows it and the new size fits on their
 * node, as the App controller decides), the count is scaled, and every new,
 * replacing or still-unbound instance is placed by the default profile on
 * the current nodes (a deterministic seed, so the same snapshot gives the
 * same plan), with the host ports it would be given (`hostPortRange` is the
 * scheduler loop's range of dynamic ones).
 */
export function planApply(
  apps: readonly App[],
  nodes: readonly Node[],
  instances: readonly Instance[],
  hostPortRange: HostPortRange = DEFAULT_DYNAMIC_HOST_PORTS,
): PlanResult {
  const live = instances.filter((i) => !isFinished(i));
  // Instances resized in place, by "ns/name": they stay on their node with their new size.
  const resized = new Map<string, Instance>();
  const withResized = () =>
    live.map((i) => resized.get(`${i.metadata.namespace ?? "default"}/${i.metadata.name}`) ?? i);
  const removed = new Set<string>();
  const reqs: PlacementRequest[] = [];
  const planned: PlannedInstance[] = [];
  /** The ports of each planned request, by id. */
  const portsOf = new Map<string, readonly { hostPort?: number }[]>();
  const touched = new Set<string>();
  for (const app of apps) {
    const ns = app.metadata.namespace ?? "default";
    touched.add(`${ns}/${app.metadata.name}`);
    const mine = live
      .filter((i) => (i.metadata.namespace ?? "default") === ns && i.spec.app === app.metadata.name)
      .sort((a, b) => a.spec.index - b.spec.index);
    const t = instanceTemplate(app);
    const resources = t.resources ?? normalizeResources(app.spec.resources);
    const byIndex = new Map(mine.map((i) => [i.spec.index, i]));
    for (const i of mine) if (i.spec.index >= app.spec.instances) removed.add(`${ns}/${i.metadata.name}`);
    for (let index = 0; index < app.spec.instances; index++) {
      const cur = byIndex.get(index);
      const what = cur !== undefined ? templateChange(cur, app) : "none";
      const inPlace = what === "resources" && resourcesUpdatePolicy(app) === "InPlace";
      if (cur && inPlace && cur.spec.nodeName) {
        const node = nodes.find((n) => n.metadata.name === cur.spec.nodeName);
        const allocated = allocations(withResized()).get(cur.spec.nodeName) ?? zero();
        if (node && resizeFits(node, allocated, cur.spec.resources, resources).fits) {
          resized.set(`${ns}/${cur.metadata.name}`, { ...cur, spec: { ...cur.spec, resources } });
          planned.push({
            namespace: ns,
            app: app.metadata.name,
            name: cur.metadata.name,
            change: "resize",
            node: cur.spec.nodeName,
          });
          continue;
        }
      }
      // Resized while unbound: placed under its own name with the new size.
      const outdated = what !== "none" && !(inPlace && cur !== undefined && !cur.spec.nodeName);
      if (cur && !outdated && cur.spec.nodeName) continue; // unchanged and placed
      if (cur && outdated) removed.add(`${ns}/${cur.metadata.name}`);
      const name = cur && !outdated ? cur.metadata.name : `${app.metadata.name}-${index}`;
      const change: PlannedInstance["change"] = !cur ? "create" : outdated ? "replace" : "place";
      planned.push({ namespace: ns, app: app.metadata.name, name, change });
      reqs.push({
        id: `${ns}/${name}`,
        app: app.metadata.name,
        namespace: ns,
        resources,
        ...(t.priority !== undefined ? { priority: t.priority } : {}),
        ...(t.placement ? { placement: t.placement } : {}),
        ...hostPortRequest(t.ports, hostPortRange),
      });
      portsOf.set(`${ns}/${name}`, t.ports ?? []);
    }
  }
  // Other Apps' unbound instances compete for the same room: place them too.
  for (const i of live) {
    const key = `${i.metadata.namespace ?? "default"}/${i.spec.app}`;
    if (i.spec.nodeName || touched.has(key)) continue;
    reqs.push({
      id: `${i.metadata.namespace ?? "default"}/${i.metadata.name}`,
      app: i.spec.app,
      namespace: i.metadata.namespace ?? "default",
      resources: i.spec.resources,
      ...requestExtras(i),
      ...hostPortRequest(i.spec.ports, hostPortRange),
    });
  }
  const beforeViews = nodeViews(nodes, live);
  const remaining = withResized().filter(
    (i) => !removed.has(`${i.metadata.namespace ?? "default"}/${i.metadata.name}`),
  );
  const views = nodeViews(nodes, remaining);
  // Resizes are not placed: only new, replacing and unbound instances are.
  const placing = planned.filter((p) => p.change !== "resize");
  const results = placeBatch(reqs, views, defaultProfile(), seededRng(1));
  const afterViews = views.map((v) => ({ ...v, allocated: { ...v.allocated } }));
  const byName = new Map(afterViews.map((v) => [v.name, v]));
  const liveById = new Map(live.map((i) => [`${i.metadata.namespace ?? "default"}/${i.metadata.name}`, i]));
  const preempted: string[] = [];
  let fits = true;
  results.forEach((r, k) => {
    const p = placing[k];
    if (r.nodeName) {
      const v = byName.get(r.nodeName)!;
      v.allocated = add(v.allocated, reqs[k]!.resources);
      for (const victim of r.victims ?? []) {
        preempted.push(victim);
        const inst = liveById.get(victim);
        if (inst) v.allocated = subtractResources(v.allocated, inst.spec.resources);
      }
    }
    if (!p) return; // another App's instance
    if (r.nodeName) {
      p.node = r.nodeName;
      if (r.victims?.length) p.victims = r.victims;
      const ports = withHostPorts(portsOf.get(reqs[k]!.id) ?? [], r.hostPorts);
      if (ports.length > 0) p.hostPorts = ports.map((q) => q.hostPort!);
    } else {
      p.reason = r.reason ?? "no node fits";
      fits = false;
    }
  });
  return {
    instances: planned,
    removed: [...removed].sort(),
    preempted: preempted.sort(),
    before: utilization(beforeViews),
    after: utilization(afterViews),
    fits,
  };
}
