// Feasibility filters. Each rejects with a named reason so an unplaceable
// instance says why ("memory: insufficient on 12 of 12 nodes").

import { freeInRange } from "./ports";
import type { Filter, LabelConstraint, NodeView, PlacementRequest, Taint, Toleration, Verdict } from "./types";

const FIT: Verdict = { fit: true };
const reject = (subject: string, message: string): Verdict => ({ fit: false, reason: { subject, message } });

/** The resources the library schedules. */
export type ResourceKey = "cpuMillis" | "memoryBytes" | "pids" | "diskBytes";
export const RESOURCE_KEYS: readonly ResourceKey[] = ["cpuMillis", "memoryBytes", "pids", "diskBytes"];

const NOT_READY = reject("node-ready", "not ready");
const CORDONED = reject("node-schedulable", "cordoned");

// The node's agent is up and reporting.
export const nodeReady: Filter = {
  name: "node-ready",
  scope: "node",
  passesWhen: "ready",
  check: (_req, node) => (node.ready ? FIT : NOT_READY),
};

// An operator cordoned the node: keep what runs there, place nothing new.
export const nodeSchedulable: Filter = {
  name: "node-schedulable",
  scope: "node",
  passesWhen: "schedulable",
  check: (_req, node) => (node.unschedulable ? CORDONED : FIT),
};

/** Free amount of one resource on a node (never negative; Infinity for disk on a node that reports none). */
export function free(node: NodeView, resource: ResourceKey): number {
  const cap = node.allocatable[resource];
  if (cap === undefined) return Infinity;
  return Math.max(0, cap - (node.allocated[resource] ?? 0));
}

function fitFilter(name: string, subject: string, resource: ResourceKey): Filter {
  const insufficient = reject(subject, "insufficient");
  return {
    name,
    scope: "node",
    check: (req: PlacementRequest, node: NodeView): Verdict => {
      const want = req.resources[resource] ?? 0;
      const cap = node.allocatable[resource];
      // A node that does not report a resource (only disk is optional) is not limited by it.
      if (cap === undefined) return FIT;
      return (node.allocated[resource] ?? 0) + want <= cap ? FIT : insufficient;
    },
  };
}

// The request fits in what is left of the node's allocatable CPU. (cpu,
// memory and pids are always present: plain property reads, the hot path.)
const NO_CPU = reject("cpu", "insufficient");
export const cpuFit: Filter = {
  name: "cpu-fit",
  scope: "node",
  passesWhen: "cpu-fits",
  check: (req, node) =>
    node.allocated.cpuMillis + req.resources.cpuMillis <= node.allocatable.cpuMillis ? FIT : NO_CPU,
};
// ... memory.
const NO_MEMORY = reject("memory", "insufficient");
export const memoryFit: Filter = {
  name: "memory-fit",
  scope: "node",
  passesWhen: "memory-fits",
  check: (req, node) =>
    node.allocated.memoryBytes + req.resources.memoryBytes <= node.allocatable.memoryBytes ? FIT : NO_MEMORY,
};
// ... process ids (pids cgroup limit).
const NO_PIDS = reject("pids", "insufficient");
export const pidsFit: Filter = {
  name: "pids-fit",
  scope: "node",
  passesWhen: "pids-fits",
  check: (req, node) => (node.allocated.pids + req.resources.pids <= node.allocatable.pids ? FIT : NO_PIDS),
};
// ... disk. Nodes that report no disk capacity are treated as unlimited
// (agents do not measure disk yet; see docs/scheduling.md).
export const diskFit: Filter = {
  ...fitFilter("disk-fit", "disk", "diskBytes"),
  applies: (req) => (req.resources.diskBytes ?? 0) > 0,
};

// Host ports: two instances never bind the same port on one node, and a
// request for dynamic host ports needs that many free in their range (ports.ts
// hands them out once the node is chosen).
export const hostPortsFit: Filter = {
  name: "host-ports",
  scope: "node",
  applies: (req) => (req.hostPorts?.length ?? 0) > 0 || (req.dynamicHostPorts?.count ?? 0) > 0,
  check: (req, node) => {
    const ports = req.hostPorts;
    if (ports && ports.length > 0 && node.usedHostPorts) {
      const taken = ports.filter((p) => node.usedHostPorts!.has(p));
      if (taken.length > 0) return reject("ports", `${taken.join(",")} in use`);
    }
    const dynamic = req.dynamicHostPorts;
    if (dynamic && dynamic.count > 0 && freeInRange(dynamic.range, node.usedHostPorts, ports) < dynamic.count) {
      return reject("ports", `dynamic host port range ${dynamic.range.first}-${dynamic.range.last} exhausted`);
    }
    return FIT;
  },
};

/** Whether labels satisfy one constraint. */
export function matchConstraint(labels: Readonly<Record<string, string>>, c: LabelConstraint): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, c.key);
  const v = labels[c.key];
  const values = c.values ?? [];
  switch (c.op) {
    case "=":
      return has && v === values[0];
    case "!=":
      return !has || v !== values[0];
    case "in":
      return has && values.includes(v!);
    case "notin":
      return !has || !values.includes(v!);
    case "exists":
      return has;
    case "notexists":
      return !has;
  }
}

