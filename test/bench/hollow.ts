// Hollow: the control plane with thousands of nodes. One grove-server (with
// its embedded etcd) and one process of hollow agents (lib-hollow-fleet.ts,
// agent/src/hollow): each hollow node joins with its own token and
// certificate, holds its own mutual-TLS Connect stream, heartbeats every
// second, converges its desired sets with the real reconciler and reports
// instance status; only its runtime pretends (HollowRuntime). Apps of 100
// instances each are created through the HTTP API until INSTANCES are
// wanted; the benchmark times until the Apps report them all Running, then
// measures the steady state over a window: grove-server's CPU (utime+stime
// from /proc) and RSS, and etcd's own write counters from its /metrics
// endpoint (etcd_mvcc_put_total + etcd_mvcc_delete_total; raft proposals
// beside them). Last, the p99 of listing every instance through the API:
// from etcd in pages of 500 (the api client's list), and in one request from
// grove-server's informer cache (?resourceVersion=0).
//
// Size: GROVE_BENCH_HOLLOW_NODES (default 5000) and
// GROVE_BENCH_HOLLOW_INSTANCES (default 10 per node). Targets (issue 18):
// cp_rss_mib <= 2048, cp_cpu_cores_steady <= 0.5, etcd_writes_per_s_steady <= 200.
// Anchor: kubemark, where a hollow node costs Kubernetes' control plane about
// 0.1 core and 220 MB per node (we only state it; it does not run here).
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { GroveClient, type App } from "@grove/api";
import { startServer, tempDir } from "../src/harness/processes";
import { embeddedEtcdEndpoint, etcdCounters, writesByPrefix } from "../src/harness/etcd-metrics";
import type { HollowFleetConfig } from "./lib-hollow-fleet";
import { INSPECT_OPTION, Inspector } from "./lib-inspector";
import { summarize } from "./lib-stats";
import type { BenchReport } from "./run";

const NODES = Number(process.env.GROVE_BENCH_HOLLOW_NODES ?? 5000);
const INSTANCES = Number(process.env.GROVE_BENCH_HOLLOW_INSTANCES ?? NODES * 10);
const PER_APP = 100;
const STEADY_WINDOW_S = Number(process.env.GROVE_BENCH_HOLLOW_WINDOW_S ?? 30);
/** A .cpuprofile of grove-server over the steady window (through its inspector); none without. */
const PROFILE = process.env.GROVE_BENCH_HOLLOW_PROFILE;
/** More grove-server flags, split on spaces (e.g. "--heartbeat-interval 2s"), recorded as `server_args`. */
const SERVER_ARGS = (process.env.GROVE_BENCH_HOLLOW_SERVER_ARGS ?? "").split(" ").filter(Boolean);
const LIST_SAMPLES = 20;
const CLK_TCK = 100;

function app(i: number, instances: number): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: `hollow-${String(i).padStart(4, "0")}`, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sleep", "infinity"],
      instances,
      resources: { cpu: "100m", memory: "64Mi", pids: 16 },
    },
  } as App;
}

/** CPU seconds (user + system) and RSS of a process, from /proc. */
function procUsage(pid: number): { cpuS: number; rssMiB: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuS = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return { cpuS, rssMiB: rss ? Number(rss[1]) / 1024 : NaN };
}

function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function startFleet(config: HollowFleetConfig): {
  proc: ChildProcess;
  last: () => Record<string, number>;
  lines: string[];
} {
  const proc = spawn(
    process.execPath,
    ["--max-old-space-size=8192", path.join(__dirname, "lib-hollow-fleet.js"), JSON.stringify(config)],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const lines: string[] = [];
  let last: Record<string, number> = {};
  let buf = "";
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (d: string) => {
    buf += d;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.hollow === "failed") process.stderr.write(`hollow fleet failed: ${String(parsed.error)}\n`);
        last = parsed as Record<string, number>;
      } catch {
        // not a report
      }
    }
  });
  proc.stderr!.on("data", (d: Buffer) => process.stderr.write(d));
  return { proc, last: () => last, lines };
}

/** Polls `fn` every `everyMs` (monotonic deadline) until it is true. */
async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number, everyMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (performance.now() > deadline)
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function runningInstances(client: GroveClient): Promise<number> {
  const apps = await client.list("App", { namespace: "default" });
  return apps.items.reduce((sum, a) => sum + (a.status?.running ?? 0), 0);
}

