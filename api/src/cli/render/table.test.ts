import type { App, Node } from "../../schemas";
import { FIXED_NOW, instance } from "./testing";
import { allocationSummary, formatAge, renderObjects, renderTable } from "./table";

const NOW = FIXED_NOW;
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

describe("formatAge", () => {
  it("uses the largest whole unit", () => {
    expect(formatAge(ago(5), NOW)).toBe("5s");
    expect(formatAge(ago(125), NOW)).toBe("2m");
    expect(formatAge(ago(3 * 3600 + 10), NOW)).toBe("3h");
    expect(formatAge(ago(2 * 86400), NOW)).toBe("2d");
    expect(formatAge(undefined, NOW)).toBe("<unknown>");
    expect(formatAge("garbage", NOW)).toBe("<unknown>");
  });
});

describe("renderTable", () => {
  it("pads every column but the last to its widest cell", () => {
    expect(
      renderTable([
        ["NAME", "AGE"],
        ["a-long-name", "5s"],
        ["b", "10m"],
      ]),
    ).toEqual(["NAME          AGE", "a-long-name   5s", "b             10m"]);
  });
});

describe("renderObjects", () => {
  it("renders apps", () => {
    const app: App = {
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "hello", namespace: "team-a", creationTimestamp: ago(30) },
      spec: { rootfs: "busybox", command: ["true"], instances: 3 },
      status: { running: 2 },
    };
    expect(renderObjects("App", [app], { now: NOW })).toEqual([
      "NAME    INSTANCES   RUNNING   AGE",
      "hello   3           2         30s",
    ]);
    expect(renderObjects("App", [app], { now: NOW, showNamespace: true })[1]).toBe(
      "team-a      hello   3           2         30s",
    );
  });

  it("renders instances, with dashes for what is unknown, and wide columns", () => {
    const running = instance("hello-0", { nodeName: "n1" }, { state: "Running", nodeName: "n1", pid: 4242 });
    const failed = instance(
      "hello-1",
      { index: 1, restarts: 2 },
      { state: "Failed", exitCode: 137, reason: "OOMKilled" },
    );
    const pending = instance("hello-2", { index: 2 });
    expect(renderObjects("Instance", [running, failed, pending], { now: NOW })).toEqual([
      "NAME      APP     NODE   STATE     RESTARTS   EXIT   REASON      AGE",
      "hello-0   hello   n1     Running   0          -      -           1m",
      "hello-1   hello   -      Failed    2          137    OOMKilled   1m",
      "hello-2   hello   -      Pending   0          -      -           1m",
    ]);
    expect(renderObjects("Instance", [running], { now: NOW, wide: true })).toEqual([
      "NAME      APP     NODE   STATE     RESTARTS   EXIT   REASON   AGE   PID    CPU    MEMORY",
      "hello-0   hello   n1     Running   0          -      -        1m    4242   250m   64Mi",
    ]);
  });

  it("renders nodes with readiness, cordon and allocation", () => {
    const node: Node = {
      apiVersion: "grove/v1",
      kind: "Node",
      metadata: { name: "n1", creationTimestamp: ago(7200) },
      spec: { unschedulable: true },
      status: {
        allocatable: { cpuMillis: 2000, memoryBytes: 2 ** 30, pids: 4096 },
        allocated: { cpuMillis: 500, memoryBytes: 2 ** 29, pids: 10 },
        conditions: [{ type: "Ready", status: "True" }],
        lastHeartbeatTime: ago(3),
      },
    };
    const bare: Node = { apiVersion: "grove/v1", kind: "Node", metadata: { name: "n2" }, spec: {} };
    expect(renderObjects("Node", [node, bare], { now: NOW, showNamespace: true })).toEqual([
      "NAME   READY                      HEARTBEAT   CPU   MEMORY   ALLOCATED          AGE",
      "n1     Ready,SchedulingDisabled   3s ago      2     1Gi      cpu 25%, mem 50%   2h",
      "n2     Unknown                    -           -     -        -                  <unknown>",
    ]);
  });
});

describe("allocationSummary", () => {
  it("treats missing allocation as zero", () => {
    expect(allocationSummary(undefined, { cpuMillis: 1000, memoryBytes: 100, pids: 1 })).toBe("cpu 0%, mem 0%");
  });
});
