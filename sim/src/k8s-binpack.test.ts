import { mulberry32, place, profileByName, type NodeView, type PlacementRequest } from "@grove/control-plane/scheduler";
import {
  K8S_BINPACK_PROFILE,
  k8sBalancedAllocationScore,
  k8sBinpackTotal,
  k8sMostAllocatedScore,
  simProfileByName,
} from "./k8s-binpack";
import { AZURE_VM_FAMILIES, generate } from "./workload";

const MI = 2 ** 20;
const GI = 2 ** 30;

function node(name: string, cpuMillis: number, memoryBytes: number, cap = { cpu: 4000, mem: 32 * GI }): NodeView {
  return {
    name,
    ready: true,
    unschedulable: false,
    allocatable: { cpuMillis: cap.cpu, memoryBytes: cap.mem, pids: 110 },
    allocated: { cpuMillis, memoryBytes, pids: 1 },
    labels: {},
  };
}

function req(cpuMillis: number, memoryBytes: number): PlacementRequest {
  return { id: "ns/p", app: "a", namespace: "ns", resources: { cpuMillis, memoryBytes, pids: 1 } };
}

describe("k8s-binpack: kube-scheduler's MostAllocated + BalancedAllocation, integer scores", () => {
  test("SchedulingBasic's pod on a 4 CPU / 32 GiB node: the scores kube-scheduler computes", () => {
    const n = node("n", 1000, 8 * GI);
    const r = req(100, 500 * MI);
    // cpu 1100*100/4000 = 27 (27.5 truncated); memory (8192+500)*100/32768 = 26 (26.5 truncated)
    expect(k8sMostAllocatedScore(r, n)).toBe(26); // (27 + 26) / 2 = 26.5, truncated
    // fractions 0.275 and 0.26526: std 0.00487, (1 - std) * 100 = 99.51 -> 99
    expect(k8sBalancedAllocationScore(r, n)).toBe(99);
    expect(k8sBinpackTotal(r, n)).toBe(125);
  });

  test("BalancedAllocation turns the choice away from the fullest node", () => {
    // a: cpu 50 %, memory 9.375 % after placement: fit (50 + 9) / 2 = 29, balance 79.7 -> 79: 108
    // b: cpu 30 %, memory 28.125 % after placement: fit (30 + 28) / 2 = 29, balance 99.06 -> 99: 128
    const a = node("a", 1900, 3 * GI - 100 * MI);
    const b = node("b", 1100, 9 * GI - 100 * MI);
    const r = req(100, 100 * MI);
    expect(k8sBinpackTotal(r, a)).toBe(108);
    expect(k8sBinpackTotal(r, b)).toBe(128);
    expect(place(r, [a, b], K8S_BINPACK_PROFILE, mulberry32(1)).nodeName).toBe("b");
    expect(place(r, [a, b], profileByName("most-allocated"), mulberry32(1)).nodeName).toBe("a");
  });

  test("truncation ties nodes that float scores would rank: either may win, by the seed", () => {
    // cpu 55.0 % vs 55.9 % after placement, memory 56.5 % on both: fit 55, balance 99 on both.
    const mem = Math.round(0.565 * 32 * GI);
    const a = node("a", 2100, mem);
    const b = node("b", 2136, mem);
    const r = req(100, 0);
    expect(k8sBinpackTotal(r, a)).toBe(k8sBinpackTotal(r, b));
    const winners = new Set<string>();
    for (let seed = 1; seed <= 40; seed++)
      winners.add(place(r, [a, b], K8S_BINPACK_PROFILE, mulberry32(seed)).nodeName!);
    expect([...winners].sort()).toEqual(["a", "b"]);
    // Grove's float kube-binpack always takes the (slightly) fuller b.
    for (let seed = 1; seed <= 10; seed++) {
      expect(place(r, [a, b], profileByName("kube-binpack"), mulberry32(seed)).nodeName).toBe("b");
    }
  });

  test("requested is capped at the node's allocatable, as in kube-scheduler", () => {
    const n = node("n", 4000, 40 * GI);
    expect(k8sMostAllocatedScore(req(500, GI), n)).toBe(100);
    expect(k8sBalancedAllocationScore(req(500, GI), n)).toBe(100);
  });

  test("simProfileByName knows k8s-binpack and falls back to the library's profiles", () => {
    expect(simProfileByName("k8s-binpack").name).toBe("k8s-binpack");
    expect(simProfileByName("most-allocated").name).toBe("most-allocated");
    expect(() => simProfileByName("nope")).toThrow(/unknown profile "nope"/);
  });
});

describe("azure-vm: Azure's VM sizes, cpu and memory drawn together", () => {
  test("every instance is one size of the catalogue, and the cores follow the 2019 shares", () => {
    const sizes = new Set(
      AZURE_VM_FAMILIES.flatMap((f) => f.sizes.map(([c, g]) => `${c * 1000}/${Math.round(g * GI)}`)),
    );
    const items = generate("azure-vm", { count: 20000, seed: 7 }).items;
    expect(items.filter((i) => !sizes.has(`${i.resources.cpuMillis}/${i.resources.memoryBytes}`))).toEqual([]);
    const small = items.filter((i) => i.resources.cpuMillis <= 2000).length / items.length;
    expect(small).toBeGreaterThan(0.55);
    expect(small).toBeLessThan(0.61);
    // Correlated: memory per core takes only the families' few values.
    const perCore = new Set(
      items.map((i) => (i.resources.memoryBytes / GI / (i.resources.cpuMillis / 1000)).toFixed(2)),
    );
    expect(perCore.size).toBeLessThanOrEqual(8);
  });
});

test("declaring that k8s-binpack reads only resources changes no placement (runs of equal nodes, random fill)", () => {
  // The same profile without the declaration: every node scored by the scorer itself.
  const undeclared = {
    ...K8S_BINPACK_PROFILE,
    scorers: K8S_BINPACK_PROFILE.scorers.map(({ reads: _reads, ...s }) => s),
  };
  const gen = mulberry32(4242);
  const caps = [
    { cpu: 4000, mem: 32 * GI },
    { cpu: 16_000, mem: 64 * GI },
  ];
  const nodes: NodeView[] = Array.from({ length: 300 }, (_, i) => {
    const empty = gen.next() < 0.7;
    const cpu = empty ? 0 : Math.floor(gen.next() * 4) * 500;
    const mem = empty ? 0 : Math.floor(gen.next() * 4) * 2 * GI;
    return node(`n-${i}`, cpu, mem, caps[Math.floor(i / 50) % 2]);
  });
  const placedA = nodes.map((n) => ({ ...n }));
  const placedB = nodes.map((n) => ({ ...n }));
  const rngA = mulberry32(9);
  const rngB = mulberry32(9);
  for (let k = 0; k < 400; k++) {
    const r = req(100 * (1 + Math.floor(gen.next() * 8)), (256 + Math.floor(gen.next() * 8) * 256) * MI);
    const a = place(r, placedA, K8S_BINPACK_PROFILE, rngA);
    const b = place(r, placedB, undeclared, rngB);
    expect(a).toEqual(b);
    for (const nodesOf of [placedA, placedB]) {
      const n = nodesOf.find((x) => x.name === a.nodeName);
      if (n)
        n.allocated = {
          ...n.allocated,
          cpuMillis: n.allocated.cpuMillis + r.resources.cpuMillis,
          memoryBytes: n.allocated.memoryBytes + r.resources.memoryBytes,
        };
    }
  }
});
