// Preemption: when no node fits, a higher-priority request may evict
// strictly lower-priority instances on one node. The filter chain decides
// whether the request fits once they are gone (feasibility.ts).

import type { Resources } from "@grove/api";
import { FilterChain } from "./feasibility";
import { RESOURCE_KEYS } from "./filters";
import { subtractResources } from "./resources";
import type { NodeView, PlacedInstance, PlacementContext, PlacementRequest, Profile } from "./types";

/** The node as it would be without these instances. */
export function withoutInstances(node: NodeView, victims: readonly PlacedInstance[]): NodeView {
  if (victims.length === 0) return node;
  const gone = new Set(victims.map((v) => v.id));
  let allocated = node.allocated;
  const appCounts = new Map(node.appCounts ?? []);
  let ports: Set<number> | undefined;
  for (const v of victims) {
    allocated = subtractResources(allocated, v.resources);
    appCounts.set(v.appKey, Math.max(0, (appCounts.get(v.appKey) ?? 0) - 1));
    if (v.hostPorts && node.usedHostPorts) {
      ports ??= new Set(node.usedHostPorts);
      for (const p of v.hostPorts) ports.delete(p);
    }
  }
  return {
    ...node,
    allocated,
    appCounts,
    instances: (node.instances ?? []).filter((i) => !gone.has(i.id)),
    ...(ports ? { usedHostPorts: ports } : {}),
  };
}

/** The node without the instances of these ids. */
export function withoutIds(node: NodeView, ids: readonly string[]): NodeView {
  return withoutInstances(
    node,
    (node.instances ?? []).filter((i) => ids.includes(i.id)),
  );
}

function size(node: NodeView, r: Resources): number {
  let s = 0;
  for (const k of RESOURCE_KEYS) {
    const cap = node.allocatable[k];
    if (cap && cap > 0) s += (r[k] ?? 0) / cap;
  }
  return s;
}

/**
 * Preemption: the smallest set of strictly lower-priority instances on one
 * node whose eviction lets the request pass every filter. Victims are taken
 * lowest priority first (largest first within a priority), then any victim
 * the request still fits without is spared (Kubernetes' "reprieve"). Among
 * nodes: fewest victims, then the lowest highest-victim priority, then name.
 */
export function preempt(
  req: PlacementRequest,
  nodes: readonly NodeView[],
  profile: Profile,
  ctx: PlacementContext,
): { node: string; victims: string[] } | undefined {
  const prio = req.priority ?? 0;
  // Every filter of the profile, as before preemption was part of place().
  const chain = new FilterChain(profile.filters);
  const fits = (node: NodeView, victims: readonly PlacedInstance[]) =>
    chain.firstFailure(req, withoutInstances(node, victims), ctx) < 0;
  let best: { node: string; victims: PlacedInstance[]; maxPrio: number } | undefined;
  for (const node of nodes) {
    const lower = (node.instances ?? []).filter((i) => i.priority < prio);
    if (lower.length === 0) continue;
    if (!fits(node, lower)) continue;
    const order = [...lower].sort(
      (a, b) =>
        a.priority - b.priority ||
        size(node, b.resources) - size(node, a.resources) ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    let victims: PlacedInstance[] = [];
    for (const v of order) {
      if (fits(node, victims)) break;
      victims.push(v);
    }
    // Reprieve: spare the most important victims the request fits without.
    for (const v of [...victims].sort((a, b) => b.priority - a.priority)) {
      const rest = victims.filter((x) => x !== v);
      if (fits(node, rest)) victims = rest;
    }
    const maxPrio = Math.max(...victims.map((v) => v.priority));
    if (
      !best ||
      victims.length < best.victims.length ||
      (victims.length === best.victims.length && maxPrio < best.maxPrio)
    ) {
      best = { node: node.name, victims, maxPrio };
    }
  }
  return best && { node: best.node, victims: best.victims.map((v) => v.id).sort() };
}
