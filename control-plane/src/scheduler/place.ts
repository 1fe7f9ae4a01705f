// place(): filter the nodes, score the survivors, pick the best (seeded rng
// breaks exact ties), and record why, so "Pending" always has an answer.

import type { PlacementExplain, Resources } from "@grove/api";
import { DEFAULT_FILTERS } from "./filters";
import { binPack } from "./scorers";
import type { FilterReason, NodeView, PlacementRequest, PlacementResult, Profile, Rng } from "./types";

export const DEFAULT_PROFILE: Profile = { name: "default", filters: DEFAULT_FILTERS, scorers: [binPack] };

/** The default profile: ready, not cordoned, cpu/memory/pids fit; bin-pack. */
export function defaultProfile(): Profile {
  return DEFAULT_PROFILE;
}

/** Scores closer than this count as a tie. */
const TIE_EPSILON = 1e-12;

/**
 * "cpu: insufficient on 2 of 3 nodes; node-ready: not ready on 1 of 3 nodes":
 * most rejections first, then in the order the reasons were first seen.
 */
export function describeRejections(reasons: ReadonlyMap<string, number>, nodesConsidered: number): string {
  return [...reasons.entries()]
    .map(([text, count], order) => ({ text, count, order }))
    .sort((a, b) => b.count - a.count || a.order - b.order)
    .map((r) => `${r.text} on ${r.count} of ${nodesConsidered} nodes`)
    .join("; ");
}

export function place(req: PlacementRequest, nodes: readonly NodeView[], profile: Profile, rng: Rng): PlacementResult {
  const rejected: Record<string, number> = {};
  const reasons = new Map<string, number>(); // "memory: insufficient" -> nodes
  const feasible: NodeView[] = [];

  // Feasibility: a node is rejected by the first filter it fails.
  for (const node of nodes) {
    let reason: FilterReason | undefined;
    let filterName = "";
    for (const filter of profile.filters) {
      const verdict = filter.check(req, node);
      if (!verdict.fit) {
        reason = verdict.reason;
        filterName = filter.name;
        break;
      }
    }
    if (!reason) {
      feasible.push(node);
      continue;
    }
    rejected[filterName] = (rejected[filterName] ?? 0) + 1;
    const text = `${reason.subject}: ${reason.message}`;
    reasons.set(text, (reasons.get(text) ?? 0) + 1);
  }

  const explain: PlacementExplain = { nodesConsidered: nodes.length, rejected };
  if (nodes.length === 0) return { explain, reason: "no nodes registered" };
  if (feasible.length === 0) return { explain, reason: describeRejections(reasons, nodes.length) };

  // Ranking: weighted mean of the scorers; ties broken by the seeded rng over
  // name-sorted candidates, so input order does not matter.
  const totalWeight = profile.scorers.reduce((sum, s) => sum + s.weight, 0);
  let best: { node: NodeView; total: number; scores: Record<string, number> }[] = [];
  for (const node of feasible) {
    const scores: Record<string, number> = {};
    let weighted = 0;
    for (const scorer of profile.scorers) {
      const s = Math.min(1, Math.max(0, scorer.score(req, node)));
      scores[scorer.name] = s;
      weighted += s * scorer.weight;
    }
    const total = totalWeight > 0 ? weighted / totalWeight : 0;
    const top = best[0]?.total;
    if (top === undefined || total > top + TIE_EPSILON) best = [{ node, total, scores }];
    else if (Math.abs(total - top) <= TIE_EPSILON) best.push({ node, total, scores });
  }
  best.sort((a, b) => (a.node.name < b.node.name ? -1 : a.node.name > b.node.name ? 1 : 0));
  const pick = best.length === 1 ? 0 : Math.min(best.length - 1, Math.floor(rng.next() * best.length));
  const chosen = best[pick]!;
  explain.scores = { ...chosen.scores, total: chosen.total };
  explain.chosen = chosen.node.name;
  return { nodeName: chosen.node.name, explain };
}

function addResources(a: Resources, b: Resources): Resources {
  return { cpuMillis: a.cpuMillis + b.cpuMillis, memoryBytes: a.memoryBytes + b.memoryBytes, pids: a.pids + b.pids };
}

/**
 * Places requests in order; each placement's resources are added to its node
 * before the next request is placed. The input nodes are not modified.
 */
export function placeBatch(
  reqs: readonly PlacementRequest[],
  nodes: readonly NodeView[],
  profile: Profile,
  rng: Rng,
): PlacementResult[] {
  const working = nodes.map((n) => ({ ...n, allocated: { ...n.allocated } }));
  const byName = new Map(working.map((n) => [n.name, n]));
  return reqs.map((req) => {
    const result = place(req, working, profile, rng);
    if (result.nodeName !== undefined) {
      const node = byName.get(result.nodeName)!;
      node.allocated = addResources(node.allocated, req.resources);
    }
    return result;
  });
}
