// Dynamic host ports are handed out by placement itself, so `grove apply
// --plan` (planApply) and the scheduler loop, on the same snapshot, choose the
// same node and the same host ports for every instance.
import { pino } from "pino";
import { newInstance, type App, type Instance, type Node } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Informer } from "./informer";
import { planApply } from "../scheduling/plan";
import { SchedulerController } from "./scheduler-controller";

const logger = pino({ level: "silent" });
const GiB = 2 ** 30;
const RANGE = { first: 30000, last: 30004 };

const node = (name: string): Node => ({
  apiVersion: "grove/v1",
  kind: "Node",
  metadata: { name },
  spec: {},
  status: {
    allocatable: { cpuMillis: 4000, memoryBytes: 8 * GiB, pids: 100000 },
    conditions: [{ type: "Ready", status: "True" }],
  },
});
const app = (name: string, instances: number, ports: NonNullable<App["spec"]["ports"]>): App => ({
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name, namespace: "default", uid: `uid-${name}` },
  spec: { rootfs: "busybox", command: ["sleep", "1"], instances, resources: { cpu: "250m", memory: "256Mi" }, ports },
});

describe("dynamic host ports: plan and scheduler loop agree", () => {
  let store: MemoryStore;
  let nodes: Informer<Node>;
  let instances: Informer<Instance>;
  let scheduler: SchedulerController | undefined;

  beforeEach(async () => {
    store = new MemoryStore();
    nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
  });
  afterEach(async () => {
    scheduler?.stop();
    await Promise.all([nodes.stop(), instances.stop()]);
    await store.close();
  });

  test("every instance gets the node and host ports the plan showed", async () => {
    // Node a already holds 30000-30002 (a bound instance of another App), so
    // its range has two ports left: one instance of web (two dynamic ports
    // and a fixed one) fits there, no more.
    const db = app("db", 1, [
      { name: "a", containerPort: 5432 },
      { name: "b", containerPort: 5433 },
      { name: "c", containerPort: 5434 },
    ]);
    const dbBound: Instance = (() => {
      const i = newInstance(db, 0, 0, 0);
      const ports = i.spec.ports!.map((p, k) => ({ ...p, hostPort: 30000 + k }));
      return { ...i, spec: { ...i.spec, nodeName: "a", ports }, status: { state: "Running" } };
    })();
    const web = app("web", 4, [
      { name: "http", containerPort: 80 },
      { name: "admin", containerPort: 81, hostPort: 8080 },
      { name: "metrics", containerPort: 82 },
    ]);
    const allNodes = [node("a"), node("b"), node("c")];

    const plan = planApply([web], allNodes, [dbBound], RANGE);
    expect(plan.fits).toBe(false); // 8080 once per node: the fourth instance has nowhere to go
    const planned = new Map(plan.instances.map((p) => [p.name, p]));

    // The loop, on the same snapshot: the App controller's instances, unbound.
    const put = async (key: string, value: unknown) => {
      const r = await store.txn([], [{ type: "put", key, value }]);
      expect(r.succeeded).toBe(true);
    };
    for (const n of allNodes) await put(Keys.object("nodes", undefined, n.metadata.name), n);
    await put(Keys.object("instances", "default", "db-0"), dbBound);
    for (let i = 0; i < 4; i++) await put(Keys.object("instances", "default", `web-${i}`), newInstance(web, i, 0, 0));
    await Promise.all([nodes.start(), instances.start()]);
    scheduler = new SchedulerController(store, nodes, instances, logger, 1, RANGE);
    await scheduler.schedulePass();

    const placed = instances.list().filter((i) => i.spec.app === "web");
    expect(placed).toHaveLength(4);
    for (const inst of placed) {
      const p = planned.get(inst.metadata.name)!;
      expect({
        name: inst.metadata.name,
        node: inst.spec.nodeName,
        ports: inst.spec.nodeName ? inst.spec.ports!.map((q) => q.hostPort) : undefined,
      }).toEqual({
        name: p.name,
        node: p.node,
        ports: p.hostPorts,
      });
      if (!inst.spec.nodeName) expect(inst.status?.message).toBe(p.reason);
    }
    // The ports handed out are the lowest free ones of the range, and a node
    // with too few left is not chosen for an instance that needs more.
    const onA = plan.instances.filter((p) => p.node === "a");
    expect(onA.map((p) => p.hostPorts)).toEqual([[30003, 8080, 30004]]);
    for (const p of plan.instances.filter((q) => q.node && q.node !== "a"))
      expect(p.hostPorts).toEqual([30000, 8080, 30001]);
  });
});
