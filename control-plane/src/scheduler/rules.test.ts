// Table tests for the filters and scorers added on top of resource fit.
import fc from "fast-check";
import type { Resources } from "@grove/api";
import {
  antiAffinityFilter,
  diskFit,
  hostPortsFit,
  matchConstraint,
  nodeSelectorFilter,
  spreadFilter,
  taintsFilter,
  tolerates,
} from "./filters";
import {
  balancedFit,
  diego,
  dotProduct,
  l2Norm,
  leastAllocated,
  mostAllocated,
  nomadBestFit,
  preferNoSchedule,
} from "./scorers";
import { placementContext } from "./place";
import type { LabelConstraint, NodeView, PlacementRequest, PlacementSpec } from "./types";

const res = (cpuMillis: number, memoryBytes: number, pids = 0, diskBytes?: number): Resources => ({
  cpuMillis,
  memoryBytes,
  pids,
  ...(diskBytes !== undefined ? { diskBytes } : {}),
});
const node = (over: Partial<NodeView> = {}): NodeView => ({
  name: "n1",
  ready: true,
  unschedulable: false,
  allocatable: res(1000, 1000, 100),
  allocated: res(0, 0, 0),
  labels: {},
  ...over,
});
const req = (over: Partial<PlacementRequest> = {}, placement?: PlacementSpec): PlacementRequest => ({
  id: "ns/web-0",
  app: "web",
  namespace: "ns",
  resources: res(100, 100, 1),
  ...(placement ? { placement } : {}),
  ...over,
});

describe("disk-fit", () => {
  test.each([
    ["node without disk capacity is unlimited", res(1000, 1000, 100), 10 ** 12, true],
    ["fits in what is left", res(1000, 1000, 100, 500), 400, true],
    ["exactly full fits", res(1000, 1000, 100, 500), 500, false],
    ["over", res(1000, 1000, 100, 500), 501, false],
  ])("%s", (_name, allocatable, want, fit) => {
    const n = node({ allocatable, allocated: res(0, 0, 0, allocatable.diskBytes !== undefined ? 100 : undefined) });
    const v = diskFit.check(req({ resources: res(1, 1, 1, want) }), n);
    expect(v.fit).toBe(want === 500 ? false : fit);
    if (!v.fit) expect(v.reason).toEqual({ subject: "disk", message: "insufficient" });
  });
  test("a request without disk fits any node", () => {
    expect(diskFit.check(req(), node({ allocatable: res(1, 1, 1, 0) })).fit).toBe(true);
  });
});

describe("host-ports", () => {
  test.each([
    [[8080], [], true, ""],
    [[8080], [8080], false, "8080 in use"],
    [[80, 443, 8080], [443, 8080, 9000], false, "443,8080 in use"],
    [[], [80], true, ""],
  ])("wants %j, used %j", (want, used, fit, message) => {
    const v = hostPortsFit.check(req({ hostPorts: want }), node({ usedHostPorts: new Set(used) }));
    expect(v).toEqual(fit ? { fit: true } : { fit: false, reason: { subject: "ports", message } });
  });
  test("a node that reports no ports accepts any", () => {
    expect(hostPortsFit.check(req({ hostPorts: [80] }), node()).fit).toBe(true);
  });
});

describe("label constraints", () => {
  const labels = { zone: "a", disk: "ssd", gpu: "" };
  test.each<[LabelConstraint, boolean]>([
    [{ key: "zone", op: "=", values: ["a"] }, true],
    [{ key: "zone", op: "=", values: ["b"] }, false],
    [{ key: "zone", op: "!=", values: ["b"] }, true],
    [{ key: "zone", op: "!=", values: ["a"] }, false],
    [{ key: "rack", op: "!=", values: ["a"] }, true],
    [{ key: "zone", op: "in", values: ["b", "a"] }, true],
    [{ key: "zone", op: "in", values: ["b", "c"] }, false],
    [{ key: "rack", op: "in", values: ["a"] }, false],
    [{ key: "zone", op: "notin", values: ["b", "c"] }, true],
    [{ key: "zone", op: "notin", values: ["a"] }, false],
    [{ key: "rack", op: "notin", values: ["a"] }, true],
    [{ key: "gpu", op: "exists" }, true],
    [{ key: "rack", op: "exists" }, false],
    [{ key: "rack", op: "notexists" }, true],
    [{ key: "gpu", op: "notexists" }, false],
  ])("%j -> %s", (c, want) => {
    expect(matchConstraint(labels, c)).toBe(want);
  });

  test("node-selector filter names what did not match", () => {
    const n = node({ labels: { zone: "a" } });
    expect(nodeSelectorFilter.check(req({}, { nodeSelector: { zone: "a" } }), n).fit).toBe(true);
    expect(nodeSelectorFilter.check(req({}, { nodeSelector: { zone: "b" } }), n)).toEqual({
      fit: false,
      reason: { subject: "node-selector", message: "zone=b not matched" },
    });
    expect(
      nodeSelectorFilter.check(req({}, { constraints: [{ key: "zone", op: "notin", values: ["a", "c"] }] }), n),
    ).toEqual({ fit: false, reason: { subject: "constraint", message: "zone notin (a,c) not matched" } });
    expect(nodeSelectorFilter.check(req(), n).fit).toBe(true);
  });
});