export async function run(): Promise<BenchReport> {
  const dir = tempDir("hollow-bench");
  const serverNodeOptions = [process.env.GROVE_BENCH_HOLLOW_SERVER_NODE_OPTIONS, PROFILE ? INSPECT_OPTION : undefined]
    .filter(Boolean)
    .join(" ");
  // A /24 per node needs more than the default /16 at thousands of nodes.
  const server = await startServer({
    dataDir: path.join(dir, "server"),
    extraArgs: ["--cluster-cidr", "10.0.0.0/8", "--node-subnet-prefix", "24", ...SERVER_ARGS],
    // e.g. "--heapsnapshot-signal=SIGUSR2" (node refuses --cpu-prof in NODE_OPTIONS: PROFILE below).
    ...(serverNodeOptions ? { env: { NODE_OPTIONS: serverNodeOptions } } : {}),
  }).catch((err: unknown) => {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const inspector = PROFILE
    ? await Inspector.attach(server.output).catch(async (err: unknown) => {
        await server.stop(30_000);
        fs.rmSync(dir, { recursive: true, force: true });
        throw err;
      })
    : undefined;
  const load = { start: os.loadavg()[0]!, max: os.loadavg()[0]! };
  const loadTimer = setInterval(() => (load.max = Math.max(load.max, os.loadavg()[0]!)), 5000);
  const phase = (what: string) =>
    process.stderr.write(`hollow: ${what} at ${new Date().toISOString()} (load ${os.loadavg()[0]!.toFixed(1)})\n`);
  const client = new GroveClient({
    server: server.url,
    token: server.adminToken,
    caPem: server.caPem,
    timeoutMs: 120_000,
  });
  const etcdEndpoint = embeddedEtcdEndpoint(server);
  const etcdPid = childPids(server.pid)[0];
  const fleet = startFleet({
    server: server.url,
    caPem: server.caPem,
    caHash: server.caHash,
    adminToken: server.adminToken,
    stateRoot: path.join(dir, "fleet"),
    count: NODES,
  });
  try {
    // 1. Every hollow node joined, registered and Ready.
    const t0 = performance.now();
    let registerPolls = 0;
    await until(
      `${NODES} hollow nodes registered`,
      () => {
        // A line every 15 s: a 5,000-node join takes minutes, and said nothing before.
        if (++registerPolls % 15 === 0) phase(`registering, fleet ${JSON.stringify(fleet.last())}`);
        return Promise.resolve(fleet.last().registered === NODES || fleet.proc.exitCode !== null);
      },
      // 1 s per node: on the shared machine (load average about 20) 1,000 nodes took more than 400 s.
      Math.max(120_000, NODES * 1000),
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (fleet: ${fleet.lines.slice(-2).join(" | ")})`);
    });
    if (fleet.proc.exitCode !== null) throw new Error(`the hollow fleet exited: ${fleet.lines.slice(-3).join(" | ")}`);
    const registerS = (performance.now() - t0) / 1000;
    phase(`${NODES} nodes registered in ${registerS.toFixed(0)} s`);
    await until(
      "every hollow node Ready",
      async () =>
        (await client.list("Node")).items.filter((n) =>
          n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        ).length === NODES,
      120_000,
      1000,
    );
    const idle = procUsage(server.pid);

    // 2. Apps through the API, until every instance runs.
    const t1 = performance.now();
    const apps: App[] = [];
    for (let left = INSTANCES, i = 0; left > 0; i++, left -= PER_APP) apps.push(app(i, Math.min(PER_APP, left)));
    const queue = [...apps];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let a = queue.shift(); a; a = queue.shift()) await client.apply(a);
      }),
    );
    const createdS = (performance.now() - t1) / 1000;
    phase(`${apps.length} Apps applied in ${createdS.toFixed(0)} s`);
    let running = 0;
    let polls = 0;
    await until(
      `${INSTANCES} instances Running`,
      async () => {
        running = await runningInstances(client);
        if (++polls % 15 === 0) phase(`${running} Running, fleet ${JSON.stringify(fleet.last())}`);
        return running >= INSTANCES;
      },
      Math.max(300_000, INSTANCES * 60),
      2000,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (${running} running, fleet ${JSON.stringify(fleet.last())})`);
    });
    const allRunningS = (performance.now() - t1) / 1000;
    phase(`${INSTANCES} instances Running after ${allRunningS.toFixed(0)} s`);
    const loadAtRunning = os.loadavg()[0]!;

    // 3. Steady state: let status writes finish, then a quiet window.
    await new Promise((r) => setTimeout(r, 15_000));
    const e0 = await etcdCounters(etcdEndpoint, server);
    const c0 = procUsage(server.pid);
    const k0 = etcdPid ? procUsage(etcdPid) : undefined;
    const f0 = procUsage(fleet.proc.pid!);
    const traced = await writesByPrefix(server, etcdEndpoint);
    await inspector?.startCpuProfile();
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, STEADY_WINDOW_S * 1000));
    const windowS = (performance.now() - w0) / 1000;
    if (inspector && PROFILE) {
      await inspector.stopCpuProfile(PROFILE);
      inspector.close();
      phase(`grove-server's CPU profile of the steady window (the profiler's own cost included) in ${PROFILE}`);
    }
    const e1 = await etcdCounters(etcdEndpoint, server);
    const byPrefix = await traced.stop();
    const c1 = procUsage(server.pid);
    const k1 = etcdPid ? procUsage(etcdPid) : undefined;
    const fleetCpuCores = (procUsage(fleet.proc.pid!).cpuS - f0.cpuS) / windowS;
    const delta = (m: string) => ((e1.get(m) ?? NaN) - (e0.get(m) ?? NaN)) / windowS;
    const writesPerS = delta("etcd_mvcc_put_total") + delta("etcd_mvcc_delete_total");

    // 4. Listing every instance through the API.
    const listMs: number[] = [];
    for (let i = 0; i < LIST_SAMPLES; i++) {
      const s = performance.now();
      const list = await client.list("Instance", { namespace: "default" });
      listMs.push(performance.now() - s);
      if (list.items.length < INSTANCES) throw new Error(`listed ${list.items.length} of ${INSTANCES} instances`);
    }
    const lists = summarize(listMs);
    // The same list in one request from grove-server's informer cache (?resourceVersion=0, docs/api.md).
    // A 503 (etcd unreachable for a moment on a loaded machine: the cache is then not fresh and the
    // list falls back to etcd) is counted and asked again after its Retry-After, up to 10 times.
    const cachedMs: number[] = [];
    let cachedUnavailable = 0;
    while (cachedMs.length < LIST_SAMPLES) {
      const s = performance.now();
      const res = await fetch(`${server.url}/v1/namespaces/default/instances?resourceVersion=0`, {
        headers: { authorization: `Bearer ${server.adminToken}` },
      });
      const list = (await res.json()) as { items?: unknown[]; message?: string };
      if (res.status === 503 && ++cachedUnavailable <= 10) {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      cachedMs.push(performance.now() - s);
      const n = list.items?.length ?? 0;
      if (n < INSTANCES)
        throw new Error(`listed ${n} of ${INSTANCES} instances from the cache (HTTP ${res.status}: ${list.message})`);
    }
    const cachedLists = summarize(cachedMs);
    const fleetLast = fleet.last();

    const results = {
      nodes: NODES,
      instances: INSTANCES,
      nodes_registered_s: registerS,
      apps_created_s: createdS,
      time_to_all_running_s: allRunningS,
      cp_rss_mib: c1.rssMiB,
      cp_rss_mib_nodes_only: idle.rssMiB,
      cp_cpu_cores_steady: (c1.cpuS - c0.cpuS) / windowS,
      etcd_writes_per_s_steady: writesPerS,
      // Presence alone (node presence keys and replicas' keys); the rest is mostly Events, which
      // the recorder drains at its own cap (10/s) long after a burst of 50,000 starts.
      etcd_presence_writes_per_s_steady: byPrefix.presence / windowS,
      etcd_writes_steady_by_key: byPrefix.text,
      etcd_txn_per_s_steady: delta("etcd_mvcc_txn_total"),
      etcd_proposals_per_s_steady: delta("etcd_server_proposals_committed_total"),
      etcd_rss_mib: k1?.rssMiB ?? NaN,
      etcd_cpu_cores_steady: k0 && k1 ? (k1.cpuS - k0.cpuS) / windowS : NaN,
      api_list_instances_p50_ms: lists.p50,
      api_list_instances_p99_ms: lists.p99,
      api_list_instances_cached_p50_ms: cachedLists.p50,
      api_list_instances_cached_p99_ms: cachedLists.p99,
      api_list_instances_cached_503s: cachedUnavailable,
      hollow_fleet_rss_mib: fleetLast.rssMiB ?? NaN,
      hollow_join_retries: fleetLast.joinRetries ?? NaN,
      steady_window_s: windowS,
      server_args: SERVER_ARGS.join(" "),
      // The fleet process's CPU over the same window (its agents' beats and reports).
      hollow_fleet_cpu_cores_steady: fleetCpuCores,
      // The machine is shared: its 1-minute load average when the run started, when every instance
      // ran, at the end, and the highest seen (every 5 s).
      loadavg_1m_start: load.start,
      loadavg_1m_all_running: loadAtRunning,
      loadavg_1m_end: os.loadavg()[0]!,
      loadavg_1m_max: load.max,
      target_cp_rss_mib: 2048,
      target_cp_cpu_cores_steady: 0.5,
      target_etcd_writes_per_s_steady: 200,
    };
    return {
      title: `Hollow: grove-server with ${NODES} hollow nodes (one process, real mTLS streams) and ${INSTANCES} instances`,
      rows: [
        { name: "nodes registered (s)", value: registerS },
        { name: "all instances Running (s)", value: allRunningS },
        { name: "grove-server RSS (MiB)", value: c1.rssMiB, target: 2048 },
        { name: "grove-server CPU steady (cores)", value: results.cp_cpu_cores_steady, target: 0.5 },
        { name: "etcd writes/s steady", value: writesPerS, target: 200 },
        { name: "  of which presence", value: byPrefix.presence / windowS },
        { name: "etcd RSS (MiB)", value: results.etcd_rss_mib },
        { name: "list all instances p99 (ms)", value: lists.p99 },
      ],
      results,
    };
  } catch (err) {
    // What the server said last is the best clue to what stopped a run of many minutes.
    process.stderr.write(`grove-server's last log lines:\n${server.output.slice(-60).join("\n")}\n`);
    throw err;
  } finally {
    clearInterval(loadTimer);
    if (fleet.proc.exitCode === null) {
      fleet.proc.kill("SIGTERM");
      await new Promise((r) => {
        const t = setTimeout(() => {
          fleet.proc.kill("SIGKILL");
          r(undefined);
        }, 10_000);
        fleet.proc.on("exit", () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
    await server.stop(30_000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
