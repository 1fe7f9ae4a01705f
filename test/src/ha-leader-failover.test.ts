// Three real grove-server replicas on one real etcd; nodes are simulated
// (Node objects and presence keys written straight into etcd, no agents), so
// the test is about the control plane only. The leader is SIGSTOPped past its
// lease: a standby is elected and places a new App within TTL plus a retry;
// after SIGCONT the old leader stops acting, a write with its fence (its
// election key at its epoch, the compare every controller write carries) is
// rejected by etcd, and no instance was bound twice or left without its App.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance, type Node } from "@grove/api";
import {
  DEFAULT_LEADER_LEASE_TTL_SECONDS,
  EmbeddedEtcd,
  Keys,
  createStore,
  currentLeader,
  type EtcdStore,
} from "@grove/control-plane";
import { startServer, tempDir, waitFor, type ServerProcess } from "./harness/processes";
import { RUN_TAG } from "./harness/run-id";

const GiB = 2 ** 30;
const TTL_MS = DEFAULT_LEADER_LEASE_TTL_SECONDS * 1000;
const NODES = ["a", "b", "c"].map((z) => `grove-${RUN_TAG}-lf-${z}`);

let dir: string;
let etcd: EmbeddedEtcd;
let store: EtcdStore;
const servers: ServerProcess[] = [];
let beat: NodeJS.Timeout | undefined;

function simulatedNode(name: string): Node {
  const now = new Date().toISOString();
  const res = { cpuMillis: 8000, memoryBytes: 16 * GiB, pids: 100000 };
  return {
    apiVersion: "grove/v1",
    kind: "Node",
    metadata: { name, creationTimestamp: now },
    spec: {},
    status: {
      capacity: res,
      allocatable: res,
      conditions: [{ type: "Ready", status: "True", reason: "Simulated", lastTransitionTime: now }],
    },
  };
}

const heartbeats = () =>
  store.txn(
    [],
    NODES.map((n) => ({ type: "put" as const, key: Keys.heartbeat(n), value: { time: new Date().toISOString() } })),
  );

function app(name: string, instances: number): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sleep", "3600"],
      instances,
      resources: { cpu: "50m", memory: "32Mi", pids: 16 },
    },
  } as App;
}

async function instances(): Promise<Instance[]> {
  return (await store.list<Instance>(Keys.collection("instances", "default"))).items.map((kv) => kv.value);
}

/** The "elected leader" log line of a replica's latest term: its fence. */
function electedLine(s: ServerProcess): { epoch: string; key: string } | undefined {
  for (let i = s.output.length - 1; i >= 0; i--) {
    const line = s.output[i]!;
    if (!line.includes("elected leader")) continue;
    const j = JSON.parse(line) as { epoch?: string; key?: string };
    if (j.epoch && j.key) return { epoch: j.epoch, key: j.key };
  }
  return undefined;
}

beforeAll(async () => {
  dir = tempDir("grove-it-lf");
  etcd = new EmbeddedEtcd({ dataDir: path.join(dir, "etcd"), port: 0, stopTimeoutMs: 5000 });
  await etcd.start();
  store = createStore(etcd.endpoints);
  await store.txn(
    [],
    NODES.map((n) => ({ type: "put" as const, key: Keys.object("nodes", undefined, n), value: simulatedNode(n) })),
  );
  await heartbeats();
  beat = setInterval(() => void heartbeats().catch(() => undefined), 1000);
  for (const n of ["s1", "s2", "s3"]) {
    fs.mkdirSync(path.join(dir, n));
    servers.push(await startServer({ dataDir: path.join(dir, n), etcdEndpoints: etcd.endpoints }));
  }
}, 180_000);

