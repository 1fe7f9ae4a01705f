// Processes the integration tests start: the real grove-server (with its
// embedded etcd or an external one) and grove-agent binaries, run from the
// built workspace. Each is stopped by the PID we got when we started it.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import type { GroveClient, Node } from "@grove/api";
import { caFileOf, postJson, sharedCa, trustServerCa } from "./tls";

/** The repository root: the nearest directory above with a package.json that has workspaces. */
export const REPO_ROOT = ((): string => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj) && "workspaces" in (JSON.parse(fs.readFileSync(pj, "utf8")) as object)) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no repository root above ${__dirname}`);
  }
})();
export const BIN = {
  server: path.join(REPO_ROOT, "control-plane", "bin", "grove-server.js"),
  agent: path.join(REPO_ROOT, "agent", "bin", "grove-agent.js"),
  cli: path.join(REPO_ROOT, "api", "bin", "grove.js"),
};

export { tempDir } from "./run-id";

export interface Started {
  proc: ChildProcess;
  pid: number;
  /** Every line the process wrote (stdout and stderr), for failure messages. */
  output: string[];
  exited: Promise<number | null>;
  stop(timeoutMs?: number): Promise<void>;
  kill9(): Promise<void>;
}

/** Starts `node script args` and resolves when a log line matches `ready`. */
export function startNode(
  script: string,
  args: string[],
  ready: (line: string) => boolean,
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; name: string; wrap?: string[] },
): Promise<Started & { readyLine: string }> {
  // `wrap` runs node under a launcher that execs it (nsenter), so the PID stays node's.
  const wrap = opts.wrap ?? [];
  const argv = [...wrap, process.execPath, script, ...args];
  const proc = spawn(argv[0]!, argv.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...opts.env },
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  let exitedNow = false;
  void exited.then(() => (exitedNow = true));
  const stop = async (timeoutMs = 10_000) => {
    if (exitedNow || proc.pid === undefined) return;
    process.kill(proc.pid, "SIGTERM");
    const t = setTimeout(() => {
      if (!exitedNow && proc.pid !== undefined) process.kill(proc.pid, "SIGKILL");
    }, timeoutMs);
    await exited;
    clearTimeout(t);
  };
  const kill9 = async () => {
    if (exitedNow || proc.pid === undefined) return;
    process.kill(proc.pid, "SIGKILL");
    await exited;
  };
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      void stop().then(() =>
        reject(new Error(`${opts.name} did not become ready in time; output:\n${output.slice(-40).join("\n")}`)),
      );
    }, opts.timeoutMs ?? 30_000);
    const onLine = (line: string) => {
      output.push(line);
      if (process.env.GROVE_TEST_VERBOSE) process.stderr.write(`[${opts.name}] ${line}\n`);
      if (!done && ready(line)) {
        done = true;
        clearTimeout(timer);
        resolve({ proc, pid: proc.pid as number, output, exited, stop, kill9, readyLine: line });
      }
    };
    readline.createInterface({ input: proc.stdout! }).on("line", onLine);
    readline.createInterface({ input: proc.stderr! }).on("line", onLine);
    void exited.then((code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${opts.name} exited with ${code} before it was ready; output:\n${output.join("\n")}`));
    });
  });
}

