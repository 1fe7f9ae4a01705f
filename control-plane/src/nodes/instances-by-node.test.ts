// InstancesByNode follows the informer: bind, move, record elsewhere, delete.
import { pino } from "pino";
import type { Instance } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Repository } from "../resources/repository";
import { Informer } from "../controllers/informer";
import { instanceFixture } from "../grpc/bound-instance.fixture";
import { InstancesByNode } from "./instances-by-node";

const logger = pino({ level: "silent" });

const inst = (name: string, node?: string): Instance =>
  instanceFixture(name, { uid: null, ...(node !== undefined ? { node } : {}) });

const names = (is: Instance[]) => is.map((i) => i.metadata.name).sort();
const settle = () => new Promise((r) => setTimeout(r, 10));

it("indexes instances by their node through every change the informer sees", async () => {
  const store = new MemoryStore();
  const repo = new Repository(store);
  const informer = new Informer<Instance>(store, Keys.collection("instances"), logger);
  await repo.create(inst("a", "n1"));
  await informer.start();
  const index = new InstancesByNode(informer); // made after the first list: starts from the cache
  await repo.create(inst("b", "n1"));
  await repo.create(inst("c"));
  await settle();
  expect(names(index.of("n1"))).toEqual(["a", "b"]);
  expect(index.of("n2")).toEqual([]);

  // Bound to n2, then recorded as having run on n1 while bound to n2: listed under both.
  const c = await repo.get("Instance", "default", "c");
  await repo.update({ ...c, spec: { ...c.spec, nodeName: "n2" } });
  const b = await repo.get("Instance", "default", "b");
  await repo.update({ ...b, spec: { ...b.spec, nodeName: "n2" }, status: { state: "Running", nodeName: "n1" } });
  await settle();
  expect(names(index.of("n1"))).toEqual(["a", "b"]);
  expect(names(index.of("n2"))).toEqual(["b", "c"]);
  expect(index.of("n2").find((i) => i.metadata.name === "b")?.status?.state).toBe("Running");

  await repo.delete("Instance", "default", "a");
  await settle();
  expect(names(index.of("n1"))).toEqual(["b"]);
  await informer.stop();
  await store.close();
});
