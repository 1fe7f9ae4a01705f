// The Task controller over the in-memory store, next to the App controller:
// attempts are created one after the other as the previous one ends, the
// status follows them, a Task and an App of the same name leave each other's
// instances alone, and deleting the Task deletes its attempts.
import { pino } from "pino";
import type { App, Instance, InstanceStatus, Node, Task } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Repository } from "../resources/repository";
import { Informer } from "./informer";
import { AppController } from "./app-controller";
import { TaskController } from "./task-controller";

const logger = pino({ level: "silent" });

describe("TaskController", () => {
  let store: MemoryStore;
  let repo: Repository;
  let apps: Informer<App>;
  let instances: Informer<Instance>;
  let nodes: Informer<Node>;
  let tasks: Informer<Task>;
  let appController: AppController;
  let controller: TaskController;
  /** The controllers' monotonic clock, moved by the tests. */
  let monotonicMs: number;

  beforeEach(async () => {
    monotonicMs = 0;
    store = new MemoryStore();
    repo = new Repository(store);
    apps = new Informer<App>(store, Keys.collection("apps"), logger);
    instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
    nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    tasks = new Informer<Task>(store, Keys.collection("tasks"), logger);
    await Promise.all([apps.start(), instances.start(), nodes.start(), tasks.start()]);
    await repo.create({
      apiVersion: "grove/v1",
      kind: "Node",
      metadata: { name: "n1" },
      spec: {},
      status: { conditions: [{ type: "Ready", status: "True" }] },
    });
    appController = new AppController(repo, apps, instances, nodes, logger);
    controller = new TaskController(repo, tasks, instances, apps, nodes, logger, {
      now: () => Date.now(),
      monotonic: () => monotonicMs,
    });
  });
  afterEach(async () => {
    controller.stop();
    appController.stop();
    await Promise.all([apps.stop(), instances.stop(), nodes.stop(), tasks.stop()]);
    await store.close();
  });

  const settle = async () => {
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 5));
      await controller.idle();
      await appController.idle();
    }
  };

  const attempts = async () =>
    (await repo.list("Instance")).items.filter((i) => i.spec.task === "job").map((i) => i.metadata.name);

  /** What an agent's report does to an attempt: bound to n1 and in `status`. */
  async function report(name: string, status: InstanceStatus): Promise<void> {
    const inst = await repo.get("Instance", "default", name);
    await repo.update({ ...inst, spec: { ...inst.spec, nodeName: "n1" }, status: { nodeName: "n1", ...status } });
    await settle();
  }

  const failed = (exitCode: number): InstanceStatus => ({ state: "Failed", reason: "Error", exitCode });

  it("runs attempts until one succeeds, then is Succeeded with its attempts counted", async () => {
    await repo.create({
      apiVersion: "grove/v1",
      kind: "Task",
      metadata: { name: "job", namespace: "default" },
      spec: { rootfs: "busybox", command: ["/bin/sh", "-c", "exit 0"], retries: 3 },
    });
    await settle();
    expect(await attempts()).toEqual(["job-t1"]);
    await report("job-t1", { state: "Running" });
    expect((await repo.get("Task", "default", "job")).status).toMatchObject({ phase: "Running", attempts: 1 });
    await report("job-t1", failed(1));
    // The backoff (1 s on the monotonic clock) holds the next attempt.
    expect(await attempts()).toEqual(["job-t1"]);
    expect((await repo.get("Task", "default", "job")).status).toMatchObject({ phase: "Pending", reason: "Backoff" });
    monotonicMs += 1000;
    await new Promise((r) => setTimeout(r, 1100));
    await settle();
    expect((await attempts()).sort()).toEqual(["job-t1", "job-t2"]);
    await report("job-t2", { state: "Exited", reason: "Completed", exitCode: 0 });
    expect((await repo.get("Task", "default", "job")).status).toMatchObject({
      phase: "Succeeded",
      attempts: 2,
      exitCode: 0,
      reason: "Completed",
    });
    // Nothing more starts, and the attempts stay (their logs stay on the node until the TTL).
    await settle();
    expect((await attempts()).sort()).toEqual(["job-t1", "job-t2"]);

    await repo.delete("Task", "default", "job");
    await settle();
    expect(await attempts()).toEqual([]);
  }, 20_000);

  it("a Task and an App of the same name leave each other's instances alone", async () => {
    await repo.create({
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "job", namespace: "default" },
      spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 1 },
    });
    await repo.create({
      apiVersion: "grove/v1",
      kind: "Task",
      metadata: { name: "job", namespace: "default" },
      spec: { rootfs: "busybox", command: ["true"] },
    });
    await settle();
    const names = (await repo.list("Instance")).items.map((i) => i.metadata.name).sort();
    expect(names).toEqual(["job-0", "job-t1"]);
    const app = await repo.get("App", "default", "job");
    expect(app.status).toMatchObject({ instances: 1 });
    await repo.delete("App", "default", "job");
    await settle();
    expect((await repo.list("Instance")).items.map((i) => i.metadata.name)).toEqual(["job-t1"]);
  }, 20_000);
});
