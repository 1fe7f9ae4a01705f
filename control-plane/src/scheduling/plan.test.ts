import { newInstance, type App, type Instance, type Node } from "@grove/api";
import { capacityOf, parseShape, planApply } from "./plan";

const GiB = 2 ** 30;
const node = (name: string, over: Partial<Node["spec"]> = {}, ready = true): Node => ({
  apiVersion: "grove/v1",
  kind: "Node",
  metadata: { name, labels: { zone: name } },
  spec: { ...over },
  status: {
    allocatable: { cpuMillis: 4000, memoryBytes: 8 * GiB, pids: 100000 },
    conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
  },
});
const app = (name: string, instances: number, memory: string, extra: Partial<App["spec"]> = {}): App => ({
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name, namespace: "default", uid: `uid-${name}` },
  spec: { rootfs: "busybox", command: ["sleep", "1"], instances, resources: { cpu: "500m", memory }, ...extra },
});
const bound = (a: App, index: number, nodeName: string): Instance => {
  const i = newInstance(a, index, 0, 0);
  return { ...i, spec: { ...i.spec, nodeName }, status: { state: "Running" } };
};

describe("parseShape", () => {
  test("reads cpu, memory, pids and disk", () => {
    expect(parseShape("cpu=500m,memory=1Gi")).toEqual({ cpuMillis: 500, memoryBytes: GiB, pids: 0 });
    expect(parseShape("cpu=2, memory=512Mi, pids=64, disk=10Gi")).toEqual({
      cpuMillis: 2000,
      memoryBytes: 512 * 2 ** 20,
      pids: 64,
      diskBytes: 10 * GiB,
    });
  });
  test.each([
    ["", "shape: empty"],
    ["cpu", 'shape: expected key=value in "cpu"'],
    ["gpu=1", 'shape: unknown resource "gpu"'],
    ["memory=lots", 'in "memory=lots"'],
    ["pids=1.5", '"1.5" is not a whole number'],
    ["cpu=0", "shape: asks for nothing"],
  ])("%j is rejected naming the part", (shape, msg) => {
    expect(() => parseShape(shape)).toThrow(msg);
  });
});

describe("capacityOf", () => {
  test("counts what fits per node and across the cluster; not-ready nodes hold no room", () => {
    const web = app("web", 3, "3Gi");
    const instances = [bound(web, 0, "a"), bound(web, 1, "a"), bound(web, 2, "b")];
    const cap = capacityOf([node("a"), node("b"), node("c", {}, false)], instances, parseShape("cpu=1,memory=3Gi"));
    expect(cap.nodes.map((n) => [n.name, n.fits])).toEqual([
      ["a", 0],
      ["b", 1],
      ["c", 0],
    ]);
    expect(cap.fits).toBe(1);
    expect(cap.fitsIfPooled).toBe(2); // 2 GiB on a + 5 GiB on b: stranded room
    expect(cap.cluster.allocated).toEqual({ cpuMillis: 1500, memoryBytes: 9 * GiB, pids: 3072 });
  });
});

describe("planApply", () => {
  test("places new instances without writing, reports utilization before and after", () => {
    const plan = planApply([app("web", 2, "1Gi")], [node("a"), node("b")], []);
    expect(plan.fits).toBe(true);
    expect(plan.instances.map((i) => [i.name, i.change, typeof i.node])).toEqual([
      ["web-0", "create", "string"],
      ["web-1", "create", "string"],
    ]);
    expect(plan.before.memory).toBe(0);
    expect(plan.after.memory).toBeCloseTo(2 / 16, 12);
  });

  test("says what would stay Pending and why", () => {
    const plan = planApply([app("big", 3, "6Gi")], [node("a"), node("b")], []);
    expect(plan.fits).toBe(false);
    expect(plan.instances[2]).toMatchObject({ name: "big-2", reason: "memory: insufficient on 2 of 2 nodes" });
  });

  test("an unchanged App plans nothing; a changed template replaces; scaling down removes", () => {
    const web = app("web", 2, "1Gi");
    const instances = [bound(web, 0, "a"), bound(web, 1, "b")];
    expect(planApply([web], [node("a"), node("b")], instances).instances).toEqual([]);
    const changed = planApply([app("web", 2, "2Gi", { command: ["sleep", "2"] })], [node("a"), node("b")], instances);
    expect(changed.instances.map((i) => i.change)).toEqual(["replace", "replace"]);
    expect(changed.removed).toEqual(["default/web-0", "default/web-1"]);
    expect(changed.after.memory).toBeCloseTo(4 / 16, 12);
    const down = planApply([app("web", 1, "1Gi")], [node("a"), node("b")], instances);
    expect(down.removed).toEqual(["default/web-1"]);
  });

  test("a resources-only change resizes in place where it fits, replaces where it does not, or under Replace", () => {
    const web = app("web", 2, "1Gi");
    const other = app("other", 1, "4Gi");
    const instances = [bound(web, 0, "a"), bound(web, 1, "b"), bound(other, 0, "b")];
    const grown = planApply([app("web", 2, "4Gi")], [node("a"), node("b")], instances);
    // a: 4 of 8 GiB; b: 4 + 4 of 8 GiB fits too.
    expect(grown.instances.map((i) => [i.name, i.change, i.node])).toEqual([
      ["web-0", "resize", "a"],
      ["web-1", "resize", "b"],
    ]);
    expect(grown.removed).toEqual([]);
    expect(grown.after.memory).toBeCloseTo(12 / 16, 12);
    // 5 GiB does not fit beside other's 4 GiB on b: that one is replaced (and, with a full too, would stay Pending).
    const tight = planApply([app("web", 2, "5Gi")], [node("a"), node("b")], instances);
    expect(tight.instances.map((i) => [i.name, i.change])).toEqual([
      ["web-0", "resize"],
      ["web-1", "replace"],
    ]);
    expect(tight.removed).toEqual(["default/web-1"]);
    expect(tight.fits).toBe(false);
    const replaced = planApply(
      [app("web", 2, "2Gi", { updatePolicy: { resources: "Replace" } })],
      [node("a"), node("b")],
      instances,
    );
    expect(replaced.instances.map((i) => i.change)).toEqual(["replace", "replace"]);
  });

  test("shows preemption of lower-priority instances", () => {
    const low = app("low", 2, "7Gi");
    const instances = [bound(low, 0, "a"), bound(low, 1, "b")];
    const plan = planApply([app("high", 1, "4Gi", { priority: 100 })], [node("a"), node("b")], instances);
    expect(plan.fits).toBe(true);
    expect(plan.preempted).toHaveLength(1);
    expect(plan.instances[0]!.victims).toEqual(plan.preempted);
  });
});
