import fc from "fast-check";
import { mulberry32 } from "./rng";
import { WorkingSet } from "./working-set";
import { DEFAULT_PROFILE, profileByName } from "./profiles";
import { alignedFit, balancedAllocation } from "./scorers-density";
import type { NodeView, PlacementRequest, Profile } from "./types";
import type { Resources } from "@grove/api";

const GiB = 2 ** 30;
/** Node shapes of the sweep: 4, 8 and 2 GiB per core. */
const NODE_SHAPES: Resources[] = [
  { cpuMillis: 64_000, memoryBytes: 256 * GiB, pids: 1_000_000 },
  { cpuMillis: 16_000, memoryBytes: 128 * GiB, pids: 1_000_000 },
  { cpuMillis: 96_000, memoryBytes: 192 * GiB, pids: 1_000_000 },
];

function nodes(count: number, shape: Resources): NodeView[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `n-${String(i).padStart(4, "0")}`,
    ready: true,
    unschedulable: false,
    allocatable: { ...shape },
    allocated: { cpuMillis: 0, memoryBytes: 0, pids: 0 },
    labels: {},
  }));
}

/** The open cluster: `count` identical instances arrive one by one; how many nodes end up used. */
function nodesUsed(
  profile: Profile,
  shape: Resources,
  instance: Resources,
  count: number,
  clusterSize: number,
): number {
  const ws = new WorkingSet(nodes(clusterSize, shape));
  const rng = mulberry32(7);
  for (let i = 0; i < count; i++) {
    const req: PlacementRequest = { id: `i-${i}`, app: "app", namespace: "ns", resources: instance };
    const r = ws.place(req, profile, rng);
    if (r.nodeName === undefined) throw new Error(`instance ${i} did not fit: ${r.reason}`);
    ws.bind(req, r.nodeName);
  }
  return ws.nodes.filter((n) => n.allocated.cpuMillis > 0 || n.allocated.memoryBytes > 0).length;
}

/**
 * One instance shape: `perCore` GiB of memory per core, sized so that its
 * larger share of the node (cpu or memory) is `share`.
 */
function instanceOf(node: Resources, perCore: number, share: number): Resources {
  const nodePerCore = node.memoryBytes / GiB / (node.cpuMillis / 1000);
  const cores = perCore >= nodePerCore ? (share * node.memoryBytes) / GiB / perCore : (share * node.cpuMillis) / 1000;
  return {
    cpuMillis: Math.max(1, Math.floor(cores * 1000)),
    memoryBytes: Math.max(1, Math.floor(cores * perCore * GiB)),
    pids: 1,
  };
}

describe("the default profile on single-shape workloads (issue 19)", () => {
  test("never uses more than 1% + 1 node over MostAllocated in the open cluster (property)", () => {
    const most = profileByName("most-allocated");
    fc.assert(
      fc.property(
        fc.constantFrom(...NODE_SHAPES),
        // memory per core 0.25 .. 32 GiB, log-uniform
        fc.double({ min: Math.log(0.25), max: Math.log(32), noNaN: true }).map(Math.exp),
        // the instance's larger share of a node: 1/64 .. 1/2, log-uniform
        fc.double({ min: Math.log(1 / 64), max: Math.log(1 / 2), noNaN: true }).map(Math.exp),
        // how many nodes' worth of instances arrive
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 63 }),
        (shape, perCore, share, fullNodes, extra) => {
          const instance = instanceOf(shape, perCore, share);
          const count = Math.ceil(fullNodes / share) + extra;
          const lb1 = Math.ceil(count * share);
          const size = Math.ceil(lb1 * 2.5) + 2;
          const def = nodesUsed(DEFAULT_PROFILE, shape, instance, count, size);
          const ma = nodesUsed(most, shape, instance, count, size);
          expect(def).toBeLessThanOrEqual(Math.floor(ma * 1.01) + 1);
        },
      ),
      { numRuns: 400 },
    );
  });

  test("the issue's case: 600 x 500m/8Gi on 64-core/256 GiB nodes take 19 nodes (LB1), not 29", () => {
    const shape = NODE_SHAPES[0]!;
    const instance = { cpuMillis: 500, memoryBytes: 8 * GiB, pids: 1 };
    expect(nodesUsed(DEFAULT_PROFILE, shape, instance, 600, 60)).toBe(19);
    expect(nodesUsed(profileByName("most-allocated"), shape, instance, 600, 60)).toBe(19);
    expect(nodesUsed(profileByName("balanced-fit"), shape, instance, 600, 60)).toBe(29);
  });
});

