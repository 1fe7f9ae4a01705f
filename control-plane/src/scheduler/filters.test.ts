import { cpuFit, memoryFit, nodeReady, nodeSchedulable, pidsFit, free, DEFAULT_FILTERS } from "./filters";
import type { NodeView, PlacementRequest } from "./types";

const node = (over: Partial<NodeView> = {}): NodeView => ({
  name: "n1",
  ready: true,
  unschedulable: false,
  allocatable: { cpuMillis: 1000, memoryBytes: 1000, pids: 100 },
  allocated: { cpuMillis: 0, memoryBytes: 0, pids: 0 },
  labels: {},
  ...over,
});
const req = (cpuMillis: number, memoryBytes: number, pids: number): PlacementRequest => ({
  id: "ns/app-0",
  app: "app",
  namespace: "ns",
  resources: { cpuMillis, memoryBytes, pids },
});

test("node-ready rejects nodes that are not ready", () => {
  expect(nodeReady.check(req(1, 1, 1), node())).toEqual({ fit: true });
  expect(nodeReady.check(req(1, 1, 1), node({ ready: false }))).toEqual({
    fit: false,
    reason: { subject: "node-ready", message: "not ready" },
  });
});

test("node-schedulable rejects cordoned nodes", () => {
  expect(nodeSchedulable.check(req(1, 1, 1), node())).toEqual({ fit: true });
  expect(nodeSchedulable.check(req(1, 1, 1), node({ unschedulable: true }))).toEqual({
    fit: false,
    reason: { subject: "node-schedulable", message: "cordoned" },
  });
});

describe.each([
  ["cpu-fit", cpuFit, "cpu", (n: number) => req(n, 0, 0), "cpuMillis"],
  ["memory-fit", memoryFit, "memory", (n: number) => req(0, n, 0), "memoryBytes"],
  ["pids-fit", pidsFit, "pids", (n: number) => req(0, 0, n), "pids"],
] as const)("%s", (name, filter, subject, make, resource) => {
  const used = node({ allocated: { cpuMillis: 0, memoryBytes: 0, pids: 0, [resource]: 60 } });
  const cap = used.allocatable[resource];
  test("is named", () => expect(filter.name).toBe(name));
  test("fits exactly up to allocatable", () => {
    expect(filter.check(make(cap - 60), used)).toEqual({ fit: true });
  });
  test("rejects one unit more as insufficient", () => {
    expect(filter.check(make(cap - 60 + 1), used)).toEqual({
      fit: false,
      reason: { subject, message: "insufficient" },
    });
  });
  test("rejects anything on an over-committed node, accepts zero-size on a full one", () => {
    const over = node({ allocated: { cpuMillis: 0, memoryBytes: 0, pids: 0, [resource]: cap + 5 } });
    expect(filter.check(make(1), over).fit).toBe(false);
    const full = node({ allocated: { cpuMillis: 0, memoryBytes: 0, pids: 0, [resource]: cap } });
    expect(filter.check(make(0), full).fit).toBe(true);
  });
  test("looks at its own resource only", () => {
    const other =
      resource === "pids" ? req(5000, 5000, 1) : resource === "cpuMillis" ? req(1, 5000, 500) : req(5000, 1, 500);
    expect(filter.check(other, node()).fit).toBe(true);
  });
});

test("free never goes negative", () => {
  expect(free(node({ allocated: { cpuMillis: 1500, memoryBytes: 10, pids: 0 } }), "cpuMillis")).toBe(0);
  expect(free(node({ allocated: { cpuMillis: 1500, memoryBytes: 10, pids: 0 } }), "memoryBytes")).toBe(990);
});

test("the default filters run readiness and cordon before resource fit", () => {
  expect(DEFAULT_FILTERS.map((f) => f.name)).toEqual([
    "node-ready",
    "node-schedulable",
    "cpu-fit",
    "memory-fit",
    "pids-fit",
    "disk-fit",
    "host-ports",
    "node-selector",
    "taints",
    "anti-affinity",
    "topology-spread",
  ]);
});
