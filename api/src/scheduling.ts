// The scheduling dry runs as the API returns them (POST /v1/plan, GET
// /v1/capacity), and how the CLI prints them.
import type { Resources } from "./schemas";
import { formatBytes } from "./quantity";

export interface PlannedInstance {
  namespace: string;
  app: string;
  name: string;
  change: "create" | "replace" | "place";
  node?: string;
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
  removed: string[];
  preempted: string[];
  before: PlanUtilization;
  after: PlanUtilization;
  fits: boolean;
}

export interface NodeCapacity {
  name: string;
  schedulable: boolean;
  allocatable: Resources;
  allocated: Resources;
  free: Resources;
  fits?: number;
}

export interface CapacityReport {
  nodes: NodeCapacity[];
  cluster: { allocatable: Resources; allocated: Resources; free: Resources };
  shape?: Resources;
  fits?: number;
  fitsIfPooled?: number;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const cpu = (m: number) => (m % 1000 === 0 ? String(m / 1000) : `${m}m`);

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
  if (p.instances.length === 0) out.push("No instance would be created, replaced or placed.");
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
      ` (of ${cpu(p.after.allocatable.cpuMillis)} cpu, ${formatBytes(p.after.allocatable.memoryBytes)})`,
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
      `${cpu(f.cpuMillis)}/${cpu(a.cpuMillis)}`,
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
    const what = `cpu=${cpu(s.cpuMillis)},memory=${formatBytes(s.memoryBytes)}${s.pids ? `,pids=${s.pids}` : ""}`;
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
