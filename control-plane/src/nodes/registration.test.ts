// A node that registers for the first time is created with nothing allocated, so the scheduler
// has no second write to make to it (one Node write and one scheduler pass per joining node,
// not two: 5,000 hollow nodes joining at once). A name that already has instances bound to it
// (its Node was deleted while they stayed) is created without an allocation, and the
// scheduler's pass records theirs.
import { newInstance, type App, type Instance, type Node } from "@grove/api";
import { controlLoop, type ControlLoop } from "../controllers/control-loop.fixture";
import { zeroResources } from "../scheduler";
import { Keys } from "../store/store";
import type { NodeRegistrationInfo } from "./registration";

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
  let t: ControlLoop;
  beforeEach(async () => (t = await controlLoop()));
  afterEach(() => t.stop());

  /** The stored Node and its revision, once the informers show what the store holds, after a pass. */
  async function afterPass(name: string): Promise<{ node: Node; rev: string }> {
    const key = Keys.object("nodes", undefined, name);
    for (let i = 0; i < 200; i++) {
      const want = (await t.store.list<Instance>(Keys.collection("instances"))).items.length;
      if (
        t.nodes.get(name)?.metadata.resourceVersion === (await t.store.get(key))?.modRevision &&
        t.instances.list().length === want
      )
        break;
      await new Promise((r) => setTimeout(r, 5));
    }
    t.scheduler.trigger();
    await t.scheduler.idle();
    const kv = (await t.store.get<Node>(key))!;
    return { node: kv.value, rev: kv.modRevision };
  }

  it("is created with nothing allocated, and the scheduler's pass writes nothing to it", async () => {
    await t.registration.register(info("fresh"), []);
    const created = (await t.store.get<Node>(Keys.object("nodes", undefined, "fresh")))!;
    expect(created.value.status?.allocated).toEqual(zeroResources());
    const after = await afterPass("fresh");
    expect(after.rev).toBe(created.modRevision);
  });

  it("with an instance already bound to its name: created without an allocation, which the pass records", async () => {
    const bound = newInstance(app, 0, 0, 0);
    bound.spec = { ...bound.spec, nodeName: "back" };
    bound.status = { state: "Running", nodeName: "back" };
    await t.repo.create(bound);
    for (let i = 0; i < 200 && t.instances.list().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await t.registration.register(info("back"), []);
    const created = (await t.store.get<Node>(Keys.object("nodes", undefined, "back")))!;
    expect(created.value.status?.allocated).toBeUndefined();
    const after = await afterPass("back");
    expect(after.rev).not.toBe(created.modRevision);
    expect(after.node.status?.allocated).toMatchObject({ cpuMillis: 250, memoryBytes: 64 * 2 ** 20 });
  });
});
