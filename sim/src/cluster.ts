// Cluster descriptions: one or more pools of identical nodes (homogeneous or
// mixed shapes), each with labels. From flags or a JSON file.
import * as fs from "node:fs";
import { parseBytes, parseCpuMillis, type Resources } from "@grove/api";
import type { NodeView, Taint } from "@grove/control-plane/scheduler";

export interface NodePool {
  /** Name prefix of the pool's nodes ("pool-0" -> pool-0-0, pool-0-1, ...). */
  name: string;
  count: number;
  node: Resources;
  labels?: Record<string, string>;
  taints?: Taint[];
}

export interface ClusterSpec {
  pools: NodePool[];
}

export function homogeneous(count: number, node: Resources, labels?: Record<string, string>): ClusterSpec {
  return { pools: [{ name: "node", count, node, ...(labels ? { labels } : {}) }] };
}

export function nodeCount(c: ClusterSpec): number {
  return c.pools.reduce((s, p) => s + p.count, 0);
}

/** The nodes of a cluster, empty. `zones` > 0 spreads a "zone" label round-robin. */
export function buildNodes(c: ClusterSpec, zones = 0): NodeView[] {
  const out: NodeView[] = [];
  for (const p of c.pools) {
    for (let i = 0; i < p.count; i++) {
      const labels = { ...(p.labels ?? {}) };
      if (zones > 0 && labels.zone === undefined) labels.zone = `z${out.length % zones}`;
      out.push({
        name: `${p.name}-${i}`,
        ready: true,
        unschedulable: false,
        allocatable: { ...p.node },
        allocated: {
          cpuMillis: 0,
          memoryBytes: 0,
          pids: 0,
          ...(p.node.diskBytes !== undefined ? { diskBytes: 0 } : {}),
        },
        labels,
        ...(p.taints ? { taints: p.taints } : {}),
      });
    }
  }
  return out;
}

/** The same cluster with `keep` nodes, taken from the pools in proportion. */
export function scaled(c: ClusterSpec, keep: number): ClusterSpec {
  const total = nodeCount(c);
  if (keep >= total) return c;
  const pools = c.pools.map((p) => ({ ...p, count: Math.floor((p.count * keep) / total) }));
  let left = keep - pools.reduce((s, p) => s + p.count, 0);
  for (let i = 0; left > 0; i = (i + 1) % pools.length) {
    if (pools[i]!.count < c.pools[i]!.count) {
      pools[i]!.count++;
      left--;
    }
  }
  return { pools };
}

function fail(where: string, msg: string): never {
  throw new Error(`${where}: ${msg}`);
}

function resourcesFrom(v: unknown, where: string): Resources {
  if (typeof v !== "object" || v === null) fail(where, "expected an object with cpu and memory");
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!["cpu", "memory", "pids", "disk"].includes(k))
      fail(`${where}.${k}`, "unknown field (cpu, memory, pids, disk)");
  }
  const q = (k: string, parse: (s: string | number) => number): number => {
    const x = o[k];
    if (typeof x !== "string" && typeof x !== "number") fail(`${where}.${k}`, "required (a quantity)");
    try {
      return parse(x);
    } catch (e) {
      fail(`${where}.${k}`, e instanceof Error ? e.message : String(e));
    }
  };
  const r: Resources = {
    cpuMillis: q("cpu", parseCpuMillis),
    memoryBytes: q("memory", parseBytes),
    pids: o.pids === undefined ? 32768 : q("pids", Number),
  };
  if (o.disk !== undefined) r.diskBytes = q("disk", parseBytes);
  if (r.cpuMillis <= 0) fail(`${where}.cpu`, "must be positive");
  if (r.memoryBytes <= 0) fail(`${where}.memory`, "must be positive");
  return r;
}

/**
 * A cluster file (JSON): {"pools": [{"name": "big", "count": 10,
 * "node": {"cpu": "64", "memory": "256Gi", "pids": 100000}, "labels": {"zone": "a"}}]}.
 */
export function parseClusterFile(file: string): ClusterSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    fail(file, e instanceof Error ? e.message : String(e));
  }
  const pools = (raw as { pools?: unknown }).pools;
  if (!Array.isArray(pools) || pools.length === 0) fail(`${file}: pools`, "expected a non-empty array");
  return {
    pools: pools.map((p: unknown, i): NodePool => {
      const where = `${file}: pools[${i}]`;
      if (typeof p !== "object" || p === null) fail(where, "expected an object");
      const o = p as Record<string, unknown>;
      if (!Number.isInteger(o.count) || (o.count as number) < 0) fail(`${where}.count`, "expected a whole number");
      const labels = o.labels;
      if (labels !== undefined && (typeof labels !== "object" || labels === null))
        fail(`${where}.labels`, "expected a map");
      return {
        name: typeof o.name === "string" ? o.name : `pool-${i}`,
        count: o.count as number,
        node: resourcesFrom(o.node, `${where}.node`),
        ...(labels ? { labels: labels as Record<string, string> } : {}),
      };
    }),
  };
}
