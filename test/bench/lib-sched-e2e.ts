// The scheduler end to end (issue 18, `etcd_e2e_placements_per_s`): from the
// PUT of Apps through grove-server's HTTP API, through its App controller
// (Instances written) and scheduler loop (bindings committed in guarded etcd
// transactions), until a watch through the same API has seen every instance
// bound. A real grove-server with its embedded etcd; the nodes are hollow
// agents (agent/src/hollow, in their own process: test/bench/lib-hollow-fleet.ts)
// so that they are registered and Ready as real agents keep them (a Node object
// with no agent behind it goes Unknown once its presence is stale), offering
// SchedulingBasic's 4 CPU / 32 GiB / 110 pods each. Unlike kube-scheduler's
// scheduler_perf, whose nodes have no kubelet, the hollow agents also receive
// their desired sets and report their instances Running while the
// measurement runs: that load on grove-server is part of the figure.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { GroveClient, isFinished, type App, type Instance, type Resources } from "@grove/api";
import { startServer, tempDir } from "../src/harness/processes";
import type { HollowFleetConfig } from "./lib-hollow-fleet";
import { checkCapacity, type CapacityCheck } from "./lib-sched-check";
import { INSPECT_OPTION, Inspector } from "./lib-inspector";

/** BENCH_E2E_PROFILE=FILE: a .cpuprofile of grove-server over the measured part (the profiler's cost included). */
const PROFILE = process.env.BENCH_E2E_PROFILE;

const PER_APP = 100;
const CLK_TCK = 100;

export interface E2eOptions {
  nodes: number;
  init: number;
  measured: number;
  node: { cpuMillis: number; memoryBytes: number; pids: number };
  /** false: grove-server's scheduler waits for its watches after each pass (GROVE_SCHEDULER_ASSUME=off), as before assumptions. */
  assume?: boolean;
}

export interface E2eResult {
  perSecond: number;
  seconds: number;
  nodesRegisteredS: number;
  check: CapacityCheck;
  /** grove-server's CPU seconds (user + system) over the measured part. */
  serverCpuS: number;
  /** The hollow fleet's CPU seconds over the measured part (its agents' status reports). */
  fleetCpuS: number;
  /** The machine's 1-minute load average at the end of the measured part (it is shared). */
  loadAvg1: number;
  /** From grove-server's log over the measured part: scheduler passes that placed, the longest gap between two, warnings. */
  passes: number;
  longestGapS: number;
  warnings: number;
  warningExample: string;
}

/** What grove-server's log (pino JSON lines) says about the scheduler over `lines`. */
function fromLog(lines: readonly string[]): Pick<E2eResult, "passes" | "longestGapS" | "warnings" | "warningExample"> {
  const times: number[] = [];
  let warnings = 0;
  let warningExample = "";
  for (const line of lines) {
    let rec: { msg?: string; time?: number; level?: number };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      continue;
    }
    if (rec.msg === "placed instances" && typeof rec.time === "number") times.push(rec.time);
    if ((rec.level ?? 0) >= 40) {
      warnings++;
      if (!warningExample) warningExample = String(rec.msg).slice(0, 120);
    }
  }
  let longest = 0;
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
  return { passes: times.length, longestGapS: longest / 1000, warnings, warningExample };
}

function app(name: string, instances: number): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sleep", "infinity"],
      instances,
      // SchedulingBasic's pod; pids 1 so that a node's 110 pids are its 110 pods (as in the raw path).
      resources: { cpu: "100m", memory: "500Mi", pids: 1 },
    },
  } as App;
}

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Waits (monotonic deadline) until `fn` holds, checking every 50 ms. */
async function until(what: string, fn: () => boolean, timeoutMs: number, detail: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!fn()) {
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${detail()})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startFleet(config: HollowFleetConfig): { proc: ChildProcess; last: () => Record<string, unknown> } {
  const script = path.join(__dirname, "lib-hollow-fleet.js");
  const proc = spawn(process.execPath, ["--max-old-space-size=4096", script, JSON.stringify(config)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let last: Record<string, unknown> = {};
  let buf = "";
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (d: string) => {
    buf += d;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      try {
        last = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
      } catch {
        // not a report line
      }
      buf = buf.slice(i + 1);
    }
  });
  return { proc, last: () => last };
}

async function stopFleet(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(t);
}

/** SchedulingBasic's pod as the API's Resources (what app() asks for). */
const POD = { cpuMillis: 100, memoryBytes: 500 * 2 ** 20, pids: 1 };

