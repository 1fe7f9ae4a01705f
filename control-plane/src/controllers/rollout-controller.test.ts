// The App controller carrying out a rolling update over the in-memory store:
// surges first, stops an old instance only once its surge is available
// (minReadySeconds on the controller's monotonic clock), reports progress in
// the App's status, and stops at the progress deadline.
import { pino } from "pino";
import { ROLLOUT_LABEL, type App, type Instance, type Node } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Repository } from "../resources/repository";
import { Informer } from "./informer";
import { AppController } from "./app-controller";

const logger = pino({ level: "silent" });

const node: Node = {
  apiVersion: "grove/v1",
  kind: "Node",
  metadata: { name: "n1" },
  spec: {},
  status: {
    allocatable: { cpuMillis: 4000, memoryBytes: 2 ** 30, pids: 1000 },
    conditions: [{ type: "Ready", status: "True" }],
  },
};

function app(spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "web", namespace: "default" },
    spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 2, ...spec },
  };
}

describe("AppController: rolling update", () => {
  let store: MemoryStore;
  let repo: Repository;
  let apps: Informer<App>;
  let instances: Informer<Instance>;
  let nodes: Informer<Node>;
  let controller: AppController;
  let mono = 0;

  beforeEach(async () => {
    mono = 0;
    store = new MemoryStore();
    repo = new Repository(store);
    apps = new Informer<App>(store, Keys.collection("apps"), logger);
    instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
    nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    await Promise.all([apps.start(), instances.start(), nodes.start()]);
    controller = new AppController(repo, apps, instances, nodes, logger, {
      now: () => Date.now(),
      monotonic: () => mono,
    });
    await repo.create(node);
  });
  afterEach(async () => {
    controller.stop();
    await Promise.all([apps.stop(), instances.stop(), nodes.stop()]);
    await store.close();
  });

  const settle = async () => {
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 5));
      await controller.idle();
    }
  };
  const list = async () => (await repo.list("Instance")).items;
  const live = async () => (await list()).filter((i) => i.status?.state !== "Exited");

  /** Binds every Pending instance to n1 as Running (what the scheduler and agent would do). */
  async function runPending(): Promise<void> {
    for (const i of await list()) {
      if (i.status?.state !== "Pending") continue;
      await repo.update({
        ...i,
        spec: { ...i.spec, nodeName: "n1" },
        status: { state: "Running", reason: "Running", nodeName: "n1", pid: 1 },
      });
    }
    await settle();
  }

  async function changeApp(spec: Partial<App["spec"]>): Promise<void> {
    const cur = await repo.get("App", "default", "web");
    await repo.update({ ...cur, spec: { ...cur.spec, ...spec } });
    await settle();
  }

  const progressing = async () =>
    (await repo.get("App", "default", "web")).status?.conditions?.find((c) => c.type === "Progressing");

  it("starts a new instance next to the old one and stops the old one once the new one runs", async () => {
    await repo.create(app());
    await settle();
    await runPending();
    expect((await progressing())?.reason).toBe("Complete");
    const [old0, old1] = (await list()).sort((a, b) => a.spec.index - b.spec.index);

    await changeApp({ command: ["sleep", "2000"] });
    let items = await live();
    // One surge (maxSurge 1), the old ones untouched.
    expect(items).toHaveLength(3);
    const surge = items.find((i) => i.metadata.labels?.[ROLLOUT_LABEL] !== undefined)!;
    expect(surge.spec.command).toEqual(["sleep", "2000"]);
    expect(surge.status?.state).toBe("Pending");
    expect(items.filter((i) => i.status?.state === "Running").map((i) => i.metadata.uid)).toEqual(
      expect.arrayContaining([old0!.metadata.uid, old1!.metadata.uid]),
    );
    expect(await progressing()).toMatchObject({ status: "True", reason: "Updating" });

    await runPending(); // the surge runs: its old one stops, the next surge starts
    items = await list();
    const stopped = items.find((i) => i.metadata.uid === (surge.spec.index === 0 ? old0 : old1)!.metadata.uid)!;
    expect(stopped.status).toMatchObject({ state: "Exited", reason: "RolledOut" });
    expect((await live()).length).toBe(3);

    await runPending();
    items = await live();
    expect(items).toHaveLength(2);
    expect(items.every((i) => i.spec.command[1] === "2000" && i.status?.state === "Running")).toBe(true);
    const a = await repo.get("App", "default", "web");
    expect(a.status).toMatchObject({ updated: 2, available: 2, ready: 2 });
    expect(a.status?.conditions?.[0]).toMatchObject({ type: "Progressing", status: "True", reason: "Complete" });
    // The status is written only when it changes: another sync writes nothing.
    controller.resyncAll();
    await settle();
    expect((await repo.get("App", "default", "web")).metadata.resourceVersion).toBe(a.metadata.resourceVersion);
  });

  it("waits minReadySeconds (monotonic) before a new instance counts as available", async () => {
    await repo.create(app({ instances: 1, update: { minReadySeconds: 5 } }));
    await settle();
    await runPending();
    await changeApp({ command: ["sleep", "2000"] });
    await runPending();
    expect((await live()).length).toBe(2); // the surge runs but is not yet available
    mono += 5_000;
    controller.resyncAll();
    await settle();
    expect((await live()).map((i) => i.spec.command[1])).toEqual(["2000"]);
  });

  it("stops at the progress deadline with Progressing False, ProgressDeadlineExceeded", async () => {
    await repo.create(app({ update: { progressDeadlineSeconds: 10, autoRollback: false } }));
    await settle();
    await runPending();
    await changeApp({ command: ["sleep", "2000"] });
    expect((await live()).length).toBe(3);
    mono += 11_000; // the surge never runs
    controller.resyncAll();
    await settle();
    expect(await progressing()).toMatchObject({ status: "False", reason: "ProgressDeadlineExceeded" });
    await runPending(); // it runs after all: the rollout stays stopped, the old ones keep running
    expect((await live()).length).toBe(3);
  });

  it("Recreate replaces every outdated instance at once", async () => {
    await repo.create(app({ update: { strategy: "Recreate" } }));
    await settle();
    await runPending();
    await changeApp({ command: ["sleep", "2000"] });
    const items = await live();
    expect(items).toHaveLength(2);
    expect(items.every((i) => i.status?.state === "Pending" && i.spec.command[1] === "2000")).toBe(true);
  });
});
