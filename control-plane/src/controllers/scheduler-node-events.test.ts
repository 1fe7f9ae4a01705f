// Which Node changes make the scheduler loop pass, and how it records allocations
// (issue 18: thousands of nodes registering at once).
import { pino } from "pino";
import type { Instance, Node } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Informer } from "./informer";
import { placementFacts, SchedulerController } from "./scheduler-controller";

const logger = pino({ level: process.env.TEST_LOG ?? "silent" });
const GiB = 2 ** 30;

const node = (name: string, extra: Partial<NonNullable<Node["status"]>> = {}): Node => ({
  apiVersion: "grove/v1",
  kind: "Node",
  metadata: { name, labels: { zone: "a" } },
  spec: {},
  status: {
    allocatable: { cpuMillis: 2000, memoryBytes: 8 * GiB, pids: 1000 },
    conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-12-05T00:00:00Z" }],
    lastHeartbeatTime: "2026-12-05T00:00:00Z",
    ...extra,
  },
});

describe("placementFacts", () => {
  const a = node("a");
  test("the same for a change of the recorded allocation, heartbeat or transition times, or revision", () => {
    const b: Node = {
      ...a,
      metadata: { ...a.metadata, resourceVersion: "99" },
      status: {
        ...a.status,
        allocated: { cpuMillis: 500, memoryBytes: GiB, pids: 3 },
        lastHeartbeatTime: "2026-12-05T01:00:00Z",
        conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-12-05T01:00:00Z" }],
      },
    };
    expect(placementFacts(b)).toBe(placementFacts(a));
  });
  test("different for what placement reads: allocatable, labels, taints, cordon, Ready", () => {
    const changed: Node[] = [
      node("a", { allocatable: { cpuMillis: 1000, memoryBytes: 8 * GiB, pids: 1000 } }),
      { ...a, metadata: { ...a.metadata, labels: { zone: "b" } } },
      { ...a, spec: { taints: [{ key: "k", effect: "NoSchedule" }] } },
      { ...a, spec: { unschedulable: true } },
      node("a", { conditions: [{ type: "Ready", status: "Unknown", lastTransitionTime: "2026-12-05T00:00:00Z" }] }),
    ];
    for (const c of changed) expect(placementFacts(c)).not.toBe(placementFacts(a));
  });
});

describe("scheduler loop and Node events", () => {
  let store: MemoryStore & { txns?: number };
  let nodes: Informer<Node>;
  let instances: Informer<Instance>;
  let scheduler: SchedulerController | undefined;
  let txns = 0;

  beforeEach(() => {
    txns = 0;
    store = new MemoryStore();
    const txn = store.txn.bind(store);
    store.txn = ((...args: Parameters<MemoryStore["txn"]>) => (txns++, txn(...args))) as MemoryStore["txn"];
    nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
  });
  afterEach(async () => {
    scheduler?.stop();
    await Promise.all([nodes.stop(), instances.stop()]);
    await store.close();
  });

  test("stale allocations of many nodes are written in one transaction, not one per node", async () => {
    for (let i = 0; i < 30; i++) await store.create(Keys.object("nodes", undefined, `n${i}`), node(`n${i}`));
    await Promise.all([nodes.start(), instances.start()]);
    scheduler = new SchedulerController(store, nodes, instances, logger, 1);
    txns = 0;
    await scheduler.schedulePass();
    expect(txns).toBe(1); // 30 before
    const listed = (await store.list<Node>(Keys.collection("nodes"))).items;
    expect(listed.map((kv) => kv.value.status?.allocated?.cpuMillis)).toEqual(Array(30).fill(0));
  });

  test("a Node change of its allocation alone queues no pass; a change of its labels does", async () => {
    const key = Keys.object("nodes", undefined, "a");
    await store.create(key, node("a", { allocated: { cpuMillis: 0, memoryBytes: 0, pids: 0 } }));
    await Promise.all([nodes.start(), instances.start()]);
    scheduler = new SchedulerController(store, nodes, instances, logger, 1);
    let passes = 0;
    const pass = scheduler.schedulePass.bind(scheduler);
    scheduler.schedulePass = () => (passes++, pass());
    const write = async (n: Node) => {
      const r = await store.txn([], [{ type: "put", key, value: n }]);
      await nodes.waitFor("a", r.revision);
      await new Promise((r) => setImmediate(r));
      await scheduler!.idle();
    };
    await write(node("a", { allocated: { cpuMillis: 100, memoryBytes: 0, pids: 0 }, lastHeartbeatTime: "x" }));
    expect(passes).toBe(0); // a pass per such write before
    const relabelled = node("a", { allocated: { cpuMillis: 100, memoryBytes: 0, pids: 0 } });
    await write({ ...relabelled, metadata: { ...relabelled.metadata, labels: { zone: "b" } } });
    expect(passes).toBe(1);
  });
});