export async function endToEnd(o: E2eOptions): Promise<E2eResult> {
  const perNode = Math.min(
    Math.floor(o.node.cpuMillis / POD.cpuMillis),
    Math.floor(o.node.memoryBytes / POD.memoryBytes),
    Math.floor(o.node.pids / POD.pids),
  );
  if (perNode * o.nodes < o.init + o.measured) {
    throw new Error(
      `${o.init + o.measured} pods cannot fit on ${o.nodes} nodes of ${perNode} pods each: raise BENCH_E2E_NODES`,
    );
  }
  const dir = tempDir("bench13-sched-e2e");
  // On a machine loaded far past its cores grove-server can miss the harness's 60 s start: try again.
  const start = (attempt: number) =>
    startServer({
      dataDir: path.join(dir, `server-${attempt}`),
      extraArgs: ["--cluster-cidr", "10.0.0.0/8", "--node-subnet-prefix", "24"],
      env: {
        ...(o.assume === false ? { GROVE_SCHEDULER_ASSUME: "off" } : {}),
        ...(PROFILE ? { NODE_OPTIONS: INSPECT_OPTION } : {}),
      },
    });
  const server = await start(1)
    .catch(() => start(2))
    .catch(() => start(3))
    .catch((err: unknown) => {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    });
  const client = new GroveClient({
    server: server.url,
    token: server.adminToken,
    caPem: server.caPem,
    timeoutMs: 120_000,
  });
  const fleet = startFleet({
    server: server.url,
    caPem: server.caPem,
    caHash: server.caHash,
    adminToken: server.adminToken,
    stateRoot: path.join(dir, "fleet"),
    count: o.nodes,
    namePrefix: "bench13-",
    capacity: o.node,
  });
  const seen = new Map<string, Instance>();
  let watch: Awaited<ReturnType<GroveClient["watch"]>> | undefined;
  let inspector: Inspector | undefined;
  try {
    if (PROFILE) inspector = await Inspector.attach(server.output);
    const t0 = performance.now();
    await until(
      `${o.nodes} hollow nodes registered`,
      () => fleet.last().registered === o.nodes || fleet.proc.exitCode !== null,
      Math.max(600_000, o.nodes * 600),
      () => JSON.stringify(fleet.last()),
    );
    if (fleet.proc.exitCode !== null) throw new Error(`the hollow fleet exited: ${JSON.stringify(fleet.last())}`);
    const nodesRegisteredS = (performance.now() - t0) / 1000;
    // Ready as the scheduler sees it: every node object says so.
    for (const deadline = performance.now() + 120_000; ;) {
      // A list of 11 000 instances can outlast etcd's deadline on a loaded machine (StoreUnavailable): try again.
      const retry = async <T>(fn: () => Promise<T>): Promise<T> => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await fn();
          } catch (err) {
            if (attempt >= 5) throw err;
            await new Promise((r) => setTimeout(r, 2000 * attempt));
          }
        }
      };
      const nodes = (await retry(() => client.list("Node"))).items;
      const ready = nodes.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
      if (ready.length === o.nodes) break;
      if (performance.now() > deadline) throw new Error(`${ready.length} of ${o.nodes} nodes Ready after 120 s`);
      await new Promise((r) => setTimeout(r, 500));
    }

    const stream = (watch = await client.watch("Instance", { namespace: "default" }));
    void (async () => {
      for await (const ev of stream) {
        if (ev.type === "DELETED") seen.delete(ev.object.metadata.name);
        else if (ev.type === "ADDED" || ev.type === "MODIFIED") seen.set(ev.object.metadata.name, ev.object);
      }
    })().catch(() => undefined);
    const bound = () => {
      let n = 0;
      for (const i of seen.values()) if (i.spec.nodeName && !isFinished(i)) n++;
      return n;
    };
    const applyAll = async (apps: App[]) => {
      const queue = [...apps];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let a = queue.shift(); a; a = queue.shift()) await client.apply(a);
        }),
      );
    };
    const apps = (prefix: string, total: number) =>
      Array.from({ length: Math.ceil(total / PER_APP) }, (_, i) =>
        app(`${prefix}-${String(i).padStart(4, "0")}`, Math.min(PER_APP, total - i * PER_APP)),
      );

    await applyAll(apps("bench13-init", o.init));
    await until(
      `${o.init} initial instances bound`,
      () => bound() >= o.init,
      300_000,
      () => `${bound()} bound`,
    );

    const c0 = cpuSeconds(server.pid);
    const f0 = cpuSeconds(fleet.proc.pid!);
    const logFrom = server.output.length;
    await inspector?.startCpuProfile();
    const t1 = performance.now();
    await applyAll(apps("bench13-measured", o.measured));
    const total = o.init + o.measured;
    await until(
      `${total} instances bound`,
      () => bound() >= total,
      Math.max(300_000, o.measured * 100),
      () => `${bound()} bound`,
    );
    const seconds = (performance.now() - t1) / 1000;
    if (inspector && PROFILE) await inspector.stopCpuProfile(PROFILE);
    const serverCpuS = cpuSeconds(server.pid) - c0;
    const fleetCpuS = cpuSeconds(fleet.proc.pid!) - f0;
    const loadAvg1 = os.loadavg()[0]!;
    const log = fromLog(server.output.slice(logFrom));
    // BENCH_E2E_SERVER_LOG=FILE keeps grove-server's log of the measured part (where the time went).
    if (process.env.BENCH_E2E_SERVER_LOG) {
      fs.writeFileSync(process.env.BENCH_E2E_SERVER_LOG, server.output.slice(logFrom).join("\n"));
    }

    // The check reads what the API serves now, not the watch's copy.
    // A list of 11 000 instances can outlast etcd's deadline on a loaded machine (StoreUnavailable): try again.
    const retry = async <T>(fn: () => Promise<T>): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn();
        } catch (err) {
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 2000 * attempt));
        }
      }
    };
    const nodes = (await retry(() => client.list("Node"))).items;
    const capacity = new Map<string, Partial<Resources>>(
      nodes.map((n) => [n.metadata.name, n.status?.allocatable ?? {}]),
    );
    const instances = (await retry(() => client.list("Instance", { namespace: "default" }))).items;
    const check = checkCapacity(
      capacity,
      instances
        .filter((i) => i.spec.nodeName && !isFinished(i))
        .map((i) => ({ node: i.spec.nodeName!, resources: i.spec.resources })),
    );
    return {
      perSecond: o.measured / seconds,
      seconds,
      nodesRegisteredS,
      check,
      serverCpuS,
      fleetCpuS,
      loadAvg1,
      ...log,
    };
  } finally {
    inspector?.close();
    watch?.close();
    await stopFleet(fleet.proc);
    await server.stop(30_000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
