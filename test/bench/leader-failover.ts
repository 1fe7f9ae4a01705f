// The HA benchmark of issue 14, every figure from one run on one cluster:
// a TLS etcd (client certificates), three grove-server replicas (HTTPS, one
// cluster CA), three harness hosts (network namespaces, real agents, real
// containers) whose agents know every replica, Apps created throughout
// through the replicas that run.
//
// 1. Leader failover (GROVE_BENCH_LEADER_TRIALS, default 5): SIGSTOP the
//    leader, create an App through another replica, time until its instance
//    is bound (seen on a watch of the instances: the new leader's first
//    committed placement); SIGCONT, and a write carrying the old leader's
//    fence (its election key at its epoch: the compare every controller
//    write carries) is tried in etcd. Each trial also records where the time
//    went (wall clock, every process on this machine): stop -> the trial's
//    App written (it is there before the election unless the API was slow)
//    -> the old key gone (lease expiry, etcd's expiry tick; seen by this
//    process's own election observer, which can lag the new leader's log
//    line under load: a negative or missing lease_gone_to_elected) -> new
//    leader's "elected" log line -> the App controller's instance created
//    (the sync's start: its first pass, resync-order.ts) -> scheduler's
//    binding -> the benchmark seeing it.
// 2. Agent failover (GROVE_BENCH_AGENT_FAILOVER_TRIALS, default 5): kill -9
//    the replica holding the most agents' streams, time until all of them
//    registered with another replica (killReplicaAndTimeAgents), restart it.
//
// - leader_failover_s (p50), leader_failover_p99_s, leader_failover_max_s;
// - agent_failover_s (the worst trial), agent_failover_p50_s;
// - double_bound: a uid bound to two nodes, or two live instances of one App
//   index (must be 0); unfenced_writes_accepted (must be 0);
// - nodes_not_ready: nodes seen leaving Ready during the agent trials (must be 0).
// Target: both failovers at most 5 s.
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { GroveClient, TERMINAL_STATES, type App, type Instance } from "@grove/api";
import { Keys, createStore, currentLeader, observeLeader } from "@grove/control-plane";
import { HostCluster } from "../src/harness/hosts";
import { EtcdCluster, freePort, type EtcdClientFiles } from "../src/harness/etcd-cluster";
import { isReady, startServer, tempDir, waitFor, type ServerProcess } from "../src/harness/processes";
import { sharedCa } from "../src/harness/tls";
import type { BenchReport } from "./run";
import { summarize } from "./lib-stats";
import { killReplicaAndTimeAgents } from "./agent-failover";

const LEADER_TRIALS = Number(process.env.GROVE_BENCH_LEADER_TRIALS ?? 5);
const AGENT_TRIALS = Number(process.env.GROVE_BENCH_AGENT_FAILOVER_TRIALS ?? 5);
const TARGET_S = 5;
const NS = "default";

function app(name: string): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: NS },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", "exec sleep 1000000"],
      instances: 1,
      resources: { cpu: "10m", memory: "16Mi", pids: 16 },
    },
  } as App;
}

/** The fence and wall-clock time of a replica's latest "elected leader" log line. */
function electedOf(s: ServerProcess): { epoch: string; key: string; time: number } | undefined {
  for (let i = s.output.length - 1; i >= 0; i--) {
    if (!s.output[i]!.includes("elected leader")) continue;
    const j = JSON.parse(s.output[i]!) as { epoch?: string; key?: string; time?: number };
    if (j.epoch && j.key) return { epoch: j.epoch, key: j.key, time: j.time ?? 0 };
  }
  return undefined;
}

/** Where one leader failover's time went (ms from the SIGSTOP, wall clock). */
interface Breakdown {
  /** The trial's App written (through a replica that runs): before the election, or the new leader finds it late. */
  appCreated: number;
  keyGone: number;
  elected: number;
  created: number;
  scheduled: number;
  seen: number;
}

const PHASES: Array<[string, (b: Breakdown) => number]> = [
  ["stop_to_app_created", (b) => b.appCreated],
  ["stop_to_lease_gone", (b) => b.keyGone],
  ["lease_gone_to_elected", (b) => b.elected - b.keyGone],
  ["elected_to_instance_created", (b) => b.created - b.elected],
  ["created_to_scheduled", (b) => b.scheduled - b.created],
  ["scheduled_to_seen", (b) => b.seen - b.scheduled],
];

