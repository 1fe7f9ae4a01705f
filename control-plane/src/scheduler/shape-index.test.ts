import fc from "fast-check";
import type { Resources } from "@grove/api";
import { place } from "./place";
import { WorkingSet } from "./working-set";
import { PROFILE_NAMES, profileByName } from "./profiles";
import { mulberry32 } from "./rng";
import { shapeKey } from "./shape-index";
import { DEFAULT_FILTERS, spreadFilter } from "./filters";
import type { NodeView, PlacementRequest, PlacementSpec, Taint } from "./types";

// WorkingSet.place() (cached per request shape) must give exactly what the
// plain place() gives on the same nodes: node, explain, reason, victims, and
// the same rng draws, through any sequence of binds and evictions.

const res = (cpuMillis: number, memoryBytes: number, pids: number): Resources => ({ cpuMillis, memoryBytes, pids });

const taintArb: fc.Arbitrary<Taint> = fc.record({
  key: fc.constantFrom("dedicated", "gpu"),
  value: fc.constantFrom("db", "x"),
  effect: fc.constantFrom("NoSchedule" as const, "PreferNoSchedule" as const),
});

const nodeArb = fc.record({
  ready: fc.constantFrom(true, true, true, false),
  unschedulable: fc.constantFrom(false, false, false, true),
  // A coarse grid so that equal scores (ties) are common.
  cpu: fc.constantFrom(2000, 4000, 4000, 8000),
  memory: fc.constantFrom(4096, 8192, 8192),
  pids: fc.constantFrom(8, 100),
  usedCpu: fc.constantFrom(0, 0, 500, 1000, 2000),
  usedMemory: fc.constantFrom(0, 0, 1024, 2048),
  zone: fc.constantFrom("a", "b", undefined),
  taints: fc.option(fc.array(taintArb, { maxLength: 2 }), { nil: undefined }),
  ports: fc.option(fc.constantFrom([8080], [9090], [8080, 9090]), { nil: undefined }),
});

const placementArb: fc.Arbitrary<PlacementSpec | undefined> = fc.option(
  fc.oneof(
    fc.constant<PlacementSpec>({ nodeSelector: { zone: "a" } }),
    fc.constant<PlacementSpec>({ constraints: [{ key: "zone", op: "exists" }] }),
    fc.constant<PlacementSpec>({ tolerations: [{ key: "dedicated", op: "exists" }] }),
    fc.constant<PlacementSpec>({ antiAffinity: true }),
    fc.constant<PlacementSpec>({ spread: { topologyKey: "zone", maxSkew: 1 } }),
  ),
  { nil: undefined, freq: 2 },
);

const shapeArb = fc.record({
  cpu: fc.constantFrom(0, 250, 500, 1000),
  memory: fc.constantFrom(0, 512, 1024),
  pids: fc.constantFrom(0, 1),
  app: fc.constantFrom("web", "db"),
  priority: fc.constantFrom(0, 0, 5),
  hostPorts: fc.option(fc.constantFrom([8080], [9090]), { nil: undefined, freq: 4 }),
  placement: placementArb,
});

const stepArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("place" as const), shape: fc.nat({ max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("evict" as const), pick: fc.nat() }) },
);

type NodeSpec = typeof nodeArb extends fc.Arbitrary<infer T> ? T : never;

function buildNodes(specs: NodeSpec[]): NodeView[] {
  return specs.map((s, i) => ({
    name: `n${i}-${(i * 7919) % 13}`,
    ready: s.ready,
    unschedulable: s.unschedulable,
    allocatable: res(s.cpu, s.memory, s.pids),
    allocated: res(s.usedCpu, s.usedMemory, 0),
    labels: (s.zone ? { zone: s.zone } : {}) as Record<string, string>,
    ...(s.taints ? { taints: s.taints } : {}),
    ...(s.ports ? { usedHostPorts: new Set<number>(s.ports) } : {}),
    appCounts: new Map<string, number>(),
    instances: [],
  }));
}

test("property: WorkingSet.place picks what place() picks, with the same explain and rng draws", () => {
  fc.assert(
    fc.property(
      fc.array(nodeArb, { minLength: 1, maxLength: 40 }),
      fc.array(shapeArb, { minLength: 5, maxLength: 5 }),
      fc.array(stepArb, { maxLength: 80 }),
      fc.constantFrom(...PROFILE_NAMES),
      fc.integer(),
      (nodeSpecs, shapes, steps, profileName, seed) => {
        const profile = profileByName(profileName, "off");
        const ws = new WorkingSet(buildNodes(nodeSpecs));
        const plainRng = mulberry32(seed);
        const fastRng = mulberry32(seed);
        const placed: Array<{ id: string; node: string }> = [];
        steps.forEach((step, k) => {
          if (step.kind === "evict") {
            if (placed.length === 0) return;
            const [gone] = placed.splice(step.pick % placed.length, 1);
            ws.evict(gone!.node, [gone!.id]);
            return;
          }
          const s = shapes[step.shape]!;
          const req: PlacementRequest = {
            id: `i${k}`,
            app: s.app,
            namespace: "ns",
            resources: res(s.cpu, s.memory, s.pids),
            priority: s.priority,
            ...(s.hostPorts ? { hostPorts: [...s.hostPorts] } : {}),
            ...(s.placement ? { placement: s.placement } : {}),
          };
          const plain = place(req, ws.nodes, profile, plainRng);
          const fast = ws.place(req, profile, fastRng);
          expect(fast).toEqual(plain);
          if (fast.nodeName === undefined) return;
          for (const v of fast.victims ?? []) {
            const at = placed.findIndex((p) => p.id === v);
            if (at >= 0) placed.splice(at, 1);
          }
          if (fast.victims) ws.evict(fast.nodeName, fast.victims);
          ws.bind(req, fast.nodeName);
          placed.push({ id: req.id, node: fast.nodeName });
        });
        // Both generators were drawn from equally often.
        expect(fastRng.next()).toBe(plainRng.next());
      },
    ),
    { numRuns: 400 },
  );
});

test("requests of one shape share a cache key; a filter that looks beyond the node disables it", () => {
  const base: PlacementRequest = { id: "a", app: "web", namespace: "ns", resources: res(100, 100, 1) };
  const profiles = { default: profileByName("default", "off"), diego: profileByName("diego", "off") };
  const key = (req: PlacementRequest, name: keyof typeof profiles) =>
    shapeKey(
      req,
      DEFAULT_FILTERS.filter((f) => !f.applies || f.applies(req)),
      profiles[name],
    );
  expect(key({ ...base, id: "b" }, "default")).toBe(key(base, "default"));
  expect(key({ ...base, resources: res(100, 101, 1) }, "default")).not.toBe(key(base, "default"));
  // The App is part of the shape only when a filter or scorer reads it.
  expect(key({ ...base, app: "db" }, "default")).toBe(key(base, "default"));
  expect(key({ ...base, app: "db" }, "diego")).not.toBe(key(base, "diego"));
  const anti = { ...base, placement: { antiAffinity: true } };
  expect(key({ ...anti, app: "db" }, "default")).not.toBe(key(anti, "default"));
  expect(key({ ...base, placement: { spread: { topologyKey: "zone", maxSkew: 1 } } }, "default")).toBeUndefined();
  expect(shapeKey(base, [spreadFilter], profileByName("default"))).toBeUndefined();
});
