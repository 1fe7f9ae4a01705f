// Preemption, batch spread, candidate sampling and capacity; plans are
// recorded by a small harness (Nomad's scheduler Harness style) and asserted
// whole.
import fc from "fast-check";
import type { Resources } from "@grove/api";
import { capacity, howMany } from "./capacity";
import { feasibleToFind, place } from "./place";
import { placeBatch } from "./batch";
import { DEFAULT_PROFILE, PROFILES, profileByName } from "./profiles";
import { mulberry32 } from "./rng";
import type { NodeView, PlacedInstance, PlacementRequest, PlacementResult, PlacementSpec, Profile } from "./types";

const GiB = 1024 ** 3;
const res = (cpuMillis: number, memoryBytes: number, pids = 0): Resources => ({ cpuMillis, memoryBytes, pids });
const node = (name: string, over: Partial<NodeView> = {}): NodeView => ({
  name,
  ready: true,
  unschedulable: false,
  allocatable: res(4000, 8 * GiB, 1000),
  allocated: res(0, 0, 0),
  labels: {},
  ...over,
});
const req = (id: string, r: Resources, over: Partial<PlacementRequest> = {}): PlacementRequest => ({
  id,
  app: "web",
  namespace: "ns",
  resources: r,
  ...over,
});
const inst = (id: string, priority: number, r: Resources, appKey = "ns/batch"): PlacedInstance => ({
  id,
  appKey,
  priority,
  resources: r,
});
/** A node holding these instances (allocated and appCounts derived from them). */
const holding = (name: string, instances: PlacedInstance[], over: Partial<NodeView> = {}): NodeView => {
  const allocated = res(0, 0, 0);
  const appCounts = new Map<string, number>();
  for (const i of instances) {
    allocated.cpuMillis += i.resources.cpuMillis;
    allocated.memoryBytes += i.resources.memoryBytes;
    allocated.pids += i.resources.pids;
    appCounts.set(i.appKey, (appCounts.get(i.appKey) ?? 0) + 1);
  }
  return node(name, { instances, allocated, appCounts, ...over });
};

/** Records every plan (node -> placed ids, preemptions, unplaced) like Nomad's test Harness. */
class PlanHarness {
  readonly plans: Array<{ placed: Record<string, string[]>; preempted: Record<string, string[]>; pending: string[] }> =
    [];
  submit(reqs: PlacementRequest[], nodes: NodeView[], profile: Profile = DEFAULT_PROFILE, seed = 1): PlacementResult[] {
    const results = placeBatch(reqs, nodes, profile, mulberry32(seed));
    const plan = {
      placed: {} as Record<string, string[]>,
      preempted: {} as Record<string, string[]>,
      pending: [] as string[],
    };
    results.forEach((r, i) => {
      const id = reqs[i]!.id;
      if (!r.nodeName) return void plan.pending.push(id);
      (plan.placed[r.nodeName] ??= []).push(id);
      if (r.victims) (plan.preempted[r.nodeName] ??= []).push(...r.victims);
    });
    this.plans.push(plan);
    return results;
  }
}

