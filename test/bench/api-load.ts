// The API load benchmark of issue 16: a PaaS front end's traffic against one
// grove-server with its embedded etcd, on loopback over HTTPS, for
// GROVE_BENCH_API_LOAD_SECONDS (default 30) seconds, three autocannon runs at
// once (in this process, so the load generator shares the machine like a
// front end on the same host would not: the figures are pessimistic):
//
// - reads: 25 connections listing the tenant's Apps (`GET .../apps`, the
//   page a dashboard polls) and getting one App in turn, with
//   ?resourceVersion=0 (any revision: served from the replica's informer
//   cache, as a polling dashboard or a Kubernetes informer's list asks);
//   GROVE_BENCH_API_LOAD_READS=store asks without (linearizable, from etcd);
// - applies: 25 connections, each applying its own App (`PUT .../apps/NAME`)
//   with a label that changes every time, so each apply is a real etcd write
//   through admission (not "unchanged"; it grows no quota, so it takes no
//   admission key: namespaces/admission.ts);
// - creations: 20 new Apps per second (autocannon's overall rate) in a second
//   namespace, each with one instance (no agents: they stay Pending, so the
//   scheduler works on every one of them for the whole run).
//
// Both namespaces are Namespace objects with a policy and (generous) quotas,
// the path a tenant's writes take. The admin token is used: it is exempt from
// the per-identity request rate, which would otherwise answer 429 by design.
//
// Figures: get_p99_ms, apply_p99_ms, create_p99_ms (and p50s), requests per
// second, errors (connection errors, timeouts and non-2xx answers of all
// three runs), rss_growth_pct (grove-server's resident set at the end against
// after a warm-up of GROVE_BENCH_API_LOAD_WARMUP_SECONDS, default 5, of the
// same traffic; both right after a full GC forced through the server's
// inspector, which it is started with: lib-inspector.ts), the load
// generator's own CPU, and with GROVE_BENCH_API_LOAD_CPU_PROFILE=FILE a CPU
// profile of grove-server over the measured run (.cpuprofile).
// Targets: apply p99 <= 50 ms, get p99 <= 20 ms, no errors, RSS growth < 10%.
import * as fs from "node:fs";
import * as os from "node:os";
import { performance } from "node:perf_hooks";
import { GroveClient } from "@grove/api";
import { startServer, tempDir } from "../src/harness/processes";
import type { BenchReport } from "./run";
import { INSPECT_OPTION, Inspector } from "./lib-inspector";

const SECONDS = Number(process.env.GROVE_BENCH_API_LOAD_SECONDS ?? 30);
const WARMUP_SECONDS = Number(process.env.GROVE_BENCH_API_LOAD_WARMUP_SECONDS ?? 5);
const READ_CONNECTIONS = 25;
const APPLY_CONNECTIONS = 25;
const CREATIONS_PER_SECOND = 20;
const NS = "bench-load";
const NS_NEW = "bench-new";
const TARGETS = { apply_p99_ms: 50, get_p99_ms: 20, rss_growth_pct: 10 };
/**
 * How the readers read: "cache" (default) asks for ?resourceVersion=0 (any revision, as a polling
 * dashboard or a Kubernetes informer's list does), answered from the replica's informer cache;
 * "store" asks without, a linearizable read from etcd.
 */
const READS = process.env.GROVE_BENCH_API_LOAD_READS ?? "cache";
const READ_QUERY = READS === "store" ? "" : "?resourceVersion=0";
/** Where to write a CPU profile of grove-server over the measured run (none without). */
const CPU_PROFILE = process.env.GROVE_BENCH_API_LOAD_CPU_PROFILE;

// autocannon ships no types; the part of its API used here.
interface CannonRequest {
  method?: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
  setupRequest?: (req: CannonRequest, context: Record<string, unknown>) => CannonRequest;
}
interface CannonResult {
  latency: { p50: number; p99: number; max: number };
  requests: { average: number; total: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Cannon = (
  opts: {
    url: string;
    connections: number;
    duration: number;
    overallRate?: number;
    headers: Record<string, string>;
    requests: CannonRequest[];
    tlsOptions?: { ca: string };
    timeout?: number;
  },
  cb: (err: Error | null, result: CannonResult) => void,
) => unknown;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require("autocannon") as Cannon;

function fire(opts: Parameters<Cannon>[0]): Promise<CannonResult> {
  return new Promise((resolve, reject) => autocannon(opts, (err, r) => (err ? reject(err) : resolve(r))));
}

function app(ns: string, name: string, labels: Record<string, string> = {}): unknown {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: ns, labels },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", "exec sleep 1000000"],
      instances: 1,
      resources: { cpu: "10m", memory: "16Mi", pids: 16 },
    },
  };
}