export interface ServerProcess extends Started {
  url: string;
  grpcAddress: string;
  adminToken: string;
  /** The old shared agent token (no longer a credential: agents join with single-use tokens). */
  agentToken: string;
  dataDir: string;
  /** The cluster CA: its file, PEM and pin (grove-agent --ca-hash). */
  caFile: string;
  caPem: string;
  caHash: string;
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export interface ServerOptions {
  dataDir: string;
  etcdEndpoints?: string[];
  /** HOST:PORT for agents (default 127.0.0.1:0). */
  grpcListen?: string;
  extraArgs?: string[];
  /** Extra environment (OTEL_* in the observability test). */
  env?: NodeJS.ProcessEnv;
}

export async function startServer(opts: ServerOptions): Promise<ServerProcess> {
  const args = [
    "--data-dir",
    opts.dataDir,
    "--listen",
    "127.0.0.1:0",
    "--grpc-listen",
    opts.grpcListen ?? "127.0.0.1:0",
    "--etcd-port",
    "0",
  ];
  if (opts.etcdEndpoints?.length) {
    // Replicas of one store share a CA (an operator's, as docs/security.md says).
    const ca = sharedCa(path.dirname(path.resolve(opts.dataDir)));
    args.push("--etcd-endpoints", opts.etcdEndpoints.join(","), "--ca-cert", ca.certFile, "--ca-key", ca.keyFile);
  }
  args.push(...(opts.extraArgs ?? []));
  let s: Started & { readyLine: string };
  try {
    s = await startNode(BIN.server, args, (l) => parseJsonLine(l)?.msg === "grove-server is up", {
      name: "grove-server",
      timeoutMs: 60_000,
      ...(opts.env ? { env: opts.env } : {}),
    });
  } catch (err) {
    await reapEmbeddedEtcd(opts.dataDir); // a server stopped before it was up may have started its etcd
    throw err;
  }
  const stopServer = s.stop;
  s.stop = async (timeoutMs?: number) => {
    await stopServer(timeoutMs);
    await reapEmbeddedEtcd(opts.dataDir);
  };
  const up = parseJsonLine(s.readyLine) as { http: string; grpc: string; caFile: string; caHash: string };
  let caPem: string;
  try {
    caPem = trustServerCa(up.http, up.caFile);
  } catch (err) {
    await s.stop();
    throw err;
  }
  return {
    ...s,
    url: up.http,
    grpcAddress: up.grpc,
    adminToken: fs.readFileSync(path.join(opts.dataDir, "admin-token"), "utf8").trim(),
    agentToken: fs.readFileSync(path.join(opts.dataDir, "agent-token"), "utf8").trim(),
    dataDir: opts.dataDir,
    caFile: up.caFile,
    caPem,
    caHash: up.caHash,
  };
}

/**
 * Replicas of one cluster on `etcdEndpoints`, one under dir/NAME each, sharing the first one's
 * tokens (as every replica of a cluster does). Each is pushed onto `into` once up, so the caller's
 * clean-up stops those started before one that failed.
 */
export async function startReplicas(
  dir: string,
  names: readonly string[],
  etcdEndpoints: string[],
  into: ServerProcess[],
): Promise<void> {
  for (const n of names) {
    const d = path.join(dir, n);
    fs.mkdirSync(d);
    const first = into[0];
    if (first) {
      for (const t of ["admin-token", "agent-token"]) fs.copyFileSync(path.join(first.dataDir, t), path.join(d, t));
    }
    into.push(await startServer({ dataDir: d, etcdEndpoints }));
  }
}

/** The process is gone or a zombie (dead; whoever reaps orphans here may take its time). */
function exitedPid(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/**
 * Kills the embedded etcd a grove-server under `dataDir` left behind. The
 * server stops its etcd on SIGTERM, but a server the harness had to SIGKILL
 * (it did not stop within the timeout: a loaded machine) leaves it running
 * with no parent; on an installed node systemd kills the unit's cgroup, here
 * nobody would (the leak check found such an etcd after a run). Found by its
 * --data-dir under the server's; it runs nowhere else once the server is gone.
 */
async function reapEmbeddedEtcd(dataDir: string): Promise<void> {
  const under = path.resolve(dataDir) + "/";
  const left: number[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (!/(^|\/)etcd$/.test(argv[0] ?? "")) continue;
      if (argv.some((a) => a.startsWith("--data-dir=") && (a.slice(11) + "/").startsWith(under)))
        left.push(Number(pid));
    } catch {
      /* exited meanwhile */
    }
  }
  for (const pid of left) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* exited meanwhile */
    }
  }
  await waitFor(
    `the embedded etcd of ${dataDir} (pids ${left.join(", ")}) to exit`,
    async () => left.every(exitedPid),
    10_000,
  );
}

/**
 * grove-server's etcd client certificate (only it has one): for tests that
 * read or write the embedded etcd behind the server's back.
 */
export function etcdClientTls(server: ServerProcess): { caPem: string; certPem: string; keyPem: string } {
  const pki = path.join(server.dataDir, "pki");
  return {
    caPem: server.caPem,
    certPem: fs.readFileSync(path.join(pki, "etcd-client.crt"), "utf8"),
    keyPem: fs.readFileSync(path.join(pki, "etcd-client.key"), "utf8"),
  };
}

