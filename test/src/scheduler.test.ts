// The scheduler on a live control plane: two grove-servers on one real etcd
// (only the elected leader schedules; the standby takes over when the leader
// stops), spread across zones, preemption, and the dry runs `grove apply
// --plan` and `grove get capacity`. Nodes are simulated agents: Node objects
// and heartbeats written straight into etcd, no containers. Each test starts
// on an empty cluster (afterEach deletes every App and waits for the
// instances to go), so each runs alone (-t) or in any order (--randomize).
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type Instance, type Node } from "@grove/api";
import { EmbeddedEtcd, Keys, createStore, currentLeader, type EtcdStore } from "@grove/control-plane";
import { REPO_ROOT, runCli, startServer, tempDir, waitFor, type ServerProcess } from "./harness/processes";
import { RUN_TAG } from "./harness/run-id";

const GiB = 2 ** 30;
const PID = RUN_TAG;
const ZONES = ["a", "b", "c"];
const nodeName = (z: string) => `grove-${PID}-sim-${z}`;

let dir: string;
let etcd: EmbeddedEtcd;
let store: EtcdStore;
let servers: ServerProcess[] = [];
let beat: NodeJS.Timeout | undefined;

function simulatedNode(zone: string): Node {
  const now = new Date().toISOString();
  const res = { cpuMillis: 4000, memoryBytes: 8 * GiB, pids: 100000 };
  return {
    apiVersion: "grove/v1",
    kind: "Node",
    metadata: { name: nodeName(zone), labels: { zone }, creationTimestamp: now },
    spec: {},
    status: {
      capacity: res,
      allocatable: res,
      conditions: [{ type: "Ready", status: "True", reason: "Simulated", lastTransitionTime: now }],
    },
  };
}

async function heartbeats(): Promise<void> {
  const time = new Date().toISOString();
  await store.txn(
    [],
    ZONES.map((z) => ({ type: "put" as const, key: Keys.heartbeat(nodeName(z)), value: { time } })),
  );
}

function envFor(s: ServerProcess): NodeJS.ProcessEnv {
  return { GROVE_SERVER: s.url, GROVE_TOKEN: s.adminToken, HOME: dir, GROVE_CONFIG: "" };
}

async function instancesOf(app: string): Promise<Instance[]> {
  const list = await store.list<Instance>(Keys.collection("instances", "default"));
  return list.items.map((kv) => kv.value).filter((i) => i.spec.app === app);
}

function manifest(name: string, body: string): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(
    file,
    `apiVersion: grove/v1\nkind: App\nmetadata: { name: ${name} }\nspec:\n  rootfs: busybox\n  command: ["/bin/sleep", "3600"]\n${body}`,
  );
  return file;
}

async function leaderPid(): Promise<number> {
  const id = await waitFor("a leader", () => currentLeader(etcd.endpoints), 30_000);
  return Number(id.split(":").pop());
}

beforeAll(async () => {
  dir = tempDir(`grove-it-${PID}-sched`);
  etcd = new EmbeddedEtcd({ dataDir: path.join(dir, "etcd"), port: 0, stopTimeoutMs: 5000 });
  await etcd.start();
  store = createStore(etcd.endpoints, {});
  await store.txn(
    [],
    ZONES.map((z) => ({
      type: "put" as const,
      key: Keys.object("nodes", undefined, nodeName(z)),
      value: simulatedNode(z),
    })),
  );
  await heartbeats();
  beat = setInterval(() => void heartbeats().catch(() => undefined), 2000);
  for (const n of ["s1", "s2"]) {
    fs.mkdirSync(path.join(dir, n));
    servers.push(await startServer({ dataDir: path.join(dir, n), etcdEndpoints: etcd.endpoints }));
  }
}, 120_000);

