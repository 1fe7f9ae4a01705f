import { placementSummary } from "./describe";

test("an unschedulable instance shows the scheduler's sentence, reasons and counts", () => {
  expect(
    placementSummary({
      state: "Pending",
      reason: "Unschedulable",
      message: "memory: insufficient on 12 of 40 nodes; ports: 8080 in use on 3 of 40 nodes",
      explain: { nodesConsidered: 40, rejected: { "memory-fit": 12, "host-ports": 3 } },
    }),
  ).toBe("Pending: memory: insufficient on 12 of 40 nodes; ports: 8080 in use on 3 of 40 nodes");
});

test("a placement that preempted names its victims", () => {
  expect(
    placementSummary({
      state: "Pending",
      reason: "Scheduled",
      explain: { nodesConsidered: 3, rejected: { "cpu-fit": 3 }, chosen: "n2", victims: ["default/low-1"] },
    }),
  ).toBe("Pending: placed on n2 out of 3 nodes (cpu-fit: insufficient on 3 of 3 nodes); preempted default/low-1");
});
