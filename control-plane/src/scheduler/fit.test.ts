// resourceFit restates the resource fit filters on plain amounts: it must
// reject exactly what they reject, with the same reasons, on any node.
import fc from "fast-check";
import type { Resources } from "@grove/api";
import { cpuFit, diskFit, memoryFit, pidsFit } from "./filters";
import { resizeFit, resourceFit } from "./fit";
import type { FilterReason, NodeView, PlacementRequest } from "./types";

const amount = fc.integer({ min: 0, max: 2000 });
const resourcesArb: fc.Arbitrary<Resources> = fc.record(
  { cpuMillis: amount, memoryBytes: amount, pids: amount, diskBytes: amount },
  { requiredKeys: ["cpuMillis", "memoryBytes", "pids"] },
);

test("resourceFit rejects what the fit filters reject, with their reasons, in their order", () => {
  fc.assert(
    fc.property(resourcesArb, resourcesArb, resourcesArb, (allocatable, allocated, request) => {
      const node: NodeView = { name: "n", ready: true, unschedulable: false, allocatable, allocated, labels: {} };
      const req: PlacementRequest = { id: "ns/a-0", app: "a", namespace: "ns", resources: request };
      const want: FilterReason[] = [];
      for (const f of [cpuFit, memoryFit, pidsFit, diskFit]) {
        if (f.applies && !f.applies(req)) continue;
        const v = f.check(req, node);
        if (!v.fit) want.push(v.reason);
      }
      expect(resourceFit(allocatable, allocated, request)).toEqual(want);
    }),
  );
});

describe("resizeFit", () => {
  const r = (cpuMillis: number, memoryBytes: number, pids = 32): Resources => ({ cpuMillis, memoryBytes, pids });
  const allocatable = r(2000, 256, 1000);
  it("fits a growth into the node's free room and gives the allocation afterwards", () => {
    expect(resizeFit(allocatable, r(750, 192), r(250, 64), r(500, 128))).toEqual({
      fits: true,
      allocated: r(1000, 256),
    });
  });
  it("names each resource that grows beyond the node's room", () => {
    expect(resizeFit(allocatable, r(1900, 192), r(250, 64), r(500, 160))).toEqual({
      fits: false,
      reasons: [
        { subject: "cpu", message: "insufficient" },
        { subject: "memory", message: "insufficient" },
      ],
    });
  });
  it("lets a resource that does not grow be over-committed", () => {
    expect(resizeFit(allocatable, r(750, 400), r(250, 200), r(300, 100))).toEqual({
      fits: true,
      allocated: r(800, 300),
    });
  });
});