/** "zone in (a,b)" */
export function formatConstraint(c: LabelConstraint): string {
  const values = c.values ?? [];
  if (c.op === "exists" || c.op === "notexists") return `${c.key} ${c.op}`;
  if (c.op === "in" || c.op === "notin") return `${c.key} ${c.op} (${values.join(",")})`;
  return `${c.key}${c.op}${values[0] ?? ""}`;
}

/** Whether a node passes a request's selector and constraints (no reason). */
export function matchesSelector(req: PlacementRequest, node: NodeView): boolean {
  const p = req.placement;
  if (!p) return true;
  if (p.nodeSelector) for (const [k, v] of Object.entries(p.nodeSelector)) if (node.labels[k] !== v) return false;
  if (p.constraints) for (const c of p.constraints) if (!matchConstraint(node.labels, c)) return false;
  return true;
}

// Node selector and label constraints (=, !=, in, notin, exists, notexists).
export const nodeSelectorFilter: Filter = {
  name: "node-selector",
  scope: "node",
  applies: (req) => req.placement?.nodeSelector !== undefined || req.placement?.constraints !== undefined,
  check: (req, node) => {
    const p = req.placement;
    if (!p) return FIT;
    if (p.nodeSelector) {
      for (const [k, v] of Object.entries(p.nodeSelector)) {
        if (node.labels[k] !== v) return reject("node-selector", `${k}=${v} not matched`);
      }
    }
    if (p.constraints) {
      for (const c of p.constraints) {
        if (!matchConstraint(node.labels, c)) return reject("constraint", `${formatConstraint(c)} not matched`);
      }
    }
    return FIT;
  },
};

/** Whether a toleration tolerates a taint. */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.key !== taint.key) return false;
  if (t.effect !== undefined && t.effect !== taint.effect) return false;
  if (t.op === "exists") return true;
  return (t.value ?? "") === (taint.value ?? "");
}

/** The node's taints of an effect that the request does not tolerate. */
export function untolerated(req: PlacementRequest, node: NodeView, effect: Taint["effect"]): Taint[] {
  const taints = node.taints;
  if (!taints || taints.length === 0) return [];
  const tols = req.placement?.tolerations ?? [];
  return taints.filter((taint) => taint.effect === effect && !tols.some((t) => tolerates(t, taint)));
}

// Taints with effect NoSchedule keep out every instance that does not tolerate them.
export const taintsFilter: Filter = {
  name: "taints",
  scope: "node",
  passesWhen: "untainted",
  check: (req, node) => {
    const bad = untolerated(req, node, "NoSchedule");
    if (bad.length === 0) return FIT;
    const t = bad[0]!;
    return reject("taint", `${t.key}${t.value !== undefined ? "=" + t.value : ""} not tolerated`);
  },
};

export function appKeyOf(req: PlacementRequest): string {
  return `${req.namespace}/${req.app}`;
}

// Anti-affinity: at most one instance of the same App per node.
export const antiAffinityFilter: Filter = {
  name: "anti-affinity",
  scope: "node",
  readsApp: true,
  applies: (req) => req.placement?.antiAffinity === true,
  check: (req, node) => {
    if (!req.placement?.antiAffinity) return FIT;
    return (node.appCounts?.get(appKeyOf(req)) ?? 0) > 0 ? reject("anti-affinity", "app already on node") : FIT;
  },
};

// Topology spread (Kubernetes PodTopologySpread, DoNotSchedule): placing here
// must keep (count in this node's domain + 1) - (smallest domain count) <= maxSkew.
// Nodes without the topology label are rejected.
export const spreadFilter: Filter = {
  name: "topology-spread",
  // Counts the App's instances over every node of each domain.
  scope: "cluster",
  applies: (req) => req.placement?.spread !== undefined,
  check: (req, node, ctx) => {
    const spread = req.placement?.spread;
    if (!spread || !ctx) return FIT;
    const domain = node.labels[spread.topologyKey];
    if (domain === undefined) return reject("spread", `no ${spread.topologyKey} label`);
    const counts = ctx.domainCounts(spread.topologyKey);
    let min = Infinity;
    for (const c of counts.values()) if (c < min) min = c;
    if (min === Infinity) min = 0;
    const mine = counts.get(domain) ?? 0;
    return mine + 1 - min <= spread.maxSkew
      ? FIT
      : reject("spread", `${spread.topologyKey}=${domain} would exceed max skew ${spread.maxSkew}`);
  },
};

/** Node-state filters first (cheap), then fit, then the per-request rules. */
export const DEFAULT_FILTERS: readonly Filter[] = [
  nodeReady,
  nodeSchedulable,
  cpuFit,
  memoryFit,
  pidsFit,
  diskFit,
  hostPortsFit,
  nodeSelectorFilter,
  taintsFilter,
  antiAffinityFilter,
  spreadFilter,
];
