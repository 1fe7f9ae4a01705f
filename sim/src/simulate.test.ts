import { lowerBound, simulate } from "./simulate";

const node = { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30, pids: 1000 };

describe("simulate", () => {
  test("uniform pods pack to the lower bound with the bin-pack profile", () => {
    const r = simulate({ cluster: { nodes: 50, node }, workload: "uniform", count: 100, seed: 3 });
    // 100 x 500Mi = 50000Mi over 8192Mi nodes -> 7 nodes by memory; cpu 10000m -> 3.
    expect(r.lowerBound).toBe(7);
    expect(r.placed).toBe(100);
    expect(r.nodesUsed).toBe(7);
    expect(r.ratioToLowerBound).toBe(1);
  });

  test("is deterministic for a seed and reports what does not fit as pending", () => {
    const a = simulate({ cluster: { nodes: 3, node }, workload: "mixed", count: 200, seed: 9 });
    const b = simulate({ cluster: { nodes: 3, node }, workload: "mixed", count: 200, seed: 9 });
    expect(a).toEqual(b);
    expect(a.pending).toBeGreaterThan(0);
    expect(a.nodesUsed).toBeLessThanOrEqual(3);
    expect(a.utilization.memory).toBeLessThanOrEqual(1);
  });

  test("lowerBound takes the scarcest resource", () => {
    const reqs = [1, 2, 3].map((i) => ({
      id: String(i),
      app: "a",
      namespace: "n",
      resources: { cpuMillis: 3000, memoryBytes: 1, pids: 1 },
    }));
    expect(lowerBound(reqs, node)).toBe(3);
  });
});