describe("taints and tolerations", () => {
  const dedicated = { key: "dedicated", value: "db", effect: "NoSchedule" as const };
  test.each([
    [[], false],
    [[{ key: "dedicated", value: "db" }], true],
    [[{ key: "dedicated", value: "web" }], false],
    [[{ key: "dedicated", op: "exists" as const }], true],
    [[{ key: "dedicated", op: "exists" as const, effect: "PreferNoSchedule" as const }], false],
    [[{ key: "other", op: "exists" as const }], false],
  ])("tolerations %j tolerate dedicated=db:NoSchedule: %s", (tolerations, fit) => {
    const v = taintsFilter.check(req({}, { tolerations }), node({ taints: [dedicated] }));
    expect(v).toEqual(
      fit ? { fit: true } : { fit: false, reason: { subject: "taint", message: "dedicated=db not tolerated" } },
    );
  });
  test("PreferNoSchedule taints do not filter but score 0", () => {
    const n = node({ taints: [{ key: "spot", effect: "PreferNoSchedule" }] });
    expect(taintsFilter.check(req(), n).fit).toBe(true);
    expect(preferNoSchedule.score(req(), n)).toBe(0);
    expect(preferNoSchedule.score(req({}, { tolerations: [{ key: "spot", op: "exists" }] }), n)).toBe(1);
    expect(preferNoSchedule.score(req(), node())).toBe(1);
  });
  test("tolerates() needs the same value unless op is exists", () => {
    expect(tolerates({ key: "k" }, { key: "k", effect: "NoSchedule" })).toBe(true);
    expect(tolerates({ key: "k" }, { key: "k", value: "v", effect: "NoSchedule" })).toBe(false);
  });
});

describe("anti-affinity", () => {
  test.each([
    [0, true],
    [1, false],
  ])("with %i instances of the app on the node: fit %s", (count, fit) => {
    const n = node({ appCounts: new Map([["ns/web", count]]) });
    expect(antiAffinityFilter.check(req({}, { antiAffinity: true }), n).fit).toBe(fit);
    expect(antiAffinityFilter.check(req(), n).fit).toBe(true);
  });
  test("another App's instances do not count", () => {
    const n = node({
      appCounts: new Map([
        ["ns/db", 3],
        ["other/web", 1],
      ]),
    });
    expect(antiAffinityFilter.check(req({}, { antiAffinity: true }), n).fit).toBe(true);
  });
});

describe("topology spread", () => {
  const nodes = [
    node({ name: "a1", labels: { zone: "a" }, appCounts: new Map([["ns/web", 2]]) }),
    node({ name: "b1", labels: { zone: "b" }, appCounts: new Map([["ns/web", 1]]) }),
    node({ name: "c1", labels: { zone: "c" } }),
    node({ name: "x", labels: {} }),
  ];
  test.each([
    [1, ["c1"]],
    [2, ["b1", "c1"]],
    [3, ["a1", "b1", "c1"]],
  ])("maxSkew %i allows %j", (maxSkew, allowed) => {
    const r = req({}, { spread: { topologyKey: "zone", maxSkew } });
    const ctx = placementContext(r, nodes);
    expect(nodes.filter((n) => spreadFilter.check(r, n, ctx).fit).map((n) => n.name)).toEqual(allowed);
  });
  test("rejections name the domain and the skew; unlabeled nodes are rejected", () => {
    const r = req({}, { spread: { topologyKey: "zone", maxSkew: 1 } });
    const ctx = placementContext(r, nodes);
    expect(spreadFilter.check(r, nodes[0]!, ctx)).toEqual({
      fit: false,
      reason: { subject: "spread", message: "zone=a would exceed max skew 1" },
    });
    expect(spreadFilter.check(r, nodes[3]!, ctx)).toEqual({
      fit: false,
      reason: { subject: "spread", message: "no zone label" },
    });
  });
  test("domains only count nodes the selector admits", () => {
    const r = req(
      {},
      { spread: { topologyKey: "zone", maxSkew: 1 }, constraints: [{ key: "zone", op: "!=", values: ["c"] }] },
    );
    const ctx = placementContext(r, nodes);
    expect([...ctx.domainCounts("zone").entries()]).toEqual([
      ["a", 2],
      ["b", 1],
    ]);
    expect(spreadFilter.check(r, nodes[1]!, ctx).fit).toBe(true);
  });
  test.each([
    ["not Ready", { ready: false }],
    ["cordoned", { unschedulable: true }],
  ])("a node that is %s is no domain: replacements of its instances may go anywhere else", (_what, over) => {
    const lost = [
      node({ name: "a1", labels: { zone: "a" }, ...over, appCounts: new Map([["ns/web", 5]]) }),
      node({ name: "b1", labels: { zone: "b" }, appCounts: new Map([["ns/web", 5]]) }),
      node({ name: "c1", labels: { zone: "c" }, appCounts: new Map([["ns/web", 6]]) }),
    ];
    const r = req({}, { spread: { topologyKey: "zone", maxSkew: 1 } });
    const ctx = placementContext(r, lost);
    expect([...ctx.domainCounts("zone").entries()]).toEqual([
      ["b", 5],
      ["c", 6],
    ]);
    expect(spreadFilter.check(r, lost[1]!, ctx).fit).toBe(true);
  });
});

