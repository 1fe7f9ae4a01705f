// A new leader's first pass: Apps with work waiting before settled ones.
import { pino } from "pino";
import { newInstance, type App, type Instance, type Node } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Repository } from "../resources/repository";
import { AppController } from "./app-controller";
import { Informer } from "./informer";
import { firstPassOrder, hasWorkWaiting } from "./resync-order";

function app(name: string, instances = 1, generation = 1, observed: number | undefined = generation): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default", uid: `uid-${name}`, generation },
    spec: {
      rootfs: "busybox",
      command: ["sleep", "1000"],
      instances,
      resources: { cpu: "10m", memory: "16Mi", pids: 16 },
      restartPolicy: "Always",
    },
    ...(observed !== undefined ? { status: { observedGeneration: observed } } : {}),
  } as App;
}

function inst(a: App, index: number, state: NonNullable<Instance["status"]>["state"] = "Running"): Instance {
  const i = newInstance(a, index, 0, 0);
  i.status = { state };
  return i;
}

describe("hasWorkWaiting", () => {
  it("is false for an App whose every index has a live instance and whose spec was seen", () => {
    const a = app("web", 2);
    expect(hasWorkWaiting(a, [inst(a, 0), inst(a, 1, "Pending")])).toBe(false);
  });
  it("is true for an App created while no leader ran (no instance, no status)", () => {
    expect(hasWorkWaiting(app("new", 1, 1, undefined), [])).toBe(true);
  });
  it("is true when an index is missing, Unknown or ended under a restart policy that restarts it", () => {
    const a = app("web", 2);
    expect(hasWorkWaiting(a, [inst(a, 0)])).toBe(true);
    expect(hasWorkWaiting(a, [inst(a, 0), inst(a, 1, "Unknown")])).toBe(true);
    expect(hasWorkWaiting(a, [inst(a, 0), inst(a, 1, "Failed")])).toBe(true);
  });
  it("is false for an index that ended for good (restartPolicy Never)", () => {
    const a = app("job", 1);
    a.spec.restartPolicy = "Never";
    expect(hasWorkWaiting(a, [inst(a, 0, "Exited")])).toBe(false);
  });
  it("is true when the spec changed since the last status, or instances are to be deleted", () => {
    const changed = app("web", 1, 2, 1);
    expect(hasWorkWaiting(changed, [inst(changed, 0)])).toBe(true);
    const scaledDown = app("web", 1);
    expect(hasWorkWaiting(scaledDown, [inst(scaledDown, 0), inst(scaledDown, 1)])).toBe(true);
    const earlier = inst(app("web", 1), 0);
    earlier.spec.appUid = "uid-of-an-earlier-web";
    expect(hasWorkWaiting(app("web", 1), [inst(app("web", 1), 0), earlier])).toBe(true);
  });
});

describe("firstPassOrder", () => {
  it("puts the Apps with work waiting first, each group in the given order, and leaves none out", () => {
    const settled = Array.from({ length: 60 }, (_, k) => app(`bg-${k}`));
    const fresh = app("trial", 1, 1, undefined); // created during the failover: last in the informer
    const scaled = app("bg-7", 2);
    const apps = [...settled.slice(0, 7), scaled, ...settled.slice(8), fresh];
    const instances = [...settled.map((a) => inst(a, 0)), inst(scaled, 0)];
    const order = firstPassOrder(apps, instances);
    expect(order.slice(0, 2)).toEqual(["default/bg-7", "default/trial"]);
    expect([...order].sort()).toEqual(apps.map((a) => `default/${a.metadata.name}`).sort());
    expect(order.slice(2)).toEqual(
      apps.filter((a) => a !== scaled && a !== fresh).map((a) => `default/${a.metadata.name}`),
    );
  });
  it("does not count a Task's attempts as an App's instances", () => {
    const a = app("batch", 1);
    const attempt = inst(a, 0);
    attempt.spec.task = "batch";
    expect(firstPassOrder([app("other"), a], [inst(app("other"), 0), attempt])).toEqual([
      "default/batch",
      "default/other",
    ]);
  });
});

describe("AppController.resyncAll (a new leader's first pass)", () => {
  it("syncs the App created while no leader ran before the settled ones", async () => {
    const logger = pino({ level: "silent" });
    const store = new MemoryStore();
    const repo = new Repository(store);
    const apps = new Informer<App>(store, Keys.collection("apps"), logger);
    const instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
    const nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    await Promise.all([apps.start(), instances.start(), nodes.start()]);
    const controllers: AppController[] = [];
    const lead = () => {
      const c = new AppController(repo, apps, instances, nodes, logger);
      controllers.push(c);
      return c;
    };
    try {
      // The former leader made every App's instance and wrote its status.
      const former = lead();
      for (let k = 0; k < 10; k++) await repo.create(app(`a${k}`, 1, 1, undefined));
      former.resyncAll();
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 5));
        await former.idle();
      }
      expect(instances.list()).toHaveLength(10);
      former.stop();
      // No leader: an App is created, last in every order but this one.
      await repo.create(app("late", 1, 1, undefined));
      await new Promise((r) => setTimeout(r, 20)); // the informer's event
      expect(apps.list().at(-1)?.metadata.name).toBe("late");

      const next = lead();
      const synced: string[] = [];
      const sync = next.sync.bind(next);
      jest.spyOn(next, "sync").mockImplementation((key) => {
        synced.push(key);
        return sync(key);
      });
      next.resyncAll();
      expect(synced[0]).toBe("default/late");
      await next.idle();
      // Every App is still synced (some again, after the events of their own writes).
      expect([...new Set(synced)].sort()).toEqual(
        apps
          .list()
          .map((a) => `default/${a.metadata.name}`)
          .sort(),
      );
    } finally {
      for (const c of controllers) c.stop();
      await Promise.all([apps.stop(), instances.stop(), nodes.stop()]);
      await store.close();
    }
  });
});
