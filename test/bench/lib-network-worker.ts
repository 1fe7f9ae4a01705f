// The half of the network benchmark that runs inside the benchmark's network
// namespace (network.ts starts it with nsenter): argv = TMPDIR HOST_ADDR.
// Prints one JSON line with the figures.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import {
  CniCaller,
  DEFAULT_PLUGIN_DIRS,
  NetworkManager,
  createNetns,
  defaultNetworkList,
  removeNetns,
} from "@grove/agent";
import { summarize } from "./lib-stats";

const execAsync = promisify(execFile);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 20);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const SUBNET = "10.250.0.0/24";

function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "deploy", "make-rootfs.sh"))) return dir;
    if (path.dirname(dir) === dir) throw new Error("no repository root found");
  }
}

const ms = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

async function autocannon(url: string): Promise<{ rps: number; p50: number; errors: number }> {
  const bin = path.join(repoRoot(), "node_modules", ".bin", "autocannon");
  const { stdout } = await execAsync(bin, ["--json", "-c", String(CONNECTIONS), "-d", String(DURATION_S), url], {
    maxBuffer: 64 * 2 ** 20,
  });
  const r = JSON.parse(stdout) as {
    requests: { average: number };
    latency: { p50: number };
    errors: number;
    non2xx: number;
  };
  return { rps: r.requests.average, p50: r.latency.p50, errors: r.errors + r.non2xx };
}

/** busybox httpd serving `www` on `port`, run under `prefix` (e.g. nsenter into a namespace). */
function httpd(prefix: string[], www: string, port: number): ChildProcess {
  const argv = [...prefix, "busybox", "httpd", "-f", "-p", String(port), "-h", www];
  return spawn(argv[0]!, argv.slice(1), { stdio: "ignore" });
}

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer`);
}

async function main(): Promise<void> {
  const [tmp, hostAddr] = process.argv.slice(2) as [string, string];
  const out: Record<string, number | string> = {};

  // 1. CNI ADD + DEL through the caller, the default list, one published port.
  const cni = new CniCaller({ pluginDirs: DEFAULT_PLUGIN_DIRS, cacheDir: path.join(tmp, "cni") });
  const list = defaultNetworkList(SUBNET, path.join(tmp, "ipam"));
  const nsFile = path.join(tmp, "bench-netns");
  await createNetns(nsFile);
  const adds: number[] = [];
  const dels: number[] = [];
  const both: number[] = [];
  for (let i = 0; i < SAMPLES + 2; i++) {
    const rt = {
      containerId: `bench${i}`,
      netns: nsFile,
      ifName: "eth0",
      capabilityArgs: { portMappings: [{ hostPort: 30000, containerPort: 8080, protocol: "tcp" as const }] },
    };
    let t = process.hrtime.bigint();
    await cni.add(list, rt);
    const a = ms(t);
    t = process.hrtime.bigint();
    await cni.del(list, rt);
    const d = ms(t);
    if (i >= 2) {
      adds.push(a);
      dels.push(d);
      both.push(a + d);
    }
  }
  await removeNetns(nsFile);
  const sa = summarize(adds);
  const sd = summarize(dels);
  const sb = summarize(both);
  Object.assign(out, {
    samples: SAMPLES,
    cni_add_del_ms: sb.p50,
    cni_add_del_p90_ms: sb.p90,
    cni_add_ms: sa.p50,
    cni_add_p90_ms: sa.p90,
    cni_del_ms: sd.p50,
    cni_del_p90_ms: sd.p90,
  });

  // 2. The whole instance network lifecycle (netns, ADD, egress chain; teardown).
  const mgr = new NetworkManager({ stateDir: path.join(tmp, "mgr") });
  await mgr.init();
  await mgr.configure(SUBNET, "allow");
  const life: number[] = [];
  for (let i = 0; i < SAMPLES + 2; i++) {
    const t = process.hrtime.bigint();
    await mgr.setup({ uid: `life${i}`, ports: [], egress: [] });
    await mgr.teardown(`life${i}`);
    if (i >= 2) life.push(ms(t));
  }
  const sl = summarize(life);
  Object.assign(out, { network_lifecycle_ms: sl.p50, network_lifecycle_p90_ms: sl.p90 });

  // 3. httpd through a published port vs on the host network.
  const www = path.join(tmp, "www");
  fs.mkdirSync(www);
  fs.writeFileSync(path.join(www, "index.html"), "hello from the network benchmark\n");
  const net = await mgr.setup({
    uid: "web",
    ports: [{ name: "http", protocol: "tcp", containerPort: 8080, hostPort: 18080 }],
    egress: [],
  });
  const inInstance = httpd(["nsenter", `--net=${net.netnsPath}`], www, 8080);
  const onHost = httpd([], www, 18081);
  try {
    await waitHttp(`http://${hostAddr}:18080/`);
    await waitHttp(`http://${hostAddr}:18081/`);
    // Alternate, so drift on a shared machine hits both alike.
    const pub1 = await autocannon(`http://${hostAddr}:18080/`);
    const host1 = await autocannon(`http://${hostAddr}:18081/`);
    const pub2 = await autocannon(`http://${hostAddr}:18080/`);
    const host2 = await autocannon(`http://${hostAddr}:18081/`);
    const pubRps = (pub1.rps + pub2.rps) / 2;
    const hostRps = (host1.rps + host2.rps) / 2;
    Object.assign(out, {
      connections: CONNECTIONS,
      duration_s: DURATION_S,
      published_rps: pubRps,
      host_rps: hostRps,
      published_p50_latency_ms: (pub1.p50 + pub2.p50) / 2,
      host_p50_latency_ms: (host1.p50 + host2.p50) / 2,
      published_errors: pub1.errors + pub2.errors,
      host_errors: host1.errors + host2.errors,
      published_vs_host_rps_ratio: pubRps / hostRps,
      instance_ip: net.ip,
    });
  } finally {
    inInstance.kill("SIGKILL");
    onHost.kill("SIGKILL");
    await mgr.teardown("web");
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
