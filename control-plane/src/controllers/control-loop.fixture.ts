// A test fixture: a MemoryStore with the Node and Instance informers, the scheduler loop and node
// registration over it, as grove-server wires them (host-port-holds.test.ts, registration.test.ts).
import { pino } from "pino";
import type { Instance, Node } from "@grove/api";
import { NodeRegistration } from "../nodes/registration";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Informer } from "./informer";
import { SchedulerController } from "./scheduler-controller";

export const silentLogger = pino({ level: "silent" });

export interface ControlLoop {
  store: MemoryStore;
  repo: Repository;
  nodes: Informer<Node>;
  instances: Informer<Instance>;
  scheduler: SchedulerController;
  registration: NodeRegistration;
  stop(): Promise<void>;
}

/** Started over a new store, after `seed` wrote what the informers should list first. */
export async function controlLoop(seed?: (store: MemoryStore) => Promise<unknown>): Promise<ControlLoop> {
  const store = new MemoryStore();
  const repo = new Repository(store);
  const nodes = new Informer<Node>(store, Keys.collection("nodes"), silentLogger);
  const instances = new Informer<Instance>(store, Keys.collection("instances"), silentLogger);
  if (seed) await seed(store);
  await Promise.all([nodes.start(), instances.start()]);
  const scheduler = new SchedulerController(store, nodes, instances, silentLogger);
  const registration = new NodeRegistration(store, repo, instances, silentLogger);
  return {
    store,
    repo,
    nodes,
    instances,
    scheduler,
    registration,
    stop: async () => {
      scheduler.stop();
      await Promise.all([nodes.stop(), instances.stop()]);
      await store.close();
    },
  };
}