function namespace(name: string): unknown {
  return {
    apiVersion: "grove/v1",
    kind: "Namespace",
    metadata: { name },
    spec: { policy: "baseline", quota: { cpu: "1000", memory: "1000Gi", instances: 100_000, hostPorts: 100 } },
  };
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** grove-server's embedded etcd: its child process. */
function etcdPid(serverPid: number): number {
  for (const d of fs.readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === serverPid && stat.includes("(etcd)")) return Number(d);
    } catch {
      /* gone */
    }
  }
  throw new Error(`no etcd child of ${serverPid}`);
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** The three runs, for `seconds`; creations get fresh names across calls. */
async function traffic(
  url: string,
  headers: Record<string, string>,
  ca: string,
  seconds: number,
  round: string,
): Promise<{ reads: CannonResult; applies: CannonResult; creates: CannonResult }> {
  let applier = 0;
  let created = 0;
  const common = { url, headers, tlsOptions: { ca }, duration: seconds, timeout: 10 };
  const [reads, applies, creates] = await Promise.all([
    fire({
      ...common,
      connections: READ_CONNECTIONS,
      requests: [
        { method: "GET", path: `/v1/namespaces/${NS}/apps${READ_QUERY}` },
        { method: "GET", path: `/v1/namespaces/${NS}/apps/load-0${READ_QUERY}` },
      ],
    }),
    fire({
      ...common,
      connections: APPLY_CONNECTIONS,
      requests: [
        {
          method: "PUT",
          path: "/",
          setupRequest: (req, context) => {
            // Each connection applies its own App, so applies do not race each other.
            if (context.app === undefined) context.app = `load-${applier++ % APPLY_CONNECTIONS}`;
            const n = ((context.n as number | undefined) ?? 0) + 1;
            context.n = n;
            const name = context.app as string;
            return {
              ...req,
              path: `/v1/namespaces/${NS}/apps/${name}`,
              body: JSON.stringify(app(NS, name, { round, n: String(n) })),
            };
          },
        },
      ],
    }),
    fire({
      ...common,
      connections: 4,
      overallRate: CREATIONS_PER_SECOND,
      requests: [
        {
          method: "PUT",
          path: "/",
          setupRequest: (req) => {
            const name = `new-${round}-${created++}`;
            return { ...req, path: `/v1/namespaces/${NS_NEW}/apps/${name}`, body: JSON.stringify(app(NS_NEW, name)) };
          },
        },
      ],
    }),
  ]);
  return { reads, applies, creates };
}

function failures(r: CannonResult): number {
  return r.errors + r.timeouts + r.non2xx;
}

