// The scrape-time gauges count the informers' objects; the store wrapper times calls by outcome.
import type { Instance, Node } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { instrumentStore } from "./instrumented-store";
import { ControlPlaneMetrics } from "./metrics";

function inst(name: string, status: Instance["status"], nodeName?: string): Instance {
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: { name, namespace: "default" },
    spec: {
      app: "a",
      index: 0,
      resources: { cpu: 100, memory: 1, pids: 1, disk: 0 },
      ...(nodeName ? { nodeName } : {}),
    },
    ...(status ? { status } : {}),
  } as unknown as Instance;
}

function node(name: string, ready: "True" | "False" | "Unknown" | undefined, unschedulable = false): Node {
  return {
    apiVersion: "grove/v1",
    kind: "Node",
    metadata: { name },
    spec: { unschedulable },
    status: { conditions: ready ? [{ type: "Ready", status: ready }] : [] },
  } as unknown as Node;
}

describe("ControlPlaneMetrics", () => {
  it("counts pending instances by reason and nodes by condition when scraped", async () => {
    const m = new ControlPlaneMetrics();
    const nodes = [node("n1", "True"), node("n2", "False", true), node("n3", undefined)];
    m.setSources({
      instances: () => [
        inst("a-0", { state: "Pending", reason: "Unscheduled" }),
        inst("a-1", { state: "Pending", reason: "Unschedulable", message: "memory" }),
        inst("a-2", { state: "Running" }, "n1"),
        inst("a-3", { state: "Failed" }),
      ],
      nodes: () => nodes,
    });
    const text = await m.render();
    expect(text).toMatch(/^grove_instances_pending\{reason="Unscheduled"\} 1$/m);
    expect(text).toMatch(/^grove_instances_pending\{reason="Unschedulable"\} 1$/m);
    expect(text).toMatch(/^grove_nodes\{condition="Ready",status="True"\} 1$/m);
    expect(text).toMatch(/^grove_nodes\{condition="Ready",status="False"\} 1$/m);
    expect(text).toMatch(/^grove_nodes\{condition="Ready",status="Unknown"\} 1$/m);
    expect(text).toMatch(/^grove_nodes\{condition="Unschedulable",status="True"\} 1$/m);
    // Counting did not touch the informers' objects.
    expect(nodes[2]!.status?.conditions).toEqual([]);
    expect(text).toMatch(/^grove_leader 0$/m);
    m.setLeader(true);
    expect(await m.render()).toMatch(/^grove_leader 1$/m);
  });

  it("times store calls by operation and outcome; a failed compare is a conflict, not an error", async () => {
    const m = new ControlPlaneMetrics();
    const store = instrumentStore(new MemoryStore(), m);
    await store.create("/grove/apps/default/x", { v: 1 });
    await expect(store.create("/grove/apps/default/x", { v: 1 })).rejects.toThrow();
    const r = await store.txn([{ key: "/grove/apps/default/x", modRevision: "999" }], []);
    expect(r.succeeded).toBe(false);
    const text = await m.render();
    expect(text).toMatch(/^grove_etcd_request_duration_seconds_count\{operation="create",outcome="ok"\} 1$/m);
    expect(text).toMatch(/^grove_etcd_request_duration_seconds_count\{operation="create",outcome="conflict"\} 1$/m);
    expect(text).toMatch(/^grove_etcd_request_duration_seconds_count\{operation="txn",outcome="conflict"\} 1$/m);
  });
});
