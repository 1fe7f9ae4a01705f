// A node that registers for the first time is created with nothing allocated, so the scheduler
// has no second write to make to it (one Node write and one scheduler pass per joining node,
// not two: 5,000 hollow nodes joining at once). A name that already has instances bound to it
// (its Node was deleted while they stayed) is created without an allocation, and the
// scheduler's pass records theirs.
import { pino } from "pino";
import { newInstance, type App, type Instance, type Node } from "@grove/api";
import { Informer } from "../controllers/informer";
import { SchedulerController } from "../controllers/scheduler-controller";
import { Repository } from "../resources/repository";
import { zeroResources } from "../scheduler";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { NodeRegistration, type NodeRegistrationInfo } from "./registration";

const logger = pino({ level: "silent" });
const res = { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30, pids: 4096 };
const info = (name: string): NodeRegistrationInfo => ({
  name,
  labels: {},
  capacity: res,
  allocatable: res,
  addresses: ["192.168.7.1"],
  agentVersion: "t",
  kernel: "",
  cgroupMode: "v2",
});
const app: App = {
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name: "web", namespace: "default", uid: "uid-web" },
  spec: { rootfs: "busybox", command: ["httpd"], instances: 1, resources: { cpu: "250m", memory: "64Mi" } },
};

describe("registering a new node", () => {
  let store: MemoryStore;
  let repo: Repository;
  let nodes: Informer<Node>;
  let instances: Informer<Instance>;
  let scheduler: SchedulerController;
  let registration: NodeRegistration;

  beforeEach(async () => {
    store = new MemoryStore();
    repo = new Repository(store);
    nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
    await Promise.all([nodes.start(), instances.start()]);
    scheduler = new SchedulerController(store, nodes, instances, logger);
    registration = new NodeRegistration(store, repo, instances, logger);
  });
  afterEach(async () => {
    scheduler.stop();
    await Promise.all([nodes.stop(), instances.stop()]);
    await store.close();
  });

  /** The stored Node and its revision, once the informers show what the store holds, after a pass. */
  async function afterPass(name: string): Promise<{ node: Node; rev: string }> {
    const key = Keys.object("nodes", undefined, name);
    for (let i = 0; i < 200; i++) {
      const want = (await store.list<Instance>(Keys.collection("instances"))).items.length;
      if (
        nodes.get(name)?.metadata.resourceVersion === (await store.get(key))?.modRevision &&
        instances.list().length === want
      )
        break;
      await new Promise((r) => setTimeout(r, 5));
    }
    scheduler.trigger();
    await scheduler.idle();
    const kv = (await store.get<Node>(key))!;
    return { node: kv.value, rev: kv.modRevision };
  }

  it("is created with nothing allocated, and the scheduler's pass writes nothing to it", async () => {
    await registration.register(info("fresh"), []);
    const created = (await store.get<Node>(Keys.object("nodes", undefined, "fresh")))!;
    expect(created.value.status?.allocated).toEqual(zeroResources());
    const after = await afterPass("fresh");
    expect(after.rev).toBe(created.modRevision);
  });

  it("with an instance already bound to its name: created without an allocation, which the pass records", async () => {
    const bound = newInstance(app, 0, 0, 0);
    bound.spec = { ...bound.spec, nodeName: "back" };
    bound.status = { state: "Running", nodeName: "back" };
    await repo.create(bound);
    for (let i = 0; i < 200 && instances.list().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await registration.register(info("back"), []);
    const created = (await store.get<Node>(Keys.object("nodes", undefined, "back")))!;
    expect(created.value.status?.allocated).toBeUndefined();
    const after = await afterPass("back");
    expect(after.rev).not.toBe(created.modRevision);
    expect(after.node.status?.allocated).toMatchObject({ cpuMillis: 250, memoryBytes: 64 * 2 ** 20 });
  });
});
