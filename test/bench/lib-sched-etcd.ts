// The scheduler loop on a real etcd without grove-server around it (the "raw
// path" beside the end-to-end figure, lib-sched-e2e.ts): an embedded etcd on
// 127.0.0.1, the nodes written as Node objects (no agents, no presence:
// nothing here marks them NotReady), instances written unbound straight into
// etcd, and the control plane's SchedulerController binding them in chunked,
// revision-guarded transactions, watched through its own informers. No HTTP
// API, no App controller, no agents.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Logger } from "pino";
import type { Instance, Node, Resources } from "@grove/api";
import { EmbeddedEtcd, Informer, Keys, SchedulerController, createStore } from "@grove/control-plane";
import { checkCapacity, type CapacityCheck } from "./lib-sched-check";

export interface RawOptions {
  nodes: number;
  init: number;
  measured: number;
  node: Resources;
  pod: Resources;
}

function nodeObject(i: number, res: Resources): Node {
  const now = new Date().toISOString();
  return {
    apiVersion: "grove/v1",
    kind: "Node",
    metadata: { name: `node-${i}`, creationTimestamp: now },
    spec: {},
    status: {
      capacity: { ...res },
      allocatable: { ...res },
      allocated: { cpuMillis: 0, memoryBytes: 0, pids: 0 },
      conditions: [
        { type: "Ready", status: "True", reason: "AgentReady", message: "simulated", lastTransitionTime: now },
      ],
    },
  };
}

function instanceObject(i: number, res: Resources): Instance {
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: {
      name: `pod-${String(i).padStart(6, "0")}`,
      namespace: "bench",
      uid: `uid-${i}`,
      creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, i)).toISOString(),
    },
    spec: {
      app: "bench",
      appUid: "bench-uid",
      index: i,
      rootfs: "busybox",
      command: ["/bin/true"],
      resources: { ...res },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 1,
      restarts: 0,
    },
    status: { state: "Pending" },
  };
}

export async function throughEtcd(o: RawOptions): Promise<{ perSecond: number; check: CapacityCheck }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `grove-bench-sched-${process.pid}-`));
  const etcd = new EmbeddedEtcd({ dataDir: dir, port: 0, stopTimeoutMs: 5000 });
  await etcd.start();
  const store = createStore(etcd.endpoints, {});
  // Quiet: lost races are expected and retried (the loop logs each at warn).
  const quiet = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, fatal() {} };
  const logger = { ...quiet, child: () => logger } as unknown as Logger;
  const nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
  const instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
  let scheduler: SchedulerController | undefined;
  try {
    const write = async (objs: Array<{ key: string; value: unknown }>) => {
      const batches: Array<Array<{ key: string; value: unknown }>> = [];
      for (let i = 0; i < objs.length; i += 100) batches.push(objs.slice(i, i + 100));
      for (let i = 0; i < batches.length; i += 8) {
        await Promise.all(
          batches.slice(i, i + 8).map(async (b) => {
            const r = await store.txn(
              [],
              b.map((o) => ({ type: "put" as const, key: o.key, value: o.value })),
            );
            if (!r.succeeded) throw new Error("bench write failed");
          }),
        );
      }
    };
    const inst = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, k) => {
        const obj = instanceObject(from + k, o.pod);
        return { key: Keys.object("instances", "bench", obj.metadata.name), value: obj };
      });
    await write(
      Array.from({ length: o.nodes }, (_, i) => ({
        key: Keys.object("nodes", undefined, `node-${i}`),
        value: nodeObject(i, o.node),
      })),
    );
    await write(inst(0, o.init));
    await Promise.all([nodes.start(), instances.start()]);
    scheduler = new SchedulerController(store, nodes, instances, logger, 1);
    const bound = () => instances.list().filter((i) => i.spec.nodeName).length;
    const waitBound = async (n: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (bound() < n) {
        if (Date.now() > deadline) throw new Error(`only ${bound()} of ${n} instances bound in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    scheduler.trigger();
    await waitBound(o.init, 120_000);
    const t0 = process.hrtime.bigint();
    await write(inst(o.init, o.init + o.measured));
    await waitBound(o.init + o.measured, 300_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;

    // Verify on what etcd sent the informers (one list of 11 000 instances is
    // over the etcd client's 4 MiB message limit): every resource of every node.
    const capacity = new Map(nodes.list().map((n) => [n.metadata.name, n.status?.allocatable ?? {}]));
    const check = checkCapacity(
      capacity,
      instances
        .list()
        .filter((i) => i.spec.nodeName)
        .map((i) => ({ node: i.spec.nodeName!, resources: i.spec.resources })),
    );
    return { perSecond: o.measured / secs, check };
  } finally {
    scheduler?.stop();
    await Promise.all([nodes.stop(), instances.stop()]);
    await store.close();
    await etcd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
