// The scheduling snapshot's host ports: a finished instance keeps its host
// ports in use on its node until its agent reports it released.
import { newInstance, type App, type Instance, type Node } from "@grove/api";
import { holdsHostPorts, nodeViews, usedHostPorts } from "./snapshot";
import { assignHostPorts } from "./ports";
import type { PlacementRequest } from "./types";

const app: App = {
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name: "web", namespace: "default", uid: "uid-web" },
  spec: { rootfs: "busybox", command: ["sleep", "1"], instances: 4, ports: [{ name: "http", containerPort: 80 }] },
};

function bound(index: number, hostPort: number, status: Instance["status"], node = "n1"): Instance {
  const i = newInstance(app, index, 0, 0);
  return {
    ...i,
    spec: { ...i.spec, nodeName: node, ports: [{ name: "http", containerPort: 80, hostPort }] },
    ...(status ? { status } : {}),
  };
}

const running = { state: "Running" as const };
const rolledOut = { state: "Exited" as const, reason: "RolledOut", finishedAt: "2026-01-01T00:00:00Z" };
const released = { ...rolledOut, releasedAt: "2026-01-01T00:00:03Z" };

describe("usedHostPorts", () => {
  it("counts bound unfinished instances and finished ones not yet released, per node", () => {
    const used = usedHostPorts([
      bound(0, 20000, running),
      bound(1, 20001, rolledOut), // stopped by the control plane, still in its stop grace
      bound(2, 20002, released), // its agent removed it
      bound(3, 20003, { state: "Failed", reason: "Error" }, "n2"), // crashed, its network not torn down yet
      bound(4, 20004, { state: "Failed", reason: "Lost", releasedAt: "2026-01-01T00:00:00Z" }, "n2"),
      { ...newInstance(app, 5, 0, 0), status: { state: "Pending" } }, // unbound
    ]);
    expect(used).toEqual(
      new Map([
        ["n1", new Set([20000, 20001])],
        ["n2", new Set([20003])],
      ]),
    );
  });

  it("holdsHostPorts: only bound instances, until a finished one is released", () => {
    expect(holdsHostPorts(bound(0, 20000, undefined))).toBe(true);
    expect(holdsHostPorts(bound(0, 20000, rolledOut))).toBe(true);
    expect(holdsHostPorts(bound(0, 20000, released))).toBe(false);
    expect(holdsHostPorts(newInstance(app, 0, 0, 0))).toBe(false);
  });

  it("placement hands a new instance a port other than a stopped instance's until it is released", () => {
    const range = { first: 20000, last: 20009 };
    const req: PlacementRequest = {
      id: "default/web-new",
      app: "web",
      namespace: "default",
      resources: { cpuMillis: 100, memoryBytes: 2 ** 20, pids: 10 },
      dynamicHostPorts: { count: 1, range },
    };
    const node: Node = {
      apiVersion: "grove/v1",
      kind: "Node",
      metadata: { name: "n1" },
      spec: {},
      status: { allocatable: { cpuMillis: 4000, memoryBytes: 2 ** 33, pids: 1000 } },
    };
    const before = nodeViews([node], [bound(0, 20000, rolledOut), bound(1, 20001, running)]);
    expect(assignHostPorts(req, before[0]!)).toEqual([20002]);
    const after = nodeViews([node], [bound(0, 20000, released), bound(1, 20001, running)]);
    expect(assignHostPorts(req, after[0]!)).toEqual([20000]);
  });
});