describe("scorers", () => {
  // node: cpu 1000 (400 used), memory 1000 (100 used); request cpu 100, memory 300
  // after: cpu 0.5, memory 0.4 used; free after: 0.5, 0.6; free before 0.6, 0.9.
  const n = node({ allocated: res(400, 100, 0) });
  const r = req({ resources: res(100, 300, 1) });
  test.each([
    [mostAllocated, (0.5 + 0.4) / 2],
    [leastAllocated, 1 - (0.5 + 0.4) / 2],
    [nomadBestFit, (20 - (10 ** 0.5 + 10 ** 0.6)) / 18],
    [dotProduct, (0.1 * 0.6 + 0.3 * 0.9) / 2],
    [l2Norm, 1 - (0.5 ** 2 + 0.6 ** 2) / 2],
    [diego, 1 - (0.4 + 0.01) / 2 / 2],
    [balancedFit, (1 - (0.5 ** 2 + 0.6 ** 2) / 2 - 2 * 0.1 + 2) / 3],
  ])("%o", (scorer, want) => {
    expect(scorer.score(r, n)).toBeCloseTo(want, 12);
  });

  test("balanced fit discounts an empty node and penalises uneven free room", () => {
    const empty = node();
    const used = node({ allocated: res(1, 1, 0) });
    const small = req({ resources: res(100, 100) });
    expect(balancedFit.score(small, empty)).toBeCloseTo(0.8 * balancedFit.score(small, used), 2);
    const even = node({ allocated: res(500, 500, 0) });
    const uneven = node({ allocated: res(900, 100, 0) });
    expect(balancedFit.score(small, even)).toBeGreaterThan(balancedFit.score(small, uneven));
  });

  test("Nomad BestFit is 1 on a node the request fills and clamps at 0 on an empty one", () => {
    expect(nomadBestFit.score(req({ resources: res(1000, 1000) }), node())).toBe(1);
    expect(nomadBestFit.score(req({ resources: res(0, 0) }), node())).toBe(0);
  });

  test("Diego: fewer instances of the same App always wins, then the emptier node", () => {
    const full0 = node({ allocated: res(0, 900, 90) });
    const empty1 = node({ appCounts: new Map([["ns/web", 1]]) });
    const empty2 = node({ appCounts: new Map([["ns/web", 2]]) });
    expect(diego.score(r, full0)).toBeGreaterThan(diego.score(r, empty1));
    expect(diego.score(r, empty1)).toBeGreaterThan(diego.score(r, empty2));
    expect(diego.score(r, node())).toBeGreaterThan(diego.score(r, full0));
  });

  test("dot-product prefers free room shaped like the request", () => {
    const cpuHeavy = req({ resources: res(300, 50) });
    const cpuFree = node({ allocated: res(0, 800) });
    const memFree = node({ allocated: res(800, 0) });
    expect(dotProduct.score(cpuHeavy, cpuFree)).toBeGreaterThan(dotProduct.score(cpuHeavy, memFree));
  });

  test("every scorer stays in 0..1", () => {
    const scorers = [
      mostAllocated,
      leastAllocated,
      nomadBestFit,
      dotProduct,
      l2Norm,
      diego,
      preferNoSchedule,
      balancedFit,
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 5 }),
        (uc, um, rc, rm, same) => {
          const nn = node({ allocated: res(uc, um, 0), appCounts: new Map([["ns/web", same]]) });
          for (const s of scorers) {
            const v = s.score(req({ resources: res(rc, rm) }), nn);
            expect(v).toBeGreaterThanOrEqual(0);
            expect(v).toBeLessThanOrEqual(1);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
