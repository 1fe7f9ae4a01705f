// Agent failover: how long the agents of a grove-server replica killed -9
// take to be connected to another replica. One etcd, three replicas, three
// agents given every replica's address (--server A,B,C; they start on A).
// Each trial kills the replica holding the most agents' streams and measures,
// on the monotonic clock, from the kill until every one of those agents'
// presence keys names a surviving replica (the agent registered there);
// then restarts the killed replica on its addresses for the next trial. It
// also counts nodes that left Ready during the trials (must be 0).
// agent_failover_s (the figure, also part of leader-failover.json,
// written by that benchmark) is the worst trial; the target is at most 5 s.
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { GroveClient } from "@grove/api";
import { EmbeddedEtcd, Keys, createStore, type Store } from "@grove/control-plane";
import {
  isReady,
  startAgent,
  startServer,
  tempDir,
  waitFor,
  type ServerProcess,
  type Started,
} from "../src/harness/processes";
import type { BenchReport } from "./run";
import { summarize } from "./lib-stats";

const AGENTS = 3;
const TRIALS = Number(process.env.GROVE_BENCH_AGENT_FAILOVER_TRIALS ?? 5);
const TARGET_S = 5;

/** node -> the advertised URL of the replica holding its stream. */
async function holders(store: Store): Promise<Map<string, string>> {
  const prefix = Keys.heartbeat("");
  const out = new Map<string, string>();
  for (const kv of (await store.list<{ server?: string }>(prefix)).items) {
    if (kv.value.server) out.set(kv.key.slice(prefix.length), kv.value.server);
  }
  return out;
}

/**
 * One agent-failover trial (also for the leader-failover benchmark): kills -9
 * the replica holding the most of `nodes`' agent streams and resolves, once
 * every one of those agents is registered with another replica, with the
 * seconds that took (monotonic) and the replica killed.
 */
export async function killReplicaAndTimeAgents(
  store: Store,
  servers: readonly ServerProcess[],
  nodes: readonly string[],
): Promise<{ seconds: number; victim: ServerProcess }> {
  const held = await holders(store);
  const count = (s: ServerProcess) => nodes.filter((n) => held.get(n) === s.url).length;
  const victim = [...servers].sort((a, b) => count(b) - count(a))[0]!;
  const moving = nodes.filter((n) => held.get(n) === victim.url);
  const killed = performance.now();
  await victim.kill9();
  await waitFor(
    `the agents of ${victim.url} to register elsewhere`,
    async () => {
      const now = await holders(store);
      return moving.every((n) => {
        const h = now.get(n);
        return h !== undefined && h !== victim.url;
      });
    },
    60_000,
  );
  return { seconds: (performance.now() - killed) / 1000, victim };
}

export async function run(): Promise<BenchReport> {
  const dir = tempDir("grove-bench-agent-failover");
  const etcd = new EmbeddedEtcd({ dataDir: path.join(dir, "etcd"), port: 0, stopTimeoutMs: 5000 });
  const servers: ServerProcess[] = [];
  const agents: Started[] = [];
  const nodes = Array.from({ length: AGENTS }, (_, i) => `bench-af-${i}-${process.pid}`);
  let store: Store | undefined;
  const samples: number[] = [];
  const notReady = new Set<string>();
  let watching = true;
  let watch: Promise<void> = Promise.resolve();
  try {
    await etcd.start();
    store = createStore(etcd.endpoints);
    for (let i = 0; i < 3; i++) {
      const d = path.join(dir, `s${i}`);
      fs.mkdirSync(d);
      if (servers[0]) {
        for (const t of ["admin-token", "agent-token"])
          fs.copyFileSync(path.join(servers[0].dataDir, t), path.join(d, t));
      }
      servers.push(await startServer({ dataDir: d, etcdEndpoints: etcd.endpoints }));
    }
    const addresses = servers.map((s) => s.grpcAddress);
    for (const node of nodes) {
      agents.push(
        await startAgent({
          server: servers[0]!,
          nodeName: node,
          stateDir: path.join(dir, `agent-${node}`),
          rootfsDir: path.join(dir, "rootfs"),
          cgroupParent: `grove-bench-af-${node}`,
          extraArgs: addresses.slice(1).flatMap((a) => ["--server", a]),
        }),
      );
    }
    // Ready is watched throughout, through whichever replica answers.
    watch = (async () => {
      while (watching) {
        for (const s of servers) {
          try {
            const client = new GroveClient({ server: s.url, token: s.adminToken });
            for (const n of (await client.list("Node")).items) {
              if (nodes.includes(n.metadata.name) && !isReady(n)) notReady.add(n.metadata.name);
            }
            break;
          } catch {
            // that replica is the one killed: ask the next
          }
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    for (let trial = 0; trial < TRIALS; trial++) {
      const { seconds, victim } = await killReplicaAndTimeAgents(store, servers, nodes);
      samples.push(seconds);
      // The replica comes back on the same addresses (its agents list them).
      const i = servers.indexOf(victim);
      servers[i] = await startServer({
        dataDir: victim.dataDir,
        etcdEndpoints: etcd.endpoints,
        grpcListen: victim.grpcAddress,
      });
      // Let the lease and presence settle before the next kill.
      await new Promise((r) => setTimeout(r, 6_000));
    }
  } finally {
    watching = false;
    await watch;
    for (const a of agents) await a.stop(30_000);
    for (const s of servers) await s.stop();
    await store?.close();
    await etcd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const s = summarize(samples);
  const worst = Math.max(...samples);
  return {
    title: `agent failover: replica killed -9 until all its agents are connected to another (${TRIALS} trials, ${AGENTS} agents, target <= ${TARGET_S} s)`,
    rows: [
      { name: "agent_failover_s", p50: s.p50, max: worst, target: TARGET_S },
      { name: "nodes_not_ready", p50: notReady.size, max: notReady.size, target: 0 },
    ],
    results: {
      agent_failover_s: Number(worst.toFixed(3)),
      agent_failover_p50_s: Number(s.p50.toFixed(3)),
      agent_failover_trials_s: samples.map((v) => v.toFixed(3)).join(","),
      trials: TRIALS,
      agents: AGENTS,
      nodes_not_ready: notReady.size,
      target_s: TARGET_S,
    },
  };
}
