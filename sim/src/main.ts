// grove-sim's command line.
import * as fs from "node:fs";
import * as path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import * as os from "node:os";
import { GroveClient, parseBytes, parseCpuMillis, resolveConfig } from "@grove/api";
import { PROFILE_NAMES, type PlacementSpec, type Sampling } from "@grove/control-plane/scheduler";
import { homogeneous, parseClusterFile, type ClusterSpec } from "./cluster";
import { compare } from "./compare";
import { openClusterSize } from "./engine";
import { fromCluster } from "./from-cluster";
import { SIM_PROFILE_NAMES } from "./k8s-binpack";
import { charts, html, table, toJson } from "./report";
import { readTrace } from "./trace";
import { defaultNodeFor, generate, GENERATORS, type GeneratorName, type Workload } from "./workload";

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number, got "${v}"`);
  return n;
}
function num(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number >= 0, got "${v}"`);
  return n;
}

interface Opts {
  workload: string;
  trace?: string;
  cluster?: string;
  fromCluster?: boolean;
  nodes?: number;
  nodeCpu?: string;
  nodeMemory?: string;
  nodePids?: number;
  count: number;
  seed: number;
  seeds: number;
  interArrival: number;
  duration: number;
  appSize: number;
  zones: number;
  spread?: number;
  profiles: string;
  sampling: string;
  output: string;
  report?: string;
  server?: string;
  token?: string;
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command("grove-sim")
    .description(
      "Replay a workload through Grove's placement library under every profile and compare the density\n" +
        "(nodes used, ratio to the lower bound LB1, compaction over seeds, utilization, stranded capacity).",
    )
    .option("--workload <name>", `synthetic generator: ${GENERATORS.join(", ")}`, "azure")
    .option(
      "--trace <file.csv>",
      "replay a CSV trace instead (columns: time,event,id,app,cpu,memory,duration,priority)",
    )
    .option("--cluster <file.json>", 'cluster description: {"pools":[{"count":N,"node":{"cpu":..,"memory":..}}]}')
    .option("--from-cluster", "snapshot a live cluster's nodes and instances through the API and replay them")
    .option("--nodes <n>", "nodes (homogeneous cluster; default: 1.5 x the LB1 of the peak demand + 2)", int)
    .option("--node-cpu <cpu>", "cpu per node (default: the generator's node shape)")
    .option("--node-memory <bytes>", "memory per node")
    .option("--node-pids <n>", "pids per node", int)
    .option("--count <n>", "instances to generate", int, 2000)
    .option("--seed <n>", "random seed", int, 1)
    .option("--seeds <n>", "compaction seeds (0: no compaction)", int, 11)
    .option("--inter-arrival <s>", "mean seconds between arrivals (0: all at once)", num, 0)
    .option("--duration <s>", "mean lifetime in seconds (0: run forever)", num, 0)
    .option("--app-size <n>", "instances per App", int, 1)
    .option("--zones <n>", "label the nodes with zone=z0..z(n-1)", int, 0)
    .option("--spread <maxSkew>", "spread every App over the zones with this max skew", int)
    .option(
      "--profiles <list>",
      `comma-separated (${SIM_PROFILE_NAMES.join(", ")}; k8s-binpack: kube-scheduler's bin-packing scores)`,
      PROFILE_NAMES.join(","),
    )
    .option(
      "--sampling <mode>",
      "candidate sampling: profile (each profile's own), off, log2, or a percentage",
      "profile",
    )
    .option("-o, --output <format>", "table or json", "table")
    .option("--report <dir>", "write report.html (self-contained), the SVG charts and result.json to this directory")
    .option("--server <url>", "API server for --from-cluster (default: the CLI's config)")
    .option("--token <token>", "API token for --from-cluster");
  program.parse(argv);
  const o = program.opts<Opts>();
  try {
    const profiles = o.profiles.split(",").map((p) => p.trim());
    for (const p of profiles) {
      if (!SIM_PROFILE_NAMES.includes(p))
        throw new Error(`--profiles: unknown profile "${p}" (known: ${SIM_PROFILE_NAMES.join(", ")})`);
    }
    let sampling: Sampling | "off" | undefined;
    if (o.sampling === "off") sampling = "off";
    else if (o.sampling === "log2") sampling = { mode: "log2", minNodes: 100 };
    else if (o.sampling !== "profile") {
      const pctv = Number(o.sampling);
      if (!(pctv > 0 && pctv <= 100))
        throw new Error(`--sampling: expected profile, off, log2 or 1..100, got "${o.sampling}"`);
      sampling = { mode: "percentage", percentage: pctv, minNodes: 100 };
    }
    if (o.output !== "table" && o.output !== "json")
      throw new Error(`--output: expected table or json, got "${o.output}"`);

    let workload: Workload;
    let cluster: ClusterSpec | undefined;
    let live: number | undefined;
    if (o.fromCluster) {
      const config = resolveConfig(
        { ...(o.server ? { server: o.server } : {}), ...(o.token ? { token: o.token } : {}) },
        process.env,
        os.homedir(),
      );
      const snap = await fromCluster(new GroveClient({ server: config.server, token: config.token }));
      workload = snap.workload;
      cluster = snap.cluster;
      live = snap.liveNodesUsed;
      if (!o.nodes && cluster.pools.length === 0) throw new Error("--from-cluster: the cluster has no nodes");
    } else if (o.trace) {
      workload = readTrace(o.trace);
    } else {
      if (!(GENERATORS as readonly string[]).includes(o.workload)) {
        throw new Error(`--workload: expected one of ${GENERATORS.join(", ")}, got "${o.workload}"`);
      }
      workload = generate(o.workload as GeneratorName, {
        count: o.count,
        seed: o.seed,
        interArrival: o.interArrival,
        meanDuration: o.duration,
        appSize: o.appSize,
      });
    }
    if (o.cluster) cluster = parseClusterFile(o.cluster);
    if (!cluster || o.nodes !== undefined || o.nodeCpu || o.nodeMemory) {
      const gen = ((GENERATORS as readonly string[]).includes(o.workload) ? o.workload : "mixed") as GeneratorName;
      const base = cluster?.pools[0]?.node ?? defaultNodeFor(gen);
      const node = {
        cpuMillis: o.nodeCpu ? parseCpuMillis(o.nodeCpu) : base.cpuMillis,
        memoryBytes: o.nodeMemory ? parseBytes(o.nodeMemory) : base.memoryBytes,
        pids: o.nodePids ?? base.pids,
      };
      cluster = homogeneous(
        o.nodes ??
          Math.max(cluster ? cluster.pools.reduce((s, p) => s + p.count, 0) : 0, openClusterSize(workload, node)),
        node,
      );
    }
    const placement: PlacementSpec | undefined =
      o.spread !== undefined ? { spread: { topologyKey: "zone", maxSkew: Math.max(1, o.spread) } } : undefined;
    if (placement && o.zones === 0) throw new Error("--spread needs --zones");
    const c = compare({
      cluster,
      workload,
      profiles,
      seed: o.seed,
      seeds: o.seeds,
      zones: o.zones,
      ...(placement ? { placement } : {}),
      ...(sampling ? { sampling } : {}),
    });
    console.log(o.output === "json" ? toJson(c) : table(c));
    if (live !== undefined && o.output === "table") {
      console.log(`\nlive cluster: ${live} nodes in use now for the same ${workload.items.length} instances`);
    }
    if (o.report) {
      fs.mkdirSync(o.report, { recursive: true });
      const svgs = charts(c);
      for (const [name, svg] of Object.entries(svgs)) fs.writeFileSync(path.join(o.report, name), svg);
      fs.writeFileSync(path.join(o.report, "report.html"), html(c, svgs));
      fs.writeFileSync(path.join(o.report, "result.json"), toJson(c, true) + "\n");
      if (o.output === "table") console.log(`\nreport: ${path.join(o.report, "report.html")}`);
    }
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
