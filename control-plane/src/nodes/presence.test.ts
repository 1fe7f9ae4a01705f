// Presence written on change (nodes/presence.ts) as the leader's fallback
// judges it: nodes stay Ready on their replica's beat alone, go Unknown when
// that replica stops beating, and a long-gone replica's key is forgotten.
// In-memory store, injected monotonic clock.
import { pino } from "pino";
import { readyStatus, type Node } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Repository } from "../resources/repository";
import { Informer } from "../controllers/informer";
import { NodeLifecycleController, REPLICA_BEAT_FORGET_MS } from "../controllers/node-lifecycle";
import { movedAway, replicaPresenceKey, writeReplicaBeat } from "./presence";
import type { Instance } from "@grove/api";

const logger = pino({ level: "silent" });

function node(name: string): Node {
  return {
    apiVersion: "grove/v1",
    kind: "Node",
    metadata: { name },
    spec: {},
    status: {
      allocatable: { cpuMillis: 4000, memoryBytes: 2 ** 30, pids: 1000 },
      conditions: [{ type: "Ready", status: "True", reason: "AgentConnected" }],
    },
  };
}

let store: MemoryStore;
let repo: Repository;
let nodes: Informer<Node>;
let instances: Informer<Instance>;
let lc: NodeLifecycleController;
let now = 0;
const tick = () => new Promise((r) => setTimeout(r, 5));

beforeEach(async () => {
  now = 1_000_000;
  store = new MemoryStore();
  repo = new Repository(store);
  nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
  instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
  await Promise.all([nodes.start(), instances.start()]);
  lc = new NodeLifecycleController(store, nodes, instances, logger, { presenceStaleMs: 15_000, clock: () => now });
});
afterEach(async () => {
  lc.stop();
  await Promise.all([nodes.stop(), instances.stop()]);
  await store.close();
});

describe("presence written on change, one beat per replica", () => {
  it("keeps nodes Ready on their replica's beat alone, one write for all, and loses them when it stops", async () => {
    await repo.create(node("n1"));
    await repo.create(node("n2"));
    await repo.create(node("n3"));
    // Written once, at registration: n1 and n2 are held by replica r1, n3 by r2.
    for (const [n, replica] of [
      ["n1", "r1"],
      ["n2", "r1"],
      ["n3", "r2"],
    ] as const) {
      await store.txn([], [{ type: "put", key: Keys.heartbeat(n), value: { time: "x", server: "s", replica } }]);
    }
    const beat = (replica: string) => writeReplicaBeat(store, replica, { time: new Date().toISOString(), streams: 2 });
    await beat("r1");
    await beat("r2");
    await tick();
    await lc.checkPresence();
    for (let s = 1; s <= 40; s++) {
      now += 1_000;
      if (s % 5 === 0) await beat("r1"); // r1 lives on; r2 died after its first beat
      await lc.checkPresence();
      if (s === 15) expect(readyStatus(await repo.get("Node", undefined, "n3"))).toBe("True");
    }
    expect(readyStatus(await repo.get("Node", undefined, "n1"))).toBe("True");
    expect(readyStatus(await repo.get("Node", undefined, "n2"))).toBe("True");
    expect(readyStatus(await repo.get("Node", undefined, "n3"))).toBe("Unknown");
    expect((await repo.get("Node", undefined, "n3")).status?.conditions?.[0]).toMatchObject({
      reason: "NodePresenceLost",
    });
    expect(await store.get(Keys.heartbeat("n3"))).toBeUndefined();
    expect(await store.get(Keys.heartbeat("n1"))).toBeDefined();
    // The dead replica's own key is forgotten once it has stood still for long.
    expect(await store.get(replicaPresenceKey("r2"))).toBeDefined();
    for (let t = 0; t <= REPLICA_BEAT_FORGET_MS; t += 1_000) {
      now += 1_000;
      if (t % 5_000 === 0) await beat("r1");
      await lc.checkPresence();
    }
    expect(await store.get(replicaPresenceKey("r2"))).toBeUndefined();
    expect(await store.get(replicaPresenceKey("r1"))).toBeDefined();
  });
});

describe("movedAway", () => {
  it("names the streams whose presence key moved, but not those registered after the read", () => {
    const held = {
      revisions: new Map([
        ["a", "5"],
        ["b", "9"],
      ]),
      revision: "10",
    };
    const streams = [
      { node: "a", presenceRev: "5" }, // still ours
      { node: "b", presenceRev: "6" }, // another replica took it at 9
      { node: "c", presenceRev: "7" }, // given up (deleted)
      { node: "d", presenceRev: "11" }, // registered after the read
    ];
    expect(movedAway(streams, held).map((s) => s.node)).toEqual(["b", "c"]);
  });
});