afterAll(async () => {
  if (beat) clearInterval(beat);
  for (const s of servers) await s.stop();
  await store?.close();
  await etcd?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** Applies an App from a manifest body and waits until its `n` instances are bound. */
async function applyBound(s: ServerProcess, name: string, body: string, n: number): Promise<Instance[]> {
  expect((await runCli(["apply", "-f", manifest(name, body)], envFor(s))).code).toBe(0);
  return waitFor(
    `${n} ${name} instances bound`,
    async () => {
      const xs = await instancesOf(name);
      return xs.length === n && xs.every((i) => i.spec.nodeName) && xs;
    },
    60_000,
  );
}

afterEach(async () => {
  const s = servers[0]!;
  const client = new GroveClient({ server: s.url, token: s.adminToken });
  for (const app of (await client.list("App", { namespace: "default" })).items) {
    await client.delete("App", app.metadata.name, "default");
  }
  await waitFor(
    "every instance to be deleted with its App",
    async () => (await store.list(Keys.collection("instances"))).items.length === 0,
    60_000,
  );
}, 90_000);

test("the leader spreads an App over zones; a standby takes over when the leader stops", async () => {
  const pid = await leaderPid();
  const leader = servers.find((s) => s.pid === pid)!;
  const standby = servers.find((s) => s.pid !== pid)!;
  expect(leader).toBeDefined();
  expect(standby).toBeDefined();

  const file = manifest(
    "spread",
    "  instances: 6\n  resources: { cpu: 100m, memory: 64Mi, pids: 16 }\n" +
      "  placement: { spread: { topologyKey: zone, maxSkew: 1 } }\n",
  );
  const applied = await runCli(["apply", "-f", file], envFor(standby)); // any server accepts writes
  expect(applied.stderr).toBe("");
  expect(applied.code).toBe(0);
  const bound = await waitFor(
    "6 spread instances bound",
    async () => {
      const xs = await instancesOf("spread");
      return xs.length === 6 && xs.every((i) => i.spec.nodeName) && xs;
    },
    60_000,
  );
  const perNode = new Map<string, number>();
  for (const i of bound) perNode.set(i.spec.nodeName!, (perNode.get(i.spec.nodeName!) ?? 0) + 1);
  expect([...perNode.entries()].sort()).toEqual(ZONES.map((z) => [nodeName(z), 2]));
  expect(bound[0]!.spec.placement).toEqual({ spread: { topologyKey: "zone", maxSkew: 1 } });
  expect(bound[0]!.status?.explain?.chosen).toBe(bound[0]!.spec.nodeName);

  // The leader resigns on a clean stop; the standby is elected and schedules.
  await leader.stop();
  servers = servers.filter((s) => s !== leader);
  await waitFor("the standby to lead", async () => (await leaderPid()) === standby.pid, 30_000);
  const later = manifest("later", "  instances: 2\n  resources: { cpu: 100m, memory: 64Mi, pids: 16 }\n");
  expect((await runCli(["apply", "-f", later], envFor(standby))).code).toBe(0);
  await waitFor(
    "the standby to place new instances",
    async () => {
      const xs = await instancesOf("later");
      return xs.length === 2 && xs.every((i) => i.spec.nodeName);
    },
    60_000,
  );
}, 180_000);

test("grove get capacity counts what fits; grove apply --plan places without writing", async () => {
  const s = servers[0]!;
  // 8 instances x 100m, spread 3/3/2 over the zones.
  const spread = "  placement: { spread: { topologyKey: zone, maxSkew: 1 } }\n";
  await applyBound(s, "used", `  instances: 8\n  resources: { cpu: 100m, memory: 64Mi, pids: 16 }\n${spread}`, 8);
  const cap = await runCli(["get", "capacity", "--shape", "cpu=1,memory=1Gi"], envFor(s));
  expect(cap.code).toBe(0);
  for (const z of ZONES) expect(cap.stdout).toContain(nodeName(z));
  expect(cap.stdout).toMatch(/more instance\(s\) of cpu=1,memory=1(\.0)? ?Gi fit now/);
  const json = JSON.parse(
    (await runCli(["get", "capacity", "--shape", "cpu=1,memory=1Gi", "-o", "json"], envFor(s))).stdout,
  ) as {
    fits: number;
    cluster: { free: { cpuMillis: number } };
  };
  // 3 nodes x 4 cpu, 8 instances x 100m bound: 11.2 cpu free, 3 per node fit by cpu.
  expect(json.cluster.free.cpuMillis).toBe(12000 - 800);
  expect(json.fits).toBe(9);

  const bad = await runCli(["get", "capacity", "--shape", "gpu=1"], envFor(s));
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('unknown resource "gpu"');

  const big = manifest("big", "  instances: 4\n  resources: { cpu: 3, memory: 1Gi, pids: 16 }\n");
  const plan = await runCli(["apply", "--plan", "-f", big], envFor(s));
  expect(plan.code).toBe(1);
  expect(plan.stdout).toContain("1 instance(s) would stay Pending.");
  expect(plan.stdout).toMatch(/default\/big-3 +create +<pending> +cpu: insufficient on 3 of 3 nodes/);
  expect(plan.stderr).toContain("plan: 1 instance(s) would stay Pending");
  const small = manifest("small", "  instances: 2\n  resources: { cpu: 1, memory: 1Gi, pids: 16 }\n");
  const ok = await runCli(["apply", "--plan", "-f", small], envFor(s));
  expect(ok.code).toBe(0);
  expect(ok.stdout).toContain("Everything fits.");
  expect(ok.stdout).toMatch(/Utilization: cpu 6\.7% -> 23\.3%/);
  // Nothing was written.
  expect(await instancesOf("big")).toEqual([]);
  expect((await runCli(["get", "app", "big"], envFor(s))).code).toBe(1);
}, 120_000);

test("a higher-priority App preempts a lower-priority instance; the victim ends Preempted", async () => {
  const s = servers[0]!;
  const low = manifest("low", "  instances: 3\n  resources: { cpu: 3500m, memory: 1Gi, pids: 16 }\n");
  expect((await runCli(["apply", "-f", low], envFor(s))).code).toBe(0);
  await waitFor(
    "3 low instances bound",
    async () => (await instancesOf("low")).filter((i) => i.spec.nodeName).length === 3,
    60_000,
  );
  // Every write to the instances from here on, so the victim's short-lived
  // Failed/Preempted state is seen even when its replacement follows at once.
  const history: Instance[] = [];
  const from = String(
    BigInt((await store.listPage(Keys.collection("instances", "default"), { limit: 1 })).revision) + 1n,
  );
  const watch = await store.watch<Instance>(Keys.collection("instances", "default"), from, {
    onEvent: (e) => {
      if (e.type === "put") history.push(e.value);
    },
  });
  try {
    const high = manifest("high", "  instances: 1\n  priority: 100\n  resources: { cpu: 1, memory: 1Gi, pids: 16 }\n");
    expect((await runCli(["apply", "-f", high], envFor(s))).code).toBe(0);
    const h = await waitFor(
      "the high-priority instance bound",
      async () => (await instancesOf("high")).find((i) => i.spec.nodeName),
      60_000,
    );
    expect(h.status?.explain?.victims).toHaveLength(1);
    const victim = h.status!.explain!.victims![0]!.split("/")[1]!;
    // The victim ended Failed/Preempted on the high instance's node (before
    // any replacement of it); its App controller then replaces it (after its
    // restart backoff), and the replacement, priority 0, fits nowhere and
    // preempts nobody.
    await waitFor(
      "the victim to be recorded Failed/Preempted on the high instance's node",
      async () =>
        history.some(
          (i) =>
            i.metadata.name === victim &&
            i.status?.state === "Failed" &&
            i.status.reason === "Preempted" &&
            i.spec.nodeName === h.spec.nodeName &&
            (i.spec.restarts ?? 0) === 0,
        ),
      30_000,
    );
    const replaced = await waitFor(
      "the victim replaced and Unschedulable",
      async () =>
        (await instancesOf("low")).find(
          (i) => i.metadata.name === victim && i.spec.restarts === 1 && i.status?.reason === "Unschedulable",
        ),
      60_000,
    );
    expect(replaced.spec.nodeName).toBeUndefined();
    expect((await instancesOf("high"))[0]!.spec.nodeName).toBe(h.spec.nodeName);
  } finally {
    await watch.close();
  }
}, 120_000);

test("grove-sim --from-cluster replays the live cluster's instances under every profile", async () => {
  const s = servers[0]!;
  await applyBound(s, "replayed", "  instances: 4\n  resources: { cpu: 500m, memory: 256Mi, pids: 16 }\n", 4);
  const count = async () =>
    (await store.list<Instance>(Keys.collection("instances"))).items.filter(
      (kv) => !["Exited", "Failed", "OOMKilled"].includes(kv.value.status?.state ?? "Pending"),
    ).length;
  // Wait for a settled count (nothing still being created or replaced).
  const live = await waitFor("a settled cluster", async () => {
    const a = await count();
    await new Promise((r) => setTimeout(r, 1000));
    return a === (await count()) && a;
  });
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [path.join(REPO_ROOT, "sim", "bin", "grove-sim.js"), "--from-cluster", "--seeds", "2", "-o", "json"],
      { env: { ...process.env, ...envFor(s) }, timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
  const report = JSON.parse(out) as {
    instances: number;
    nodes: number;
    policies: Array<{ profile: string; placed: number; nodesUsed: number; lb1: number }>;
  };
  expect(report.instances).toBe(live);
  expect(report.nodes).toBe(3);
  const def = report.policies.find((p) => p.profile === "default")!;
  expect(def.nodesUsed).toBeGreaterThanOrEqual(def.lb1);
  expect(report.policies.length).toBeGreaterThan(5);
}, 120_000);
