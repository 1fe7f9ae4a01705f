// Pure table rendering for `grove get`: columns per kind, aligned with spaces.
import { formatBytes, formatCpu } from "../../quantity";
import type { App, Instance, Node, Resources } from "../../schemas";
import type { Kind } from "../../resource-kinds";
import type { Task } from "../../task-schema";

export interface TableOptions {
  /** Add the PID, CPU and MEMORY columns (instances). */
  wide?: boolean;
  /** Prefix a NAMESPACE column (listing all namespaces). */
  showNamespace?: boolean;
  /** Milliseconds since the epoch, for AGE. */
  now: number;
}

const NONE = "-";
const GAP = "   ";

export function tableHeaders(kind: Kind, options: TableOptions): string[] {
  const ns = options.showNamespace && kind !== "Node" ? ["NAMESPACE"] : [];
  switch (kind) {
    case "App":
      return [...ns, "NAME", "INSTANCES", "RUNNING", "AGE"];
    case "Instance":
      return [
        ...ns,
        "NAME",
        "APP",
        "NODE",
        "STATE",
        "RESTARTS",
        "EXIT",
        "REASON",
        "AGE",
        ...(options.wide ? ["PID", "CPU", "MEMORY"] : []),
      ];
    case "Node":
      return ["NAME", "READY", "HEARTBEAT", "CPU", "MEMORY", "ALLOCATED", "AGE"];
    case "Task":
      return [...ns, "NAME", "PHASE", "ATTEMPTS", "EXIT", "REASON", "AGE"];
  }
}

export function tableRow(kind: Kind, object: App | Instance | Node | Task, options: TableOptions): string[] {
  const ns = options.showNamespace && kind !== "Node" ? [object.metadata.namespace ?? NONE] : [];
  const age = formatAge(object.metadata.creationTimestamp, options.now);
  switch (kind) {
    case "App": {
      const app = object as App;
      return [...ns, app.metadata.name, String(app.spec.instances), String(app.status?.running ?? 0), age];
    }
    case "Instance": {
      const inst = object as Instance;
      const status = inst.status;
      const row = [
        ...ns,
        inst.metadata.name,
        inst.spec.app,
        status?.nodeName ?? inst.spec.nodeName ?? NONE,
        status?.state ?? "Pending",
        String(inst.spec.restarts),
        status?.exitCode !== undefined ? String(status.exitCode) : NONE,
        status?.reason ?? NONE,
        age,
      ];
      if (options.wide) {
        row.push(
          status?.pid !== undefined ? String(status.pid) : NONE,
          formatCpu(inst.spec.resources.cpuMillis),
          formatBytes(inst.spec.resources.memoryBytes),
        );
      }
      return row;
    }
    case "Node": {
      const node = object as Node;
      const allocatable = node.status?.allocatable ?? node.status?.capacity;
      return [
        node.metadata.name,
        nodeReadiness(node),
        // How long ago the agent was last heard (the replica holding its stream refreshes it every few seconds).
        node.status?.lastHeartbeatTime ? `${formatAge(node.status.lastHeartbeatTime, options.now)} ago` : NONE,
        allocatable ? formatCpu(allocatable.cpuMillis) : NONE,
        allocatable ? formatBytes(allocatable.memoryBytes) : NONE,
        allocationSummary(node.status?.allocated, allocatable),
        age,
      ];
    }
    case "Task": {
      const task = object as Task;
      const st = task.status;
      return [
        ...ns,
        task.metadata.name,
        st?.phase ?? "Pending",
        `${st?.attempts ?? 0}/${(task.spec.retries ?? 0) + 1}`,
        st?.exitCode !== undefined ? String(st.exitCode) : NONE,
        st?.reason ?? NONE,
        age,
      ];
    }
  }
}

/** "Ready", "NotReady" or "Unknown", with ",SchedulingDisabled" when cordoned. */
export function nodeReadiness(node: Node): string {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status;
  const word = ready === "True" ? "Ready" : ready === "False" ? "NotReady" : "Unknown";
  return node.spec.unschedulable ? `${word},SchedulingDisabled` : word;
}

/** "cpu 25%, mem 50%": the share of allocatable resources that placed instances hold. */
export function allocationSummary(allocated: Resources | undefined, allocatable: Resources | undefined): string {
  if (!allocatable) return NONE;
  const used = allocated ?? { cpuMillis: 0, memoryBytes: 0, pids: 0 };
  const pct = (a: number, b: number) => (b > 0 ? `${Math.round((100 * a) / b)}%` : NONE);
  return `cpu ${pct(used.cpuMillis, allocatable.cpuMillis)}, mem ${pct(used.memoryBytes, allocatable.memoryBytes)}`;
}

/** "45s", "12m", "5h", "3d"; "<unknown>" without a timestamp. */
export function formatAge(timestamp: string | undefined, now: number): string {
  if (!timestamp) return "<unknown>";
  const then = Date.parse(timestamp);
  if (Number.isNaN(then)) return "<unknown>";
  const seconds = Math.max(0, Math.floor((now - then) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** The width of each column over all rows. */
export function columnWidths(rows: readonly (readonly string[])[]): number[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return widths;
}

/** One line: every cell but the last padded to its column's width. */
export function formatRow(row: readonly string[], widths: readonly number[]): string {
  return row
    .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? cell.length)))
    .join(GAP)
    .trimEnd();
}

/** Rows (the first being the header) as aligned lines. */
export function renderTable(rows: readonly (readonly string[])[]): string[] {
  const widths = columnWidths(rows);
  return rows.map((row) => formatRow(row, widths));
}

/** A whole table for objects of one kind. */
export function renderObjects(
  kind: Kind,
  objects: readonly (App | Instance | Node | Task)[],
  options: TableOptions,
): string[] {
  return renderTable([tableHeaders(kind, options), ...objects.map((o) => tableRow(kind, o, options))]);
}
