// The scheduler loop assumes its own committed bindings (scheduling/assumed.ts):
// the pass after a commit plans on them before any watch event shows them,
// and the guards it then writes with are the revisions etcd gave them.
import { pino } from "pino";
import { newInstance, type App, type Instance, type Node } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys, type StoreEvent, type Watch, type WatchHandlers } from "../store/store";
import { Informer } from "./informer";
import { SchedulerController } from "./scheduler-controller";

const logger = pino({ level: process.env.TEST_LOG ?? "silent" });
const GiB = 2 ** 30;

/** A MemoryStore whose watch events wait, in order, while their prefix is held (a watch that is behind). */
class HeldWatchStore extends MemoryStore {
  private readonly held = new Map<string, Array<() => void>>();
  txns = 0;
  override async watch<T>(prefix: string, from: string, handlers: WatchHandlers<T>): Promise<Watch> {
    return super.watch<T>(prefix, from, {
      ...handlers,
      onEvent: (ev: StoreEvent<T>) => {
        const queue = this.held.get(prefix);
        if (queue) queue.push(() => handlers.onEvent(ev));
        else handlers.onEvent(ev);
      },
    });
  }
  override txn(...args: Parameters<MemoryStore["txn"]>): ReturnType<MemoryStore["txn"]> {
    this.txns++;
    return super.txn(...args);
  }
  hold(...prefixes: string[]): void {
    for (const p of prefixes) if (!this.held.has(p)) this.held.set(p, []);
  }
  release(...prefixes: string[]): void {
    for (const p of prefixes.length ? prefixes : [...this.held.keys()]) {
      const queue = this.held.get(p) ?? [];
      this.held.delete(p);
      for (const deliver of queue) deliver();
    }
  }
}

const NODES = Keys.collection("nodes");
const INSTANCES = Keys.collection("instances");

const node = (name: string, cpu: number): Node => ({
  apiVersion: "grove/v1",
  kind: "Node",
  metadata: { name },
  spec: {},
  status: {
    allocatable: { cpuMillis: cpu, memoryBytes: 8 * GiB, pids: 100000 },
    conditions: [{ type: "Ready", status: "True" }],
  },
});
const app = (instances: number): App => ({
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name: "web", namespace: "default", uid: "uid-web" },
  spec: { rootfs: "busybox", command: ["sleep", "1"], instances, resources: { cpu: "1000m", memory: "256Mi" } },
});

describe("scheduler loop: assumed bindings", () => {
  let store: HeldWatchStore;
  let nodes: Informer<Node>;
  let instances: Informer<Instance>;
  let scheduler: SchedulerController | undefined;

  beforeEach(async () => {
    store = new HeldWatchStore();
    nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
  });
  afterEach(async () => {
    scheduler?.stop();
    store.release();
    await Promise.all([nodes.stop(), instances.stop()]);
    await store.close();
  });

  /** Writes as another writer would; the revision it got. */
  async function put(key: string, value: unknown): Promise<string> {
    const r = await store.txn([], [{ type: "put", key, value }]);
    expect(r.succeeded).toBe(true);
    return r.revision;
  }

  test("the pass after a commit sees its bindings before any watch event, and writes nothing again", async () => {
    await put(Keys.object("nodes", undefined, "a"), node("a", 2000));
    for (let i = 0; i < 2; i++)
      await put(Keys.object("instances", "default", `web-${i}`), newInstance(app(2), i, 0, 0));
    await Promise.all([nodes.start(), instances.start()]);
    scheduler = new SchedulerController(store, nodes, instances, logger, 1);

    store.hold(NODES, INSTANCES); // the watches show nothing of what the passes write
    const started = performance.now();
    await scheduler.schedulePass();
    const written = store.txns;
    expect(written).toBeGreaterThan(0);
    // The informers still show both instances unbound.
    expect(instances.list().filter((i) => i.spec.nodeName)).toHaveLength(0);
    // The next pass has nothing to place and nothing to correct: no write at
    // all (without the assumptions it would bind both again, and fail its guards).
    await scheduler.schedulePass();
    expect(store.txns).toBe(written);
    // Neither pass waited for the watches (waitFor would have given up after 5 s).
    expect(performance.now() - started).toBeLessThan(4000);

    store.release();
    await instances.waitFor("default/web-1", store.revision.toString());
    expect(instances.list().map((i) => i.spec.nodeName)).toEqual(["a", "a"]);
    await scheduler.schedulePass();
    expect(store.txns).toBe(written);
  });

  test("the guards name the revisions etcd gave the assumed writes: another writer's change still fails them", async () => {
    const nodeKey = Keys.object("nodes", undefined, "a");
    await put(nodeKey, node("a", 2000));
    await put(Keys.object("instances", "default", "web-0"), newInstance(app(2), 0, 0, 0));
    await Promise.all([nodes.start(), instances.start()]);
    scheduler = new SchedulerController(store, nodes, instances, logger, 1);

    store.hold(NODES, INSTANCES);
    await scheduler.schedulePass(); // web-0 on a: 1000m of 2000m, node a written at the pass's revision
    // Another writer shrinks node a to what is bound on it; then web-1 comes.
    const a = (await store.get<Node>(nodeKey))!.value;
    expect(a.status?.allocated?.cpuMillis).toBe(1000);
    const shrunk = await put(nodeKey, {
      ...a,
      status: { ...a.status, allocatable: { ...a.status!.allocatable!, cpuMillis: 1000 } },
    });
    const created = await put(Keys.object("instances", "default", "web-1"), newInstance(app(2), 1, 0, 0));
    // The instances' watch catches up; the nodes' is still behind (two watches).
    store.release(INSTANCES);
    await instances.waitFor("default/web-1", created);
    const before = store.txns;
    // The pass plans web-1 on a (its assumed node has room) and the guard on
    // a's assumed revision fails: no double booking.
    await scheduler.schedulePass();
    expect(store.txns).toBeGreaterThan(before);
    expect(
      (await store.get<Instance>(Keys.object("instances", "default", "web-1")))!.value.spec.nodeName,
    ).toBeUndefined();
    // Once the nodes' watch shows the change, web-1 has nowhere to go.
    store.release(NODES);
    await nodes.waitFor("a", shrunk);
    await scheduler.schedulePass();
    const web1 = (await store.get<Instance>(Keys.object("instances", "default", "web-1")))!.value;
    expect(web1.spec.nodeName).toBeUndefined();
    expect(web1.status?.reason).toBe("Unschedulable");
  });

  test("instances created in one transaction are placed in one pass, not the first alone", async () => {
    await put(Keys.object("nodes", undefined, "a"), node("a", 64000));
    await Promise.all([nodes.start(), instances.start()]);
    scheduler = new SchedulerController(store, nodes, instances, logger, 1);
    await scheduler.idle();
    // As the App controller creates them: one transaction, one watch response of 30 events.
    await store.txn(
      [],
      Array.from({ length: 30 }, (_, i) => ({
        type: "put" as const,
        key: Keys.object("instances", "default", `web-${i}`),
        value: newInstance(app(30), i, 0, 0),
      })),
    );
    const before = store.txns;
    await scheduler.idle();
    await instances.waitFor("default/web-29", store.revision.toString());
    expect(instances.list().filter((i) => i.spec.nodeName === "a")).toHaveLength(30);
    expect(store.txns - before).toBe(1); // one pass, one commit
  });
});
