// The App controller creates an App's missing instances in batches: one
// transaction per CREATE_BATCH_MAX instances (so the scheduler finds them
// pending together), each guarded by the leader fence: a replica that
// stopped leading creates none.
import { pino } from "pino";
import type { App, Instance, Node } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { FencedStore, type LeaderFence } from "../store/fenced-store";
import { Keys, type Store, type TxnCompare, type TxnOp } from "../store/store";
import { Repository } from "../resources/repository";
import { Informer } from "./informer";
import { AppController } from "./app-controller";
import { CREATE_BATCH_MAX } from "./app-writes";

const logger = pino({ level: "silent" });

const app = (instances: number): App => ({
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name: "web", namespace: "default" },
  spec: { rootfs: "busybox", command: ["sleep", "1000"], instances, resources: { cpu: "100m", memory: "64Mi" } },
});

async function cluster(store: MemoryStore, controllerStore: Store = store) {
  const apps = new Informer<App>(store, Keys.collection("apps"), logger);
  const instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
  const nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
  await Promise.all([apps.start(), instances.start(), nodes.start()]);
  const controller = new AppController(new Repository(controllerStore), apps, instances, nodes, logger);
  return {
    controller,
    settle: async () => {
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 5));
        await controller.idle();
      }
    },
    stop: async () => {
      controller.stop();
      await Promise.all([apps.stop(), instances.stop(), nodes.stop()]);
    },
  };
}

/** Counts the transactions that create instances. */
function countCreates(store: MemoryStore): { txns: number; instances: number } {
  const seen = { txns: 0, instances: 0 };
  const txn = store.txn.bind(store);
  store.txn = (async (c: TxnCompare[], o: TxnOp<unknown>[]) => {
    const r = await txn(c, o);
    const creates = o.filter((op) => op.type === "put" && op.key.startsWith(Keys.collection("instances"))).length;
    if (r.succeeded && creates > 0) {
      seen.txns++;
      seen.instances += creates;
    }
    return r;
  }) as typeof store.txn;
  return seen;
}

test("an App's missing instances are created in a few transactions, not one each", async () => {
  const store = new MemoryStore();
  const c = await cluster(store);
  const seen = countCreates(store);
  const want = 2 * CREATE_BATCH_MAX + 50;
  await new Repository(store).create(app(want));
  await c.settle();
  const items = (await new Repository(store).list("Instance")).items;
  expect(items.map((i) => i.metadata.name).sort()).toEqual(Array.from({ length: want }, (_, k) => `web-${k}`).sort());
  for (const i of items) {
    expect(i.metadata.generation).toBe(1);
    expect(i.status?.reason).toBe("Unscheduled");
  }
  expect(seen).toEqual({ txns: 3, instances: want });

  // Scaled up later: only the new indexes, again together.
  const cur = await new Repository(store).get("App", "default", "web");
  await new Repository(store).update({ ...cur, spec: { ...cur.spec, instances: want + 20 } });
  await c.settle();
  expect(seen).toEqual({ txns: 4, instances: want + 20 });
  await c.stop();
  await store.close();
});

test("a replica fenced out of leadership creates no instance", async () => {
  const store = new MemoryStore();
  const leader = "election/grove-controllers/1";
  const epoch = await store.create(leader, "replica-a");
  const fence: LeaderFence = { key: leader, epoch, holds: () => true };
  // Another replica leads by now; this one has not noticed (its local check still says it holds).
  await store.delete(leader);
  await store.create(leader, "replica-b");
  let rejected!: () => void;
  const fencedOut = new Promise<void>((res) => (rejected = res));
  const c = await cluster(store, new FencedStore(store, fence, () => rejected()));
  await new Repository(store).create(app(150));
  // etcd (here the memory store) refused the batch: the sync failed and is retried with backoff.
  await fencedOut;
  expect((await new Repository(store).list("Instance")).items).toEqual([]);
  await c.stop();
  await store.close();
});