/** The server flags of one replica: the shared CA, the TLS etcd, listening on the hosts' bridge. */
function replicaArgs(ca: { certFile: string; keyFile: string }, etcd: EtcdCluster, http: string): string[] {
  const t = etcd.clientTls!;
  return [
    "--listen",
    http,
    "--etcd-endpoints",
    etcd.endpoints.join(","),
    "--etcd-cafile",
    t.caFile,
    "--etcd-certfile",
    t.certFile,
    "--etcd-keyfile",
    t.keyFile,
    "--ca-cert",
    ca.certFile,
    "--ca-key",
    ca.keyFile,
  ];
}

function hostPort(url: string): string {
  return new URL(url).host;
}

export async function run(): Promise<BenchReport> {
  const dir = tempDir("grove-bench-lf");
  const etcd = await EtcdCluster.start(path.join(dir, "etcd"), 1, { tls: true }).catch((err: unknown) => {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const tls: EtcdClientFiles = etcd.clientTls!;
  const store = createStore(etcd.endpoints, { tls });
  const ca = sharedCa(dir);
  const grpcPorts = [await freePort(), await freePort()];
  const replicas: ServerProcess[] = [];
  let cluster: HostCluster | undefined;
  const failoverMs: number[] = [];
  const breakdowns: Breakdown[] = [];
  const agentS: number[] = [];
  let doubleBound = 0;
  let unfencedAccepted = 0;
  let fencedRejectedLogged = 0;
  const notReady = new Set<string>();
  let background: NodeJS.Timeout | undefined;
  let stopObserving: (() => Promise<void>) | undefined;
  let watching = true;
  let readyWatch: Promise<void> = Promise.resolve();
  const stopped = new Set<number>();
  const watch = await store.watch<Instance>(Keys.collection("instances", NS), "0", {
    onEvent: (ev) => {
      if (ev.type !== "put") return;
      onInstance(ev.value);
    },
  });
  // Bindings as seen from etcd: a uid on two nodes is a double binding; the
  // trial's App bound is the new leader's first committed placement.
  const boundTo = new Map<string, string>();
  const boundSeen = new Map<string, { mono: number; wall: number; inst: Instance }>();
  function onInstance(i: Instance): void {
    if (!i.spec.nodeName) return;
    const was = boundTo.get(i.metadata.uid!);
    if (was && was !== i.spec.nodeName) doubleBound++;
    boundTo.set(i.metadata.uid!, i.spec.nodeName);
    if (!boundSeen.has(i.spec.app!)) boundSeen.set(i.spec.app!, { mono: performance.now(), wall: Date.now(), inst: i });
  }
  try {
    cluster = await HostCluster.start({
      hosts: 3,
      id: `lf${process.pid}`,
      serverArgs: replicaArgs(ca, etcd, "").slice(2), // HostCluster adds --listen on the bridge itself
      moreServers: (gw) => grpcPorts.map((p) => `${gw}:${p}`),
    });
    replicas.push(cluster.server!);
    for (const [k, port] of grpcPorts.entries()) {
      const d = path.join(dir, `r${k + 2}`);
      fs.mkdirSync(d);
      replicas.push(
        await startServer({
          dataDir: d,
          grpcListen: `${cluster.gateway}:${port}`,
          extraArgs: replicaArgs(ca, etcd, `${cluster.gateway}:0`),
        }),
      );
    }
    const clientOf = (s: ServerProcess) => new GroveClient({ server: s.url, token: s.adminToken });
    await cluster.waitAllReady(clientOf(replicas[0]!));
    const live = () => replicas.filter((s) => !stopped.has(s.pid));
    let keyGoneAt: number | undefined;
    let observedLeader: string | undefined;
    stopObserving = await observeLeader(
      etcd.endpoints,
      (id) => {
        if (id !== observedLeader) keyGoneAt = Date.now();
        observedLeader = id;
      },
      { tls },
    );

    // Apps created throughout, through any replica that runs.
    let bg = 0;
    background = setInterval(() => {
      const r = live()[bg % live().length]!;
      void clientOf(r)
        .apply(app(`lf-bg-${bg++}`))
        .catch(() => undefined);
    }, 1000);

    for (let trial = 0; trial < LEADER_TRIALS; trial++) {
      const id = await waitFor("a leader", () => currentLeader(etcd.endpoints, undefined, tls), 30_000);
      const leader = replicas.find((s) => s.pid === Number(id.split(":").pop()))!;
      const fence = await waitFor("the leader's fence", async () => electedOf(leader), 10_000);
      const other = replicas.find((s) => s !== leader)!;
      const name = `lf-trial-${trial}`;
      const t0 = performance.now();
      const wall0 = Date.now();
      keyGoneAt = undefined;
      process.kill(leader.pid, "SIGSTOP");
      stopped.add(leader.pid);
      try {
        await clientOf(other).apply(app(name));
        const seen = await waitFor(`${name} placed by the new leader`, async () => boundSeen.get(name), 60_000);
        failoverMs.push(seen.mono - t0);
        const newLeader = replicas.find((s) => s !== leader && (electedOf(s)?.time ?? 0) >= wall0);
        const trialApp = await store.get<App>(Keys.object("apps", NS, name));
        const b: Breakdown = {
          appCreated: Date.parse(trialApp?.value.metadata.creationTimestamp ?? "") - wall0,
          keyGone: (keyGoneAt ?? NaN) - wall0,
          elected: (newLeader ? electedOf(newLeader)!.time : NaN) - wall0,
          created: Date.parse(seen.inst.metadata.creationTimestamp ?? "") - wall0,
          scheduled: Date.parse(seen.inst.status?.scheduledAt ?? "") - wall0,
          seen: seen.wall - wall0,
        };
        breakdowns.push(b);
        console.error(
          `trial ${trial + 1}/${LEADER_TRIALS}: placed ${((seen.mono - t0) / 1000).toFixed(2)} s after SIGSTOP (` +
            PHASES.map(([n, f]) => `${n} ${(f(b) / 1000).toFixed(2)}`).join(", ") +
            ")",
        );
      } finally {
        process.kill(leader.pid, "SIGCONT");
        stopped.delete(leader.pid);
      }
      await waitFor("the old leader to step down", async () =>
        leader.output.some((l) => l.includes("lost leadership")),
      );
      const probe = await store.txn(
        [{ key: fence.key, createRevision: fence.epoch }],
        [{ type: "put", key: `/grove-bench/old-leader-${trial}`, value: trial }],
      );
      if (probe.succeeded) unfencedAccepted++;
      // The resumed replica campaigns again; let it settle before the next trial.
      await new Promise((r) => setTimeout(r, 3000));
    }
    clearInterval(background);
    background = undefined;

    // Agent failover on the same cluster; Ready is watched throughout through whichever replica answers.
    readyWatch = (async () => {
      while (watching) {
        for (const s of live()) {
          try {
            for (const n of (await clientOf(s).list("Node")).items) if (!isReady(n)) notReady.add(n.metadata.name);
            break;
          } catch {
            // that replica is the one killed: ask the next
          }
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const nodes = cluster.hosts.map((h) => h.name);
    for (let trial = 0; trial < AGENT_TRIALS; trial++) {
      const { seconds, victim } = await killReplicaAndTimeAgents(store, replicas, nodes);
      stopped.add(victim.pid);
      agentS.push(seconds);
      console.error(`agent trial ${trial + 1}/${AGENT_TRIALS}: agents moved ${seconds.toFixed(2)} s after kill -9`);
      // The replica comes back on the same addresses (its agents list them).
      const i = replicas.indexOf(victim);
      replicas[i] = await startServer({
        dataDir: victim.dataDir,
        grpcListen: victim.grpcAddress,
        extraArgs: replicaArgs(ca, etcd, hostPort(victim.url)),
      });
      if (victim === cluster.server) cluster.server = replicas[i];
      await new Promise((r) => setTimeout(r, 4000)); // presence settles before the next kill
    }
    watching = false;
    await readyWatch;

    await new Promise((r) => setTimeout(r, 3000));
    // Two live instances of one App index would be a placement done twice.
    const items = (await store.list<Instance>(Keys.collection("instances", NS))).items.map((kv) => kv.value);
    const live2 = items.filter((i) => !TERMINAL_STATES.includes(i.status?.state ?? "Pending"));
    const perIndex = new Map<string, number>();
    for (const i of live2) {
      const k = `${i.spec.app}/${i.spec.index}`;
      perIndex.set(k, (perIndex.get(k) ?? 0) + 1);
    }
    doubleBound += [...perIndex.values()].filter((n) => n > 1).length;
    fencedRejectedLogged = replicas.reduce(
      (n, s) => n + s.output.filter((l) => l.includes("fenced write rejected")).length,
      0,
    );
    await deleteApps(clientOf(replicas[0]!));
    // The hosts are torn down only once their agents stopped every container.
    await waitFor(
      "every instance gone",
      async () => (await store.list<Instance>(Keys.collection("instances", NS))).items.length === 0,
      120_000,
    );
  } finally {
    // Every step runs whatever failed before it, so nothing is left running.
    const problems: unknown[] = [];
    const step = async (fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        problems.push(err);
      }
    };
    watching = false;
    await step(() => readyWatch);
    if (background) clearInterval(background);
    await step(() => stopObserving?.());
    await step(() => watch.close());
    for (const s of replicas) {
      try {
        process.kill(s.pid, "SIGCONT");
      } catch {
        /* gone */
      }
    }
    for (const s of replicas.slice(1)) await step(() => s.stop());
    await step(() => cluster?.destroy());
    await step(() => store.close());
    await step(() => etcd.stop());
    fs.rmSync(dir, { recursive: true, force: true });
    if (problems.length) {
      console.error("clean-up problems:", ...problems);
      process.exitCode = 1;
    }
  }

  const lf = summarize(failoverMs);
  const af = summarize(agentS.map((s) => s * 1000));
  const sec = (ms: number) => Math.round(ms) / 1000;
  const median = (xs: number[]) => summarize(xs.filter((x) => Number.isFinite(x))).p50;
  const phases = Object.fromEntries(PHASES.map(([n, f]) => [`breakdown_${n}_p50_s`, sec(median(breakdowns.map(f)))]));
  return {
    title:
      `HA: TLS etcd, 3 grove-server replicas, 3 hosts, Apps created throughout; ${LEADER_TRIALS} SIGSTOPs of the leader ` +
      `(to the new leader's first committed placement) and ${AGENT_TRIALS} kill -9s of the replica holding the agents ` +
      `(to all its agents on another replica); target <= ${TARGET_S} s each`,
    rows: [
      {
        name: "leader_failover_s",
        p50: sec(lf.p50),
        p99: sec(lf.p99),
        max: sec(Math.max(...failoverMs)),
        target: TARGET_S,
      },
      {
        name: "agent_failover_s",
        p50: sec(af.p50),
        p99: sec(af.p99),
        max: sec(Math.max(...agentS) * 1000),
        target: TARGET_S,
      },
      ...PHASES.map(([n, f]) => ({
        name: `  ${n}`,
        p50: sec(median(breakdowns.map(f))),
        p99: "",
        max: "",
        target: "",
      })),
      { name: "double_bound", p50: doubleBound, p99: "", max: doubleBound, target: 0 },
      { name: "unfenced_writes_accepted", p50: unfencedAccepted, p99: "", max: unfencedAccepted, target: 0 },
      { name: "nodes_not_ready", p50: notReady.size, p99: "", max: notReady.size, target: 0 },
    ],
    results: {
      etcd_tls: "client certificates",
      leader_trials: LEADER_TRIALS,
      leader_failover_s: sec(lf.p50),
      leader_failover_p99_s: sec(lf.p99),
      leader_failover_max_s: sec(Math.max(...failoverMs)),
      leader_failover_samples_s: failoverMs.map(sec).join(","),
      ...phases,
      agent_trials: AGENT_TRIALS,
      agent_failover_s: sec(Math.max(...agentS) * 1000),
      agent_failover_p50_s: sec(af.p50),
      agent_failover_samples_s: agentS.map((s) => sec(s * 1000)).join(","),
      double_bound: doubleBound,
      unfenced_writes_accepted: unfencedAccepted,
      fenced_writes_rejected_logged: fencedRejectedLogged,
      nodes_not_ready: notReady.size,
      target_s: TARGET_S,
    },
  };
}

async function deleteApps(client: GroveClient): Promise<void> {
  for (const a of (await client.list("App", { namespace: NS })).items) {
    await client.delete("App", a.metadata.name, NS).catch(() => undefined);
  }
}
