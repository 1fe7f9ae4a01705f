import type { App, Task } from "@grove/api";
import { hardOf, namespaceUsage, quotaProblems } from "./usage";

const app = (name: string, instances: number, cpu = "250m", ports = 0): App => ({
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name, namespace: "t" },
  spec: {
    rootfs: "busybox",
    command: ["true"],
    instances,
    resources: { cpu, memory: "64Mi" },
    ports: Array.from({ length: ports }, (_, i) => ({ name: `p${i}`, containerPort: 80 + i })),
  },
});
const task = (name: string, phase?: "Succeeded" | "Running"): Task =>
  ({
    apiVersion: "grove/v1",
    kind: "Task",
    metadata: { name, namespace: "t" },
    spec: { fromApp: "web", command: ["true"] },
    ...(phase ? { status: { phase } } : {}),
  }) as Task;

describe("namespace usage and quota", () => {
  it("counts instances x resources and ports; a running Task takes its fromApp's resources, a finished one nothing", () => {
    const used = namespaceUsage([app("web", 3, "250m", 2)], [task("a", "Running"), task("b", "Succeeded")]);
    expect(used).toEqual({ cpuMillis: 1000, memoryBytes: 4 * 64 * 2 ** 20, instances: 4, hostPorts: 6 });
  });

  it("names the quota and the amounts, and never refuses a change that does not grow", () => {
    const hard = hardOf({ cpu: "1", instances: 4 });
    const before = namespaceUsage([app("a", 3)], []);
    const grow = namespaceUsage([app("b", 2)], []);
    expect(quotaProblems(before, grow, { cpuMillis: 0, memoryBytes: 0, instances: 0, hostPorts: 0 }, hard)).toEqual([
      "quota cpu exceeded: requested 500m, used 750m by the rest of the namespace, limit 1000m",
      "quota instances exceeded: requested 2, used 3 by the rest of the namespace, limit 4",
    ]);
    expect(quotaProblems(before, grow, grow, hard)).toEqual([]);
    expect(hardOf({ memory: "1Gi" })).toEqual({ memoryBytes: 2 ** 30 });
  });
});
