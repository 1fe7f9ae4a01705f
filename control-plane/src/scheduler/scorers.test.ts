import { binPack, spread, utilisationAfter } from "./scorers";
import type { NodeView, PlacementRequest } from "./types";

const node = (cpuUsed: number, memUsed: number, cpuCap = 1000, memCap = 1000): NodeView => ({
  name: "n",
  ready: true,
  unschedulable: false,
  allocatable: { cpuMillis: cpuCap, memoryBytes: memCap, pids: 100 },
  allocated: { cpuMillis: cpuUsed, memoryBytes: memUsed, pids: 0 },
  labels: {},
});
const req = (cpu: number, mem: number): PlacementRequest => ({
  id: "x",
  app: "a",
  namespace: "ns",
  resources: { cpuMillis: cpu, memoryBytes: mem, pids: 1 },
});

test("bin-pack is the mean of cpu and memory utilisation after placing (MostAllocated)", () => {
  expect(binPack.name).toBe("bin-pack");
  expect(binPack.score(req(100, 300), node(400, 100))).toBeCloseTo((0.5 + 0.4) / 2, 12);
  expect(binPack.score(req(0, 0), node(0, 0))).toBe(0);
  expect(binPack.score(req(1000, 1000), node(0, 0))).toBe(1);
});

test("bin-pack prefers the fuller node", () => {
  const r = req(100, 100);
  expect(binPack.score(r, node(800, 800))).toBeGreaterThan(binPack.score(r, node(100, 100)));
});

test("bin-pack normalises by each node's size", () => {
  const r = req(100, 100);
  // Same absolute use, the small node is fuller.
  expect(binPack.score(r, node(400, 400, 1000, 1000))).toBeGreaterThan(binPack.score(r, node(400, 400, 4000, 4000)));
});

test("utilisation is clamped to 0..1 and 0 on a node without the resource", () => {
  expect(utilisationAfter(req(500, 0), node(900, 0), "cpuMillis")).toBe(1);
  expect(utilisationAfter(req(500, 0), node(0, 0, 0, 1000), "cpuMillis")).toBe(0);
});

test("spread is the mirror image of bin-pack", () => {
  const r = req(100, 300);
  const n = node(400, 100);
  expect(spread.score(r, n)).toBeCloseTo(1 - binPack.score(r, n), 12);
});
