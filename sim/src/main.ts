// grove-sim's command line.
import { Command, InvalidArgumentError } from "commander";
import { parseBytes, parseCpuMillis } from "@grove/api";
import { simulate, type WorkloadKind } from "./simulate";

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number, got "${v}"`);
  return n;
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command("grove-sim")
    .description("Place a synthetic workload with Grove's placement library and report the density")
    .option("--nodes <n>", "nodes in the cluster", int, 100)
    .option("--node-cpu <cpu>", "cpu per node", "16")
    .option("--node-memory <bytes>", "memory per node", "64Gi")
    .option("--node-pids <n>", "pids per node", int, 32768)
    .option("--workload <kind>", "uniform (100m/500Mi) or mixed", "mixed")
    .option("--count <n>", "instances to place", int, 1000)
    .option("--seed <n>", "random seed", int, 1)
    .option("-o, --output <format>", "table or json", "table");
  program.parse(argv);
  const o = program.opts<{
    nodes: number;
    nodeCpu: string;
    nodeMemory: string;
    nodePids: number;
    workload: string;
    count: number;
    seed: number;
    output: string;
  }>();
  try {
    if (o.workload !== "uniform" && o.workload !== "mixed") {
      throw new Error(`--workload must be uniform or mixed, got "${o.workload}"`);
    }
    const report = simulate({
      cluster: {
        nodes: o.nodes,
        node: { cpuMillis: parseCpuMillis(o.nodeCpu), memoryBytes: parseBytes(o.nodeMemory), pids: o.nodePids },
      },
      workload: o.workload as WorkloadKind,
      count: o.count,
      seed: o.seed,
    });
    if (o.output === "json") {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    const rows: Array<[string, string]> = [
      ["profile", report.profile],
      ["placed", String(report.placed)],
      ["pending", String(report.pending)],
      ["nodes used", String(report.nodesUsed)],
      ["lower bound (LB1)", String(report.lowerBound)],
      ["ratio to LB1", report.ratioToLowerBound.toFixed(3)],
      ["cpu utilization", `${(report.utilization.cpu * 100).toFixed(1)}%`],
      ["memory utilization", `${(report.utilization.memory * 100).toFixed(1)}%`],
    ];
    for (const [k, v] of rows) console.log(`${k.padEnd(20)} ${v}`);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
