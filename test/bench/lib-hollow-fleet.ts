// A process of hollow agents (agent/src/hollow) for the hollow benchmark and
// the hollow-agents test: `node lib-hollow-fleet.js CONFIG_JSON`. Runs apart
// from grove-server so that the server's CPU and memory are its own. Each
// node's single-use join token is made through the API with the admin token,
// as `grove token create --node` does. Prints one JSON line per report
// ({"hollow":"started"|"status", registered, running, ...}) and stops every
// node on SIGTERM.
import { performance } from "node:perf_hooks";
import { GroveClient } from "@grove/api";
import { HollowFleet } from "@grove/agent";
import { pino } from "pino";

export interface HollowFleetConfig {
  server: string;
  caPem: string;
  caHash: string;
  adminToken: string;
  stateRoot: string;
  count: number;
  namePrefix?: string;
  /** Extra gRPC addresses (other replicas). */
  otherAddresses?: string[];
  /** How often to print a status line (default 1000 ms). */
  reportEveryMs?: number;
  startConcurrency?: number;
  /** What each node offers (the fleet's default otherwise); the scheduler benchmark's SchedulingBasic nodes. */
  capacity?: { cpuMillis: number; memoryBytes: number; pids: number };
}

function say(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? "{}") as HollowFleetConfig;
  const client = new GroveClient({ server: config.server, token: config.adminToken, caPem: config.caPem });
  const fleet = new HollowFleet({
    server: config.server,
    caHash: config.caHash,
    stateRoot: config.stateRoot,
    // Hollow nodes' own logs (to stderr), e.g. GROVE_HOLLOW_LOG_LEVEL=warn; silent by default.
    logger: pino({ level: process.env.GROVE_HOLLOW_LOG_LEVEL ?? "silent" }, pino.destination(2)),
    joinToken: async (node) => (await client.createJoinToken({ ttl: "1h", node })).token,
    ...(config.namePrefix ? { namePrefix: config.namePrefix } : {}),
    ...(config.otherAddresses ? { otherAddresses: config.otherAddresses } : {}),
    ...(config.startConcurrency ? { startConcurrency: config.startConcurrency } : {}),
    ...(config.capacity ? { capacity: config.capacity } : {}),
  });
  const report = (hollow: string) =>
    say({
      hollow,
      nodes: fleet.nodes.length,
      registered: fleet.registered(),
      running: fleet.running(),
      joinRetries: fleet.joinRetries(),
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
    });
  const timer = setInterval(() => report("status"), config.reportEveryMs ?? 1000);
  process.once("SIGTERM", () => {
    clearInterval(timer);
    fleet.stop();
    report("stopped");
    setTimeout(() => process.exit(0), 200).unref();
  });
  const t0 = performance.now();
  await fleet.grow(config.count);
  say({ hollow: "started", nodes: fleet.nodes.length, seconds: (performance.now() - t0) / 1000 });
}

main().catch((err: unknown) => {
  say({ hollow: "failed", error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