describe("preemption", () => {
  const small = res(1000, 2 * GiB);
  test("evicts the smallest set of lower-priority instances on one node and lists them in explain", () => {
    const nodes = [
      holding("n1", [inst("b/1", 0, small), inst("b/2", 0, small), inst("b/3", 0, small), inst("b/4", 0, small)]),
      holding("n2", [inst("c/1", 0, res(2000, 4 * GiB)), inst("c/2", 0, res(2000, 4 * GiB))]),
    ];
    const r = place(req("hi", res(2000, 4 * GiB), { priority: 10 }), nodes, DEFAULT_PROFILE, mulberry32(1));
    // n2 needs 1 victim (a 2000m/4Gi one), n1 needs 2.
    expect(r.nodeName).toBe("n2");
    expect(r.victims).toEqual(["c/1"]);
    expect(r.explain.victims).toEqual(["c/1"]);
    expect(r.explain.rejected).toEqual({ "cpu-fit": 2 });
  });

  test("never preempts equal or higher priority", () => {
    const nodes = [holding("n1", [inst("a", 5, res(4000, GiB)), inst("b", 7, res(0, GiB))])];
    const r = place(req("x", res(1000, GiB), { priority: 5 }), nodes, DEFAULT_PROFILE, mulberry32(1));
    expect(r.nodeName).toBeUndefined();
    expect(r.reason).toBe("cpu: insufficient on 1 of 1 nodes");
    expect(place(req("y", res(1000, GiB)), nodes, DEFAULT_PROFILE, mulberry32(1)).nodeName).toBeUndefined();
  });

  test("takes the lowest priority first and spares victims it can do without", () => {
    const nodes = [
      holding("n1", [
        inst("p1-big", 1, res(3000, GiB)),
        inst("p0-small", 0, res(1000, GiB)),
        inst("p2", 2, res(0, GiB)),
      ]),
    ];
    // Needs 3000m: evicting p0-small (1000m) is not enough, p1-big (3000m) is; p0-small is spared.
    const r = place(req("x", res(3000, GiB), { priority: 5 }), nodes, DEFAULT_PROFILE, mulberry32(1));
    expect(r.victims).toEqual(["p1-big"]);
  });

  test("does not preempt when eviction cannot help (cordoned node, ports held by higher priority)", () => {
    const cordoned = holding("n1", [inst("a", 0, res(4000, GiB))], { unschedulable: true });
    expect(place(req("x", res(1000, GiB), { priority: 9 }), [cordoned], DEFAULT_PROFILE, mulberry32(1)).nodeName).toBe(
      undefined,
    );
    const ports = holding("n2", [{ ...inst("a", 10, res(0, 0)), hostPorts: [80] }], { usedHostPorts: new Set([80]) });
    expect(
      place(req("x", res(1, 1), { priority: 9, hostPorts: [80] }), [ports], DEFAULT_PROFILE, mulberry32(1)),
    ).toEqual({
      explain: { nodesConsidered: 1, rejected: { "host-ports": 1 } },
      reason: "ports: 80 in use on 1 of 1 nodes",
    });
  });

  test("a batch places higher priority first, preempts, and the freed room is not double-booked", () => {
    const h = new PlanHarness();
    const nodes = [holding("n1", [inst("low/1", 0, res(2000, 4 * GiB)), inst("low/2", 0, res(2000, 4 * GiB))])];
    const reqs = [
      req("mid", res(2000, 4 * GiB), { priority: 1 }),
      req("top", res(2000, 4 * GiB), { priority: 100 }),
      req("top2", res(2000, 4 * GiB), { priority: 100 }),
    ];
    h.submit(reqs, nodes);
    expect(h.plans).toEqual([
      { placed: { n1: ["top", "top2"] }, preempted: { n1: ["low/1", "low/2"] }, pending: ["mid"] },
    ]);
  });
});