afterAll(async () => {
  if (beat) clearInterval(beat);
  for (const s of servers) {
    try {
      process.kill(s.pid, "SIGCONT");
    } catch {
      /* gone */
    }
    await s.stop();
  }
  await store?.close();
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 90_000);

test("leader SIGSTOPped: a standby places a new App within TTL + a retry; the old leader's writes are fenced", async () => {
  const leaderPid = async () =>
    Number((await waitFor("a leader", () => currentLeader(etcd.endpoints))).split(":").pop());
  const pid = await leaderPid();
  const leader = servers.find((s) => s.pid === pid)!;
  expect(leader).toBeDefined();
  const standby = servers.find((s) => s !== leader)!;
  const client = new GroveClient({ server: standby.url, token: standby.adminToken });
  await client.apply(app("lf-before", 3));
  await waitFor("lf-before bound", async () => {
    const xs = (await instances()).filter((i) => i.spec.app === "lf-before");
    return xs.length === 3 && xs.every((i) => i.spec.nodeName);
  });
  const fence = electedLine(leader);
  expect(fence).toBeDefined();

  // Every binding seen, per uid: a uid bound to two nodes would be a double binding.
  const boundTo = new Map<string, string>();
  let doubleBound = 0;
  const watchBindings = setInterval(() => {
    void instances().then((xs) => {
      for (const i of xs) {
        const was = boundTo.get(i.metadata.uid!);
        if (i.spec.nodeName && was && was !== i.spec.nodeName) doubleBound++;
        if (i.spec.nodeName) boundTo.set(i.metadata.uid!, i.spec.nodeName);
      }
    });
  }, 250);

  try {
    const stoppedAt = performance.now();
    process.kill(leader.pid, "SIGSTOP");
    await client.apply(app("lf-after", 3));
    await waitFor(
      "lf-after placed by the new leader",
      async () => {
        const xs = (await instances()).filter((i) => i.spec.app === "lf-after");
        return xs.length === 3 && xs.every((i) => i.spec.nodeName);
      },
      TTL_MS + 15_000,
    );
    const placedMs = performance.now() - stoppedAt;
    const newLeader = await leaderPid();
    expect(newLeader).not.toBe(leader.pid);
    // TTL, the standby's watch, one App controller and one scheduler pass (and a loaded machine).
    expect(placedMs).toBeLessThan(TTL_MS + 10_000);
    process.stdout.write(`leader SIGSTOP to the new leader's first placement: ${(placedMs / 1000).toFixed(2)} s\n`);

    await new Promise((r) => setTimeout(r, 2000));
    process.kill(leader.pid, "SIGCONT");
    await waitFor(
      "the old leader to stop its controllers",
      async () => leader.output.some((l) => l.includes("lost leadership")),
      15_000,
    );
    // The probe: a write carrying the old leader's fence, as its controllers' writes do, is rejected by etcd.
    const probe = await store.txn(
      [{ key: fence!.key, createRevision: fence!.epoch }],
      [{ type: "put", key: "/grove-it/old-leader-write", value: 1 }],
    );
    expect(probe.succeeded).toBe(false);
    expect(await store.get("/grove-it/old-leader-write")).toBeUndefined();
    // The leader record names the new epoch.
    const rec = await store.get<{ epoch: string }>("/grove/leader");
    expect(BigInt(rec!.value.epoch)).toBeGreaterThan(BigInt(fence!.epoch));

    // Settled: each index of each App has one instance, each bound once, none without its App.
    await new Promise((r) => setTimeout(r, 3000));
    const xs = await instances();
    for (const a of ["lf-before", "lf-after"]) {
      const mine = xs.filter((i) => i.spec.app === a);
      expect(mine.map((i) => i.spec.index).sort()).toEqual([0, 1, 2]);
      expect(mine.every((i) => i.spec.nodeName)).toBe(true);
    }
    expect(xs.filter((i) => !["lf-before", "lf-after"].includes(i.spec.app ?? ""))).toEqual([]);
    expect(doubleBound).toBe(0);
  } finally {
    clearInterval(watchBindings);
    process.kill(leader.pid, "SIGCONT");
  }
}, 120_000);
