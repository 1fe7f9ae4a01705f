// Dynamic host ports handed out by placement, and the plugins' declarations
// the pipeline relies on (passesWhen, constantWhen, scope).
import fc from "fast-check";
import type { Resources } from "@grove/api";
import { placeBatch } from "./batch";
import { DEFAULT_FILTERS } from "./filters";
import { meets, CONDITION_BITS } from "./conditions";
import { place } from "./place";
import { hostPortRequest, withHostPorts } from "./ports";
import { DEFAULT_PROFILE } from "./profiles";
import { mulberry32 } from "./rng";
import { BUILTIN_SCORERS } from "./scorers";
import type { NodeView, PlacementRequest } from "./types";

const res = (cpuMillis: number, memoryBytes: number, pids = 0): Resources => ({ cpuMillis, memoryBytes, pids });
const node = (name: string, over: Partial<NodeView> = {}): NodeView => ({
  name,
  ready: true,
  unschedulable: false,
  allocatable: res(4000, 4096, 100),
  allocated: res(0, 0, 0),
  labels: {},
  ...over,
});
const RANGE = { first: 30000, last: 30002 };
const req = (id: string, ports: Array<{ hostPort?: number }>): PlacementRequest => ({
  id,
  app: "web",
  namespace: "ns",
  resources: res(100, 100, 1),
  ...hostPortRequest(ports, RANGE),
});

describe("dynamic host ports", () => {
  const WIDE = { first: 30000, last: 30004 };

  test("the result carries the lowest free ports of the range, skipping the node's used and the request's fixed ones", () => {
    const ports = [{}, { hostPort: 30001 }, {}];
    const r = { ...req("a", []), ...hostPortRequest(ports, WIDE) };
    expect(r).toMatchObject({ hostPorts: [30001], dynamicHostPorts: { count: 2, range: WIDE } });
    const out = place(r, [node("n1", { usedHostPorts: new Set([30000]) })], DEFAULT_PROFILE, mulberry32(1));
    expect(out.nodeName).toBe("n1");
    expect(out.hostPorts).toEqual([30002, 30003]);
    expect(withHostPorts(ports, out.hostPorts)).toEqual([
      { hostPort: 30002 },
      { hostPort: 30001 },
      { hostPort: 30003 },
    ]);
  });

  test("a node with too few free ports in the range is rejected, with the reason", () => {
    const r = req("a", [{}, {}]);
    const full = node("full", { usedHostPorts: new Set([30000, 30001]) });
    expect(place(r, [full, node("free")], DEFAULT_PROFILE, mulberry32(1))).toMatchObject({
      nodeName: "free",
      hostPorts: [30000, 30001],
    });
    const none = place(r, [full], DEFAULT_PROFILE, mulberry32(1));
    expect(none.nodeName).toBeUndefined();
    expect(none.reason).toBe("ports: dynamic host port range 30000-30002 exhausted on 1 of 1 nodes");
    expect(none.explain.rejected).toEqual({ "host-ports": 1 });
  });

  test("a batch books the ports it hands out: each instance gets the next one until the range is used up", () => {
    const reqs = ["a", "b", "c", "d"].map((id) => req(id, [{}]));
    const out = placeBatch(reqs, [node("n1")], DEFAULT_PROFILE, mulberry32(1));
    expect(out.map((r) => r.hostPorts)).toEqual([[30000], [30001], [30002], undefined]);
    expect(out[3]!.reason).toBe("ports: dynamic host port range 30000-30002 exhausted on 1 of 1 nodes");
  });

  test("preemption frees the victims' ports and hands them out", () => {
    const victim = {
      id: "ns/low",
      appKey: "ns/low",
      priority: 0,
      resources: res(100, 100, 1),
      hostPorts: [30000, 30001, 30002],
    };
    const n1 = node("n1", {
      allocated: res(100, 100, 1),
      usedHostPorts: new Set(victim.hostPorts),
      instances: [victim],
      appCounts: new Map([["ns/low", 1]]),
    });
    const out = place({ ...req("high", [{}]), priority: 10 }, [n1], DEFAULT_PROFILE, mulberry32(1));
    expect(out).toMatchObject({ nodeName: "n1", victims: ["ns/low"], hostPorts: [30000] });
  });
});

// The declared conditions are only speed-ups: where a node meets a filter's
// passesWhen, its check() passes; where it meets a scorer's constantWhen, its
// score() is that constant. (FilterChain and nodeTotal skip the calls there.)
const nodeArb = fc.record({
  ready: fc.boolean(),
  unschedulable: fc.boolean(),
  allocatable: fc.record({ cpuMillis: fc.nat(4000), memoryBytes: fc.nat(4000), pids: fc.nat(50) }),
  allocated: fc.record({ cpuMillis: fc.nat(4000), memoryBytes: fc.nat(4000), pids: fc.nat(50) }),
  taints: fc.option(
    fc.array(
      fc.record({
        key: fc.constantFrom("a", "b"),
        effect: fc.constantFrom("NoSchedule" as const, "PreferNoSchedule" as const),
      }),
      { maxLength: 2 },
    ),
    { nil: undefined },
  ),
});
const requestArb = fc.record({
  resources: fc.record({ cpuMillis: fc.nat(2000), memoryBytes: fc.nat(2000), pids: fc.nat(20) }),
  tolerations: fc.option(fc.constant([{ key: "a", op: "exists" as const }]), { nil: undefined }),
});

test("property: a node that meets a plugin's declared condition gets the answer the plugin would give", () => {
  fc.assert(
    fc.property(nodeArb, requestArb, (n, q) => {
      const nd: NodeView = { name: "n", labels: {}, ...n, ...(n.taints ? { taints: n.taints } : {}) };
      const r: PlacementRequest = {
        id: "x",
        app: "a",
        namespace: "ns",
        resources: q.resources,
        ...(q.tolerations ? { placement: { tolerations: [...q.tolerations] } } : {}),
      };
      for (const f of DEFAULT_FILTERS) {
        if (f.passesWhen && meets(CONDITION_BITS[f.passesWhen], r.resources, nd)) expect(f.check(r, nd).fit).toBe(true);
      }
      for (const s of BUILTIN_SCORERS) {
        const c = s.constantWhen;
        if (c && meets(CONDITION_BITS[c.condition], r.resources, nd)) expect(s.score(r, nd)).toBe(c.score);
      }
    }),
    { numRuns: 500 },
  );
});

test("every built-in filter and scorer declares its scope; only topology spread looks beyond the node", () => {
  expect(DEFAULT_FILTERS.filter((f) => f.scope !== "node").map((f) => f.name)).toEqual(["topology-spread"]);
  expect(BUILTIN_SCORERS.every((s) => s.scope === "node")).toBe(true);
  expect([...DEFAULT_FILTERS, ...BUILTIN_SCORERS].filter((p) => p.readsApp).map((p) => p.name)).toEqual([
    "anti-affinity",
    "diego",
  ]);
});