describe("batch spread and anti-affinity", () => {
  const zones = ["a", "a", "b", "b", "c", "c"].map((z, i) => node(`n${i}`, { labels: { zone: z } }));
  const app = (count: number, placement: PlacementSpec) =>
    Array.from({ length: count }, (_, i) => req(`ns/web-${i}`, res(100, 100 * 2 ** 20), { placement }));

  test("all instances of an App placed in one pass honour max skew between them", () => {
    const h = new PlanHarness();
    const results = h.submit(app(9, { spread: { topologyKey: "zone", maxSkew: 1 } }), zones);
    const perZone = new Map<string, number>();
    for (const r of results) {
      const z = zones.find((n) => n.name === r.nodeName)!.labels.zone!;
      perZone.set(z, (perZone.get(z) ?? 0) + 1);
    }
    expect([...perZone.values()]).toEqual([3, 3, 3]);
  });

  test("anti-affinity puts at most one per node and explains the rest", () => {
    const h = new PlanHarness();
    const results = h.submit(app(8, { antiAffinity: true }), zones);
    expect(new Set(results.map((r) => r.nodeName).filter(Boolean)).size).toBe(6);
    expect(h.plans[0]!.pending).toEqual(["ns/web-6", "ns/web-7"]);
    expect(results[7]!.reason).toBe("anti-affinity: app already on node on 6 of 6 nodes");
  });

  test("spread holds for any batch size and maxSkew (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer(),
        (count, maxSkew, seed) => {
          const results = placeBatch(
            app(count, { spread: { topologyKey: "zone", maxSkew } }),
            zones,
            PROFILES["most-allocated"]!,
            mulberry32(seed),
          );
          const perZone = new Map([
            ["a", 0],
            ["b", 0],
            ["c", 0],
          ]);
          for (const r of results) {
            const z = zones.find((n) => n.name === r.nodeName)!.labels.zone!;
            perZone.set(z, perZone.get(z)! + 1);
          }
          const counts = [...perZone.values()];
          expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(maxSkew);
          expect(results.every((r) => r.nodeName)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("candidate sampling", () => {
  test.each([
    [undefined, 5000, 5000],
    [{ mode: "log2" as const }, 5000, 13],
    [{ mode: "log2" as const }, 50, 50],
    [{ mode: "percentage" as const, percentage: 0 }, 5000, 500],
    [{ mode: "percentage" as const, percentage: 0 }, 1000, 420],
    [{ mode: "percentage" as const, percentage: 0 }, 150, 100],
    [{ mode: "percentage" as const, percentage: 30 }, 5000, 1500],
    [{ mode: "percentage" as const, percentage: 0, minNodes: 10 }, 50, 50],
  ])("%j over %i nodes finds %i", (sampling, n, want) => {
    expect(feasibleToFind(sampling, n)).toBe(want);
  });

  test("stops filtering once enough feasible nodes were found, and scans all when nothing fits", () => {
    const nodes = Array.from({ length: 1000 }, (_, i) => node(`n${i}`));
    const log2 = profileByName("most-allocated", { mode: "log2", minNodes: 100 });
    const r = place(req("x", res(100, GiB)), nodes, log2, mulberry32(1));
    expect(r.explain.nodesConsidered).toBe(10);
    const none = place(req("x", res(100, 100 * GiB)), nodes, log2, mulberry32(1));
    expect(none.explain.nodesConsidered).toBe(1000);
    expect(none.reason).toBe("memory: insufficient on 1000 of 1000 nodes");
  });

  test("profileByName rejects unknown names and can switch sampling off", () => {
    expect(() => profileByName("best")).toThrow('unknown profile "best"');
    expect(profileByName("default", "off").sampling).toBeUndefined();
  });
});

describe("capacity", () => {
  test("per node and cluster free, and how many of a shape fit (stranded room shows)", () => {
    const nodes = [
      node("a", { allocated: res(3000, 6 * GiB, 10) }),
      node("b", { allocated: res(3000, 6 * GiB, 10) }),
      node("c", { unschedulable: true }),
    ];
    const shape = res(1500, 3 * GiB);
    const cap = capacity(nodes, shape);
    expect(cap.nodes.map((n) => [n.name, n.fits])).toEqual([
      ["a", 0],
      ["b", 0],
      ["c", 0],
    ]);
    expect(cap.cluster.free).toEqual(res(2000, 4 * GiB, 1980));
    expect(cap.cluster.allocatable).toEqual(res(12000, 24 * GiB, 3000));
    expect(cap.fits).toBe(0);
    expect(cap.fitsIfPooled).toBe(1);
    expect(howMany(res(1000, GiB, 0), res(0, 0, 0))).toBe(Infinity);
  });
});