/** etcdctl's flags for the same certificate. */
export function etcdctlTlsArgs(server: ServerProcess): string[] {
  const pki = path.join(server.dataDir, "pki");
  return [
    `--cacert=${path.join(pki, "ca.crt")}`,
    `--cert=${path.join(pki, "etcd-client.crt")}`,
    `--key=${path.join(pki, "etcd-client.key")}`,
  ];
}

/** A single-use join token for `node`, made through the API as `grove token create --node` does. */
export async function createJoinToken(server: ServerProcess, node: string, ttl = "10m"): Promise<string> {
  const res = await postJson(
    `${server.url}/v1/join-tokens`,
    { ttl, node },
    { caPem: server.caPem, token: server.adminToken },
  );
  if (res.status !== 201) throw new Error(`creating a join token failed (${res.status}): ${JSON.stringify(res.body)}`);
  return (res.body as { token: string }).token;
}

/**
 * grove-agent's arguments to reach `server` as `node`: join through the API
 * with a fresh token and the CA pin (an agent that has joined before keeps its
 * certificate and leaves the token unused).
 */
export async function joinArgs(server: ServerProcess, node: string): Promise<string[]> {
  return ["--server", server.url, "--join", await createJoinToken(server, node), "--ca-hash", server.caHash];
}

export interface AgentOptions {
  server: ServerProcess;
  nodeName: string;
  stateDir: string;
  rootfsDir: string;
  cgroupParent: string;
  labels?: Record<string, string>;
  /** Instance networking (default "none": agents in the machine's namespace make no bridges). */
  network?: "cni" | "none";
  /** Run the agent inside this network namespace (nsenter --net=PATH). */
  netnsPath?: string;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /**
   * Pass --stop-containers-on-exit (default true), so stopping the agent at the
   * end of a test stops its containers; false: they outlive it (restart tests).
   */
  stopContainersOnExit?: boolean;
  /** How long it may take to register (default 30 s). */
  timeoutMs?: number;
}

export async function startAgent(o: AgentOptions): Promise<Started> {
  const args = [
    ...(await joinArgs(o.server, o.nodeName)),
    "--node-name",
    o.nodeName,
    "--state-dir",
    o.stateDir,
    "--rootfs-dir",
    o.rootfsDir,
    "--cgroup-parent",
    o.cgroupParent,
  ];
  for (const [k, v] of Object.entries(o.labels ?? {})) args.push("--label", `${k}=${v}`);
  args.push("--network", o.network ?? "none", ...(o.extraArgs ?? []));
  if (o.stopContainersOnExit !== false) args.push("--stop-containers-on-exit");
  return startNode(BIN.agent, args, (l) => parseJsonLine(l)?.msg === "registered with the control plane", {
    name: `grove-agent ${o.nodeName}`,
    timeoutMs: o.timeoutMs ?? 30_000,
    ...(o.env ? { env: o.env } : {}),
    ...(o.netnsPath ? { wrap: ["nsenter", `--net=${o.netnsPath}`] } : {}),
  });
}

/**
 * Thrown by a waitFor() condition to stop waiting at once: what it waits for
 * can no longer happen (e.g. the instance reached a terminal state). Any other
 * error is taken as "not yet" and retried until the deadline.
 */
export class GiveUp extends Error {
  override name = "GiveUp";
}

/**
 * Polls `fn` until it returns a truthy value or the time is up; ends at once
 * (rejecting with its message) when `fn` throws GiveUp.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs; // monotonic: a clock step does not end the wait
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw new Error(`gave up waiting for ${what}: ${err.message}`, { cause: err });
      last = err;
    }
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs the `grove` CLI; resolves with its exit code and output. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The CLI trusts the CA of the server it is pointed at (the harness knows each one's).
    const caFile = caFileOf(env.GROVE_SERVER ?? process.env.GROVE_SERVER);
    const childEnv = { ...process.env, ...(caFile ? { NODE_EXTRA_CA_CERTS: caFile } : {}), ...env };
    const p = spawn(process.execPath, [BIN.cli, ...args], { env: childEnv, cwd: REPO_ROOT });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The node reports Ready. */
export function isReady(n: Node): boolean {
  return n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Waits until the node is registered and Ready. */
export async function waitNodeReady(client: GroveClient, name: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(`node ${name} to be Ready`, async () => isReady(await client.get("Node", name)), timeoutMs);
}
