// CSV traces. Columns (header required, any order):
//   time      seconds from the start (number)
//   event     "arrive" or "depart"
//   id        the instance's id (unique among arrivals)
//   app       the App it belongs to (arrive)
//   cpu       "250m", "0.5" or cores (arrive)
//   memory    "512Mi", "2Gi" or bytes (arrive)
//   duration  seconds it runs (arrive; empty = until a depart row or forever)
//   priority  integer (arrive; empty = 0)
// Lines starting with '#' and blank lines are skipped. Errors name file:line
// and the column.
import * as fs from "node:fs";
import { parseBytes, parseCpuMillis } from "@grove/api";
import type { Departure, WorkItem, Workload } from "./workload";

export const TRACE_COLUMNS = ["time", "event", "id", "app", "cpu", "memory", "duration", "priority"] as const;
const REQUIRED = ["time", "event", "id"] as const;

export function parseTrace(text: string, file = "trace.csv"): Workload {
  const lines = text.split(/\r?\n/);
  let header: string[] | undefined;
  const items: WorkItem[] = [];
  const departures: Departure[] = [];
  const seen = new Set<string>();
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const cells = line.split(",").map((c) => c.trim());
    if (!header) {
      header = cells;
      for (const c of header) {
        if (!(TRACE_COLUMNS as readonly string[]).includes(c)) {
          throw new Error(`${where}: unknown column "${c}" (columns: ${TRACE_COLUMNS.join(", ")})`);
        }
      }
      for (const c of REQUIRED) if (!header.includes(c)) throw new Error(`${where}: missing column "${c}"`);
      return;
    }
    if (cells.length !== header.length) {
      throw new Error(`${where}: expected ${header.length} fields, got ${cells.length}`);
    }
    const row = Object.fromEntries(header.map((h, k) => [h, cells[k]!]));
    const bad = (col: string, msg: string): never => {
      throw new Error(`${where}: ${col}: ${msg}`);
    };
    const time = Number(row.time);
    if (row.time === "" || !Number.isFinite(time) || time < 0) bad("time", `expected seconds >= 0, got "${row.time}"`);
    const id = row.id ?? "";
    if (id === "") bad("id", "required");
    if (row.event === "depart") {
      departures.push({ time, id });
      return;
    }
    if (row.event !== "arrive") bad("event", `expected arrive or depart, got "${row.event}"`);
    if (seen.has(id)) bad("id", `"${id}" arrives twice`);
    seen.add(id);
    const quantity = (col: string, parse: (s: string) => number): number => {
      const v = row[col] ?? "";
      if (v === "") bad(col, "required for arrive");
      try {
        const n = parse(v);
        if (!(n > 0)) bad(col, `must be positive, got "${v}"`);
        return n;
      } catch (e) {
        return bad(col, e instanceof Error ? e.message : String(e));
      }
    };
    const item: WorkItem = {
      time,
      id,
      app: row.app || id,
      resources: { cpuMillis: quantity("cpu", parseCpuMillis), memoryBytes: quantity("memory", parseBytes), pids: 1 },
      priority: 0,
    };
    if (row.duration) {
      const d = Number(row.duration);
      if (!Number.isFinite(d) || d <= 0) bad("duration", `expected seconds > 0, got "${row.duration}"`);
      item.duration = d;
    }
    if (row.priority) {
      const p = Number(row.priority);
      if (!Number.isInteger(p)) bad("priority", `expected an integer, got "${row.priority}"`);
      item.priority = p;
    }
    items.push(item);
  });
  if (!header) throw new Error(`${file}: empty trace (expected a header: ${TRACE_COLUMNS.join(",")})`);
  for (const d of departures) {
    if (!seen.has(d.id)) throw new Error(`${file}: depart of "${d.id}" which never arrives`);
  }
  return { name: file, items, departures };
}

export function readTrace(file: string): Workload {
  return parseTrace(fs.readFileSync(file, "utf8"), file);
}

/** Writes a workload as a CSV trace (round-trips through parseTrace). */
export function formatTrace(w: Workload): string {
  const out = [TRACE_COLUMNS.join(",")];
  for (const it of w.items) {
    out.push(
      [
        it.time,
        "arrive",
        it.id,
        it.app,
        `${it.resources.cpuMillis}m`,
        it.resources.memoryBytes,
        it.duration ?? "",
        it.priority,
      ].join(","),
    );
  }
  for (const d of w.departures) out.push([d.time, "depart", d.id, "", "", "", "", ""].join(","));
  return out.join("\n") + "\n";
}
