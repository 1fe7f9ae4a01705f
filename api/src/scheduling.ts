// The scheduling dry runs as the API returns them (POST /v1/plan, GET
// /v1/capacity), and how the CLI prints them.
import type { Resources } from "./schemas";
import { formatBytes, formatCpu } from "./quantity";

export interface PlannedInstance {
  namespace: string;
  app: string;
  name: string;
  /** resize: only its resources change and it keeps its node (the App's updatePolicy.resources is InPlace). */
  change: "create" | "replace" | "place" | "resize";
  node?: string;
  /** The host port of each of its ports on that node: fixed ones and those the scheduler would hand out. */
  hostPorts?: number[];
  reason?: string;
  victims?: string[];
}

export interface PlanUtilization {
  allocatable: Resources;
  allocated: Resources;
  cpu: number;
  memory: number;
}

export interface PlanResult {
  instances: PlannedInstance[];
  /** Instances that would be stopped (scale down or replaced by a changed template). */
  removed: string[];
  preempted: string[];
  before: PlanUtilization;
  after: PlanUtilization;
  /** True when every new or changed instance would be placed. */
  fits: boolean;
}

export interface NodeCapacity {
  name: string;
  schedulable: boolean;
  allocatable: Resources;
  allocated: Resources;
  free: Resources;
  /** Instances of the shape that fit in this node's free room (0 when not schedulable). */
  fits?: number;
}

export interface CapacityReport {
  nodes: NodeCapacity[];
  cluster: { allocatable: Resources; allocated: Resources; free: Resources };
  shape?: Resources;
  /** Sum over nodes of what fits on each: what `apply` would place now. */
  fits?: number;
  /** Instances the cluster's free total could hold if it were one node; fits < fitsIfPooled means stranded room. */
  fitsIfPooled?: number;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("   ")
      .trimEnd(),
  );
}

/** `grove apply --plan`: one line per new or changed instance, then the utilization delta. */
export function renderPlan(p: PlanResult): string[] {
  const out: string[] = [];
  if (p.instances.length === 0) out.push("No instance would be created, replaced, resized or placed.");
  else {
    out.push(
      ...table([
        ["INSTANCE", "CHANGE", "NODE", "NOTE"],
        ...p.instances.map((i) => [
          `${i.namespace}/${i.name}`,
          i.change,
          i.node ?? "<pending>",
          i.reason ?? (i.victims?.length ? `preempts ${i.victims.join(", ")}` : ""),
        ]),
      ]),
    );
  }
  if (p.removed.length) out.push("", `Would stop: ${p.removed.join(", ")}`);
  if (p.preempted.length) out.push("", `Would preempt: ${p.preempted.join(", ")}`);
  out.push(
    "",
    `Utilization: cpu ${pct(p.before.cpu)} -> ${pct(p.after.cpu)}, memory ${pct(p.before.memory)} -> ${pct(p.after.memory)}` +
      ` (of ${formatCpu(p.after.allocatable.cpuMillis)} cpu, ${formatBytes(p.after.allocatable.memoryBytes)})`,
  );
  const pending = p.instances.filter((i) => !i.node).length;
  out.push(pending ? `${pending} instance(s) would stay Pending.` : "Everything fits.");
  return out;
}

/** `grove get capacity [--shape ...]`. */
export function renderCapacity(c: CapacityReport): string[] {
  const head = ["NODE", "CPU FREE/ALLOCATABLE", "MEMORY FREE/ALLOCATABLE", "PIDS FREE"];
  if (c.shape) head.push("FITS");
  const row = (name: string, a: Resources, f: Resources, fits?: number, note = "") => {
    const r = [
      name + note,
      `${formatCpu(f.cpuMillis)}/${formatCpu(a.cpuMillis)}`,
      `${formatBytes(f.memoryBytes)}/${formatBytes(a.memoryBytes)}`,
      String(f.pids),
    ];
    if (c.shape) r.push(fits === undefined ? "" : String(fits));
    return r;
  };
  const rows = [
    head,
    ...c.nodes.map((n) => row(n.name, n.allocatable, n.free, n.fits, n.schedulable ? "" : " (unschedulable)")),
    row("TOTAL", c.cluster.allocatable, c.cluster.free, c.fits),
  ];
  const out = table(rows);
  if (c.shape) {
    const s = c.shape;
    const what = `cpu=${formatCpu(s.cpuMillis)},memory=${formatBytes(s.memoryBytes)}${s.pids ? `,pids=${s.pids}` : ""}`;
    out.push(
      "",
      `${c.fits} more instance(s) of ${what} fit now` +
        (c.fitsIfPooled !== undefined && c.fitsIfPooled > (c.fits ?? 0)
          ? `; the free total would hold ${c.fitsIfPooled}: ${c.fitsIfPooled - (c.fits ?? 0)} stranded by fragmentation.`
          : "."),
    );
  }
  return out;
}
