import type { Node } from "../../schemas";
import { describeApp, describeInstance, describeNode, placementSummary } from "./describe";
import { app, FIXED_NOW, instance } from "./testing";

describe("placementSummary", () => {
  it("says which filter kept a pending instance off how many nodes", () => {
    expect(placementSummary({ state: "Pending", explain: { nodesConsidered: 1, rejected: { memory: 1 } } })).toBe(
      "Pending: memory: insufficient on 1 of 1 nodes",
    );
    expect(
      placementSummary({
        state: "Pending",
        explain: { nodesConsidered: 3, rejected: { ready: 1, cpu: 2, memory: 0 } },
      }),
    ).toBe("Pending: cpu: insufficient on 2 of 3 nodes; ready: ruled out 1 of 3 nodes");
    expect(placementSummary({ state: "Pending", explain: { nodesConsidered: 0, rejected: {} } })).toBe(
      "Pending: no nodes to place on",
    );
    expect(
      placementSummary({ state: "Running", explain: { nodesConsidered: 2, rejected: { cpu: 1 }, chosen: "n2" } }),
    ).toBe("Running: placed on n2 out of 2 nodes (cpu: insufficient on 1 of 2 nodes)");
    expect(placementSummary({ state: "Running" })).toBeUndefined();
  });
});

describe("describeInstance", () => {
  it("shows status and the placement explanation", () => {
    const inst = instance(
      "hello-0",
      {},
      {
        state: "Pending",
        reason: "Unschedulable",
        explain: { nodesConsidered: 1, rejected: { memory: 1 } },
      },
    );
    const text = describeInstance(inst, FIXED_NOW).join("\n");
    expect(text).toMatch(/^Name: +hello-0$/m);
    expect(text).toMatch(/^ {2}State: +Pending$/m);
    expect(text).toMatch(/^ {2}Reason: +Unschedulable$/m);
    expect(text).toMatch(/^ {2}Command: +sleep 1000$/m);
    expect(text).toMatch(/^ {2}Resources: +cpu 250m, memory 64Mi, pids 100$/m);
    expect(text).toContain(
      "Placement:\n  Pending: memory: insufficient on 1 of 1 nodes\n  Nodes considered: 1\n  Rejected by memory: 1",
    );
  });
});

describe("describeInstance: applied limits", () => {
  const status = (appliedResources: { cpuMillis: number; memoryBytes: number; pids: number }, reason = "Running") => ({
    state: "Running" as const,
    reason,
    appliedResources,
  });
  it("shows the limits the container has", () => {
    const inst = instance("hello-0", {}, status({ cpuMillis: 250, memoryBytes: 64 * 2 ** 20, pids: 100 }));
    expect(describeInstance(inst, FIXED_NOW).join("\n")).toMatch(/^ {2}Limits: +cpu 250m, memory 64Mi, pids 100$/m);
  });
  it("says when they differ from the spec: a resize under way or refused", () => {
    const old = { cpuMillis: 250, memoryBytes: 32 * 2 ** 20, pids: 100 };
    expect(describeInstance(instance("hello-0", {}, status(old, "Resizing")), FIXED_NOW).join("\n")).toMatch(
      /^ {2}Limits: +cpu 250m, memory 32Mi, pids 100 \(resizing; spec asks for cpu 250m, memory 64Mi, pids 100\)$/m,
    );
    expect(describeInstance(instance("hello-0", {}, status(old, "ResizeFailed")), FIXED_NOW).join("\n")).toContain(
      "(resize refused; spec asks for cpu 250m, memory 64Mi, pids 100)",
    );
  });
});

describe("describeApp", () => {
  it("lists the app's instances in index order and why the stuck ones are stuck", () => {
    const a = app("hello", 2, { labels: { tier: "web" }, uid: "u-1" });
    a.spec.env = { B: "2", A: "1" };
    const pending = instance(
      "hello-1",
      { index: 1 },
      { state: "Pending", explain: { nodesConsidered: 1, rejected: { memory: 1 } } },
    );
    const running = instance("hello-0", { nodeName: "n1" }, { state: "Running", nodeName: "n1" });
    const lines = describeApp(a, [pending, running], FIXED_NOW);
    const text = lines.join("\n");
    expect(text).toMatch(/^Labels: +tier=web$/m);
    expect(text).toMatch(/^ {2}Command: +sh -c "sleep 1000"$/m);
    expect(text).toContain("  Env:\n    A=1\n    B=2");
    expect(text).toMatch(/^ {2}Running: +0 of 2$/m);
    const header = lines.findIndex((l) => l === "Instances:");
    expect(lines[header + 1]).toMatch(/^ {2}NAME +APP +NODE +STATE/);
    expect(lines[header + 2]).toMatch(/^ {2}hello-0 +hello +n1 +Running/);
    expect(lines[header + 3]).toMatch(/^ {2}hello-1 +hello +- +Pending/);
    expect(text).toContain("Placement:\n  hello-1: Pending: memory: insufficient on 1 of 1 nodes");
  });

  it("says when there are no instances", () => {
    expect(describeApp(app("idle", 0), [], FIXED_NOW)).toContain("  <none>");
  });
});

describe("describeNode", () => {
  it("shows readiness, resources, conditions and the node's instances", () => {
    const node: Node = {
      apiVersion: "grove/v1",
      kind: "Node",
      metadata: { name: "n1", labels: { zone: "a" } },
      spec: {},
      status: {
        addresses: ["10.0.0.5"],
        allocatable: { cpuMillis: 2000, memoryBytes: 2 ** 30, pids: 4096 },
        allocated: { cpuMillis: 250, memoryBytes: 64 * 2 ** 20, pids: 100 },
        conditions: [{ type: "Ready", status: "False", reason: "HeartbeatMissed", message: "no heartbeat for 40s" }],
      },
    };
    const text = describeNode(node, [instance("hello-0", {}, { state: "Running", nodeName: "n1" })], FIXED_NOW).join(
      "\n",
    );
    expect(text).toMatch(/^Ready: +NotReady$/m);
    expect(text).toMatch(/^Addresses: +10\.0\.0\.5$/m);
    expect(text).toMatch(/^ {2}Allocated: +cpu 250m, memory 64Mi, pids 100 \(cpu 13%, mem 6%\)$/m);
    expect(text).toContain("  Ready=False (HeartbeatMissed: no heartbeat for 40s)");
    expect(text).toMatch(/^ {2}default +hello-0 +hello +n1 +Running/m);
  });
});