export async function run(): Promise<BenchReport> {
  const dataDir = tempDir("grove-bench-api-load");
  // The inspector lets the benchmark force full GCs around the run (RSS) and profile it.
  const nodeOptions = `${process.env.NODE_OPTIONS ?? ""} ${INSPECT_OPTION}`.trim();
  const server = await startServer({ dataDir, env: { NODE_OPTIONS: nodeOptions } }).catch((err: unknown) => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });
  let inspector: Inspector | undefined;
  try {
    inspector = await Inspector.attach(server.output);
    const client = new GroveClient({ server: server.url, token: server.adminToken, caPem: server.caPem });
    const headers = { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" };
    // startServer made this process trust the server's CA.
    const put = async (p: string, body: unknown) => {
      const res = await fetch(server.url + p, { method: "PUT", headers, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`PUT ${p}: ${res.status} ${await res.text()}`);
    };
    for (const ns of [NS, NS_NEW]) await put(`/v1/namespaces/${ns}`, namespace(ns));
    for (let i = 0; i < APPLY_CONNECTIONS; i++) await put(`/v1/namespaces/${NS}/apps/load-${i}`, app(NS, `load-${i}`));

    const warm = await traffic(server.url, headers, server.caPem, WARMUP_SECONDS, "w");
    // Resident sets after a full GC on both sides, so the growth is what the run kept, not when V8 last collected.
    await inspector.collectGarbage();
    const rssBefore = rssBytes(server.pid);
    const heapBefore = await inspector.heapUsed();
    const etcd = etcdPid(server.pid);
    const logLines0 = server.output.length;
    if (CPU_PROFILE) await inspector.startCpuProfile();
    const cpu0 = { server: cpuSeconds(server.pid), etcd: cpuSeconds(etcd), loadgen: process.cpuUsage() };
    const t0 = performance.now();
    const main = await traffic(server.url, headers, server.caPem, SECONDS, "m");
    const wallS = (performance.now() - t0) / 1000;
    const loadgen = process.cpuUsage(cpu0.loadgen);
    const cpu = {
      server: cpuSeconds(server.pid) - cpu0.server,
      etcd: cpuSeconds(etcd) - cpu0.etcd,
      loadgen: (loadgen.user + loadgen.system) / 1e6,
    };
    if (CPU_PROFILE) await inspector.stopCpuProfile(CPU_PROFILE);
    const rssAfterNoGc = rssBytes(server.pid);
    await inspector.collectGarbage();
    const rssAfter = rssBytes(server.pid);
    const heapAfter = await inspector.heapUsed();
    const requests = main.reads.requests.total + main.applies.requests.total + main.creates.requests.total;

    const apps = (await client.list("App", { namespace: NS_NEW })).items.length;
    const errors = failures(main.reads) + failures(main.applies) + failures(main.creates);
    const codes = (r: CannonResult) =>
      Object.entries(r.statusCodeStats)
        .map(([c, s]) => `${c}:${s.count}`)
        .join(" ");
    const results = {
      reads: READS,
      seconds: SECONDS,
      wall_s: Number(wallS.toFixed(1)),
      connections: READ_CONNECTIONS + APPLY_CONNECTIONS,
      get_p50_ms: main.reads.latency.p50,
      get_p99_ms: main.reads.latency.p99,
      get_rps: main.reads.requests.average,
      apply_p50_ms: main.applies.latency.p50,
      apply_p99_ms: main.applies.latency.p99,
      apply_rps: main.applies.requests.average,
      create_p50_ms: main.creates.latency.p50,
      create_p99_ms: main.creates.latency.p99,
      creates_per_s: main.creates.requests.total / SECONDS,
      apps_created_total: apps,
      errors,
      warmup_errors: failures(warm.reads) + failures(warm.applies) + failures(warm.creates),
      status_codes: `get ${codes(main.reads)}; apply ${codes(main.applies)}; create ${codes(main.creates)}`,
      // CPU per request: what the server costs, much less sensitive to a busy machine than latency.
      server_cpu_ms_per_request: Number(((cpu.server * 1000) / requests).toFixed(3)),
      etcd_cpu_ms_per_request: Number(((cpu.etcd * 1000) / requests).toFixed(3)),
      server_cpu_cores: Number((cpu.server / wallS).toFixed(2)),
      etcd_cpu_cores: Number((cpu.etcd / wallS).toFixed(2)),
      // The load generator (autocannon, this process) shares the machine: what it took.
      loadgen_cpu_cores: Number((cpu.loadgen / wallS).toFixed(2)),
      server_log_lines: server.output.length - logLines0,
      rss_before_mib: Number((rssBefore / 2 ** 20).toFixed(1)),
      rss_after_mib: Number((rssAfter / 2 ** 20).toFixed(1)),
      rss_growth_pct: Number((((rssAfter - rssBefore) / rssBefore) * 100).toFixed(1)),
      heap_before_mib: Number((heapBefore / 2 ** 20).toFixed(1)),
      heap_after_mib: Number((heapAfter / 2 ** 20).toFixed(1)),
      rss_after_no_gc_mib: Number((rssAfterNoGc / 2 ** 20).toFixed(1)),
      loadavg_1m: Number(os.loadavg()[0]!.toFixed(1)),
      target_apply_p99_ms: TARGETS.apply_p99_ms,
      target_get_p99_ms: TARGETS.get_p99_ms,
      target_rss_growth_pct: TARGETS.rss_growth_pct,
    };
    const verdict = (ok: boolean) => (ok ? "ok" : "MISS");
    return {
      title: `grove-server API under load: ${READ_CONNECTIONS} reading + ${APPLY_CONNECTIONS} applying connections and ${CREATIONS_PER_SECOND} App creations/s for ${SECONDS} s (loadavg ${results.loadavg_1m})`,
      rows: [
        {
          name: "get (list, get)",
          p50_ms: results.get_p50_ms,
          p99_ms: results.get_p99_ms,
          rps: results.get_rps,
          target: "p99 <= 20",
          verdict: verdict(results.get_p99_ms <= TARGETS.get_p99_ms),
        },
        {
          name: "apply (PUT)",
          p50_ms: results.apply_p50_ms,
          p99_ms: results.apply_p99_ms,
          rps: results.apply_rps,
          target: "p99 <= 50",
          verdict: verdict(results.apply_p99_ms <= TARGETS.apply_p99_ms),
        },
        {
          name: "create (PUT new)",
          p50_ms: results.create_p50_ms,
          p99_ms: results.create_p99_ms,
          rps: results.creates_per_s,
          target: "20/s",
          verdict: verdict(results.creates_per_s >= CREATIONS_PER_SECOND * 0.95),
        },
        { name: "errors", value: errors, target: "0", verdict: verdict(errors === 0) },
        {
          name: "rss growth %",
          value: results.rss_growth_pct,
          target: "< 10",
          verdict: verdict(results.rss_growth_pct < TARGETS.rss_growth_pct),
        },
      ],
      results,
    };
  } finally {
    inspector?.close();
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
