// The App controller's revisions, automatic rollback, canary and pause over
// the in-memory store, with the scheduler and agents played by the test:
// revisions are recorded (not for a resize in place) and deleted with the
// App; a crashed new instance or a deadline rolls the App back with the reason
// in its status; the deadline survives a new controller (a new leader); a
// canary waits for promotion; a paused rollout takes no step.
import { pino } from "pino";
import { ROLLOUT_LABEL, type App, type Instance, type Node } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Repository } from "../resources/repository";
import { Informer } from "./informer";
import { AppController } from "./app-controller";
import { RevisionKeys } from "./revisions";

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

describe("AppController: revisions, rollback, canary, pause", () => {
  let store: MemoryStore;
  let repo: Repository;
  let apps: Informer<App>;
  let instances: Informer<Instance>;
  let nodes: Informer<Node>;
  let controller: AppController;
  let mono = 0;
  let wall = 1_000_000;

  const newController = () =>
    new AppController(repo, apps, instances, nodes, logger, { now: () => wall, monotonic: () => mono });

  beforeEach(async () => {
    mono = 0;
    wall = 1_000_000;
    store = new MemoryStore();
    repo = new Repository(store);
    apps = new Informer<App>(store, Keys.collection("apps"), logger);
    instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
    nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    await Promise.all([apps.start(), instances.start(), nodes.start()]);
    controller = newController();
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
  const live = async () => (await list()).filter((i) => !["Exited", "Failed"].includes(i.status?.state ?? ""));
  const getApp = () => repo.get("App", "default", "web");
  const progressing = async () => (await getApp()).status?.conditions?.find((c) => c.type === "Progressing");
  const revisions = async () =>
    (await store.list<{ revision: number }>(RevisionKeys.all)).items.map((kv) => kv.value.revision);

  /** Binds every Pending instance to n1 as Running, ready or not (what the scheduler and agent would do). */
  async function runPending(ready = true): Promise<void> {
    for (const i of await list()) {
      if (i.status?.state !== "Pending") continue;
      await repo.update({
        ...i,
        spec: { ...i.spec, nodeName: "n1" },
        status: { state: "Running", reason: "Running", nodeName: "n1", pid: 1, ready },
      });
    }
    await settle();
  }
  async function changeApp(spec: Partial<App["spec"]>): Promise<void> {
    const cur = await getApp();
    await repo.update({ ...cur, spec: { ...cur.spec, ...spec } });
    await settle();
  }
  async function deployed(spec: Partial<App["spec"]> = {}): Promise<void> {
    await repo.create(app(spec));
    await settle();
    await runPending();
    expect((await progressing())?.reason).toBe("Complete");
  }

  it("records a revision per template, not for a resize in place, and deletes them with the App", async () => {
    await deployed();
    expect(await revisions()).toEqual([1]);
    await changeApp({ resources: { memory: "256Mi" } }); // resized in place: no new revision
    expect(await revisions()).toEqual([1]);
    expect((await getApp()).status?.rollout?.revision).toBe(1);
    await changeApp({ command: ["sleep", "2000"] });
    expect(await revisions()).toEqual([1, 2]);
    expect((await getApp()).status?.rollout).toMatchObject({ revision: 2, from: 1 });
    await repo.delete("App", "default", "web");
    await settle();
    expect(await revisions()).toEqual([]);
  });

  it("rolls back at once when a new instance crashes, saying which and how", async () => {
    await deployed();
    await changeApp({ command: ["sleep", "2000"] });
    const surge = (await live()).find((i) => i.metadata.labels?.[ROLLOUT_LABEL] !== undefined)!;
    await repo.update({ ...surge, status: { state: "Failed", reason: "Error", exitCode: 3, nodeName: "n1" } });
    await settle();
    const a = await getApp();
    expect(a.spec.command).toEqual(["sleep", "1000"]);
    expect(await progressing()).toMatchObject({
      status: "False",
      reason: "RolledBack",
      message: `rolled back from revision 2 to revision 1: instance ${surge.metadata.name} exited with code 3`,
    });
    expect(a.status?.rollout?.rolledBack).toMatchObject({ from: 2, to: 1, reason: "InstanceFailed" });
    // The old instances run on; nothing of revision 2 is left running.
    expect((await live()).map((i) => i.spec.command[1])).toEqual(["1000", "1000"]);
  });

  it("rolls back at the progress deadline when new instances never become ready, even under a new leader", async () => {
    await deployed({ update: { progressDeadlineSeconds: 30 } });
    await changeApp({ command: ["sleep", "2000"] });
    await runPending(false); // running, never ready
    mono += 20_000;
    wall += 20_000;
    controller.resyncAll();
    await settle();
    expect((await progressing())?.reason).toBe("Updating");

    // The leader changes: a new controller with its own monotonic clock starting at 0.
    controller.stop();
    mono = 0;
    controller = newController();
    controller.resyncAll();
    await settle();
    expect((await progressing())?.reason).toBe("Updating"); // 20 s of 30 s spent
    mono += 10_500; // the new leader's own clock: the remaining 10 s
    wall += 10_500;
    controller.resyncAll();
    await settle();
    const c = await progressing();
    expect(c).toMatchObject({ status: "False", reason: "RolledBack" });
    expect(c?.message).toMatch(
      /^rolled back from revision 2 to revision 1: instance web-0-[0-9a-f]{5} never became ready/,
    );
    expect((await getApp()).spec.command).toEqual(["sleep", "1000"]);
  });

  it("a canary replaces `canary` instances and waits; promote lets it finish", async () => {
    await deployed({ instances: 3, update: { canary: 1 } });
    await changeApp({ command: ["sleep", "2000"] });
    await runPending();
    await runPending();
    expect((await live()).map((i) => i.spec.command[1]).sort()).toEqual(["1000", "1000", "2000"]);
    expect((await progressing())?.reason).toBe("CanaryPaused");
    mono += 3_600_000; // waiting for promotion is not a lack of progress
    controller.resyncAll();
    await settle();
    expect((await progressing())?.reason).toBe("CanaryPaused");

    // What POST .../rollout/promote writes (rollout-routes.ts): promoted, and a fresh deadline.
    await repo.updateStatus("App", await getApp(), (a) => {
      a.status!.rollout!.promoted = true;
      a.status!.rollout!.progressedAt = new Date(wall).toISOString();
    });
    await settle();
    for (let i = 0; i < 3; i++) await runPending();
    expect((await live()).map((i) => i.spec.command[1])).toEqual(["2000", "2000", "2000"]);
    expect((await progressing())?.reason).toBe("Complete");
  });

  it("a paused rollout takes no step until resumed", async () => {
    await deployed({ update: { paused: true } });
    await changeApp({ command: ["sleep", "2000"] });
    expect((await live()).length).toBe(2);
    expect((await progressing())?.reason).toBe("Paused");
    await changeApp({ update: {} });
    expect((await live()).length).toBe(3); // a surge started
  });
});