describe("aligned fit and balanced allocation", () => {
  const node = (cpu: number, memGiB: number): NodeView => ({
    ...nodes(1, NODE_SHAPES[0]!)[0]!,
    allocated: { cpuMillis: cpu, memoryBytes: memGiB * GiB, pids: 0 },
  });
  const req = (cpu: number, memGiB: number): PlacementRequest => ({
    id: "r",
    app: "a",
    namespace: "n",
    resources: { cpuMillis: cpu, memoryBytes: memGiB * GiB, pids: 1 },
  });

  test("balanced allocation is 1 - |cpu - memory| / 2 after placement", () => {
    expect(balancedAllocation.score(req(16_000, 64), node(16_000, 64))).toBeCloseTo(1);
    expect(balancedAllocation.score(req(32_000, 0), node(0, 0))).toBeCloseTo(0.75);
  });

  test("a memory-heavy request prefers a cpu-heavy node to an equally full memory-heavy one (mixes)", () => {
    const r = req(1000, 32);
    expect(alignedFit.score(r, node(40_000, 64))).toBeGreaterThan(alignedFit.score(r, node(8_000, 160)));
  });

  test("a node holding the request's own shape ranks above an empty node however uneven it is", () => {
    const r = req(500, 16); // 32 GiB per core on a 4 GiB-per-core node
    const lopsided = node(500 * 14, 16 * 14); // 7/8 of the memory used, 11% of the cpu
    expect(alignedFit.score(r, lopsided)).toBeGreaterThan(alignedFit.score(r, node(0, 0)));
  });
});

/** Aligned fit as first written (issue 19): both angles computed on every used node. */
function alignedFitAsWritten(req: PlacementRequest, node: NodeView): number {
  const share = (used: number, capacity: number) => {
    if (capacity <= 0) return 0;
    const u = used / capacity;
    return u < 0 ? 0 : u > 1 ? 1 : u;
  };
  const h2 = (c: number, m: number) => (1 - (c * c + m * m) / 2 - 2 * Math.abs(c - m) + 2) / 3;
  const c = 1 - share(node.allocated.cpuMillis + req.resources.cpuMillis, node.allocatable.cpuMillis);
  const m = 1 - share(node.allocated.memoryBytes + req.resources.memoryBytes, node.allocatable.memoryBytes);
  const h = h2(c, m);
  const a = node.allocated;
  if (a.cpuMillis === 0 && a.memoryBytes === 0) return h * 0.8;
  const cap = node.allocatable;
  const dc = share(req.resources.cpuMillis, cap.cpuMillis);
  const dm = share(req.resources.memoryBytes, cap.memoryBytes);
  const held = Math.atan2(share(a.memoryBytes, cap.memoryBytes), share(a.cpuMillis, cap.cpuMillis));
  if (Math.abs(held - Math.atan2(dm, dc)) >= (20 * Math.PI) / 180) return h;
  const ce = 1 - dc;
  const me = 1 - dm;
  const fuller = (ce * ce + me * me - c * c - m * m) / 2;
  return Math.max(h, h2(ce, me) * 0.8 + 1e-9 + 0.1 * fuller);
}

test("property: aligned fit gives exactly what it gave when it computed both angles on every used node", () => {
  const amount = (max: number) =>
    fc.oneof(fc.constant(0), fc.integer({ min: 0, max }), fc.double({ min: 0, max, noNaN: true }));
  fc.assert(
    fc.property(
      amount(128_000),
      amount(512 * GiB),
      amount(130_000),
      amount(520 * GiB),
      amount(64_000),
      amount(256 * GiB),
      // Half the cases: a node holding k instances of about the request's own shape (aligned).
      fc.option(
        fc.record({ k: fc.integer({ min: 1, max: 40 }), skew: fc.double({ min: 0.7, max: 1.4, noNaN: true }) }),
      ),
      (capCpu, capMem, anyCpu, anyMem, reqCpu, reqMem, own) => {
        const usedCpu = own ? own.k * reqCpu : anyCpu;
        const usedMem = own ? own.k * reqMem * own.skew : anyMem;
        const n: NodeView = {
          name: "n",
          ready: true,
          unschedulable: false,
          allocatable: { cpuMillis: capCpu, memoryBytes: capMem, pids: 10 },
          allocated: { cpuMillis: usedCpu, memoryBytes: usedMem, pids: 0 },
          labels: {},
        };
        const r: PlacementRequest = {
          id: "r",
          app: "a",
          namespace: "n",
          resources: { cpuMillis: reqCpu, memoryBytes: reqMem, pids: 1 },
        };
        expect(Object.is(alignedFit.score(r, n), alignedFitAsWritten(r, n))).toBe(true);
      },
    ),
    { numRuns: 20_000 },
  );
});
