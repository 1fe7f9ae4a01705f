// grove logs / exec / top end to end on real components: etcd (embedded in
// grove-server), grove-server, grove-agent with the native runtime on this
// kernel. Everything travels CLI -> HTTP API -> control plane -> the agent's
// Connect stream; the node opens no port.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import WebSocket from "ws";
import { ExecChannel, GroveClient, execFrame, type App } from "@grove/api";
import { PRESENCE_REFRESH_MS } from "@grove/control-plane";
import {
  BIN,
  createJoinToken,
  isReady,
  REPO_ROOT,
  runCli,
  waitFor,
  type ServerProcess,
  type Started,
} from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { joinOverApi, rawConnect, registerMessage, tlsCredentials } from "./harness/raw-agent";
import { RUN_TAG, runSlot } from "./harness/run-id";

const NODE = "it-logs-node";
/**
 * The agent gateway marks a node Unknown when its agent's own heartbeats stop for this long,
 * even while other messages (log output) keep its stream busy: max(node grace 5 s, three
 * presence refreshes) (control-plane/src/grpc/agent-gateway.ts, sweep).
 */
const BEAT_STALE_MS = Math.max(5_000, 3 * PRESENCE_REFRESH_MS);
const CGROUP_PARENT = `grove-logs-${RUN_TAG}`;

function app(name: string, script: string, spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", script],
      instances: 1,
      stopGracePeriodSeconds: 1,
      ...spec,
    },
  };
}

/** A running `grove` process whose output we watch. */
interface LiveCli {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function spawnCli(args: string[], env: NodeJS.ProcessEnv): LiveCli {
  const proc = spawn(process.execPath, [BIN.cli, ...args], {
    env: { ...process.env, ...env },
    cwd: REPO_ROOT,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

/** Files under dir the process has open (from /proc/PID/fd). */
function openFilesUnder(pid: number, dir: string): string[] {
  const fdDir = `/proc/${pid}/fd`;
  const out: string[] = [];
  for (const fd of fs.readdirSync(fdDir)) {
    try {
      const target = fs.readlinkSync(path.join(fdDir, fd));
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

interface WsResult {
  out: string;
  exit: { exitCode?: number; signal?: number; error?: { code: string; message: string } } | undefined;
}

describe("grove logs, exec and top over the agent's Connect stream", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started;
  let client: GroveClient;
  let env: NodeJS.ProcessEnv;
  let logDir: string;
  const uids = new Map<string, string>();

  const startTheAgent = () =>
    m.startAgent({
      nodeName: NODE,
      cgroupParent: CGROUP_PARENT,
    });

  async function running(name: string): Promise<void> {
    const inst = await waitFor(
      `${name} to run`,
      async () => {
        const i = await client.get("Instance", name, "default");
        return i.status?.state === "Running" ? i : undefined;
      },
      60_000,
    );
    uids.set(name, inst.metadata.uid ?? "");
  }

  beforeAll(async () => {
    m = await startMachine("grove-logs");
    ({ dir, server } = m);
    agent = await startTheAgent();
    logDir = path.join(dir, "agent", "logs");
    client = m.client;
    env = m.env;
    await client.apply(app("hello", "for i in 1 2 3 4 5; do echo line $i; done; exec sleep 100000"));
    await client.apply(app("ticker", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"));
    await running("hello-0");
    await running("ticker-0");
  }, 120_000);

  afterAll(async () => {
    await agent?.stop(30_000);
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("grove logs --tail 3 prints the last 3 lines", async () => {
    await waitFor("hello's 5 lines", async () =>
      fs.readFileSync(path.join(logDir, `${uids.get("hello-0")}.log`), "utf8").includes("line 5"),
    );
    const r = await runCli(["logs", "hello/0", "--tail", "3"], env);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toBe("line 3\nline 4\nline 5\n");
    const all = await runCli(["logs", "hello-0"], env);
    expect(all.stdout).toBe("line 1\nline 2\nline 3\nline 4\nline 5\n");
    // An App name: its instances (one here).
    expect((await runCli(["logs", "hello", "--tail", "1"], env)).stdout).toBe("line 5\n");
  });

  it("grove logs -f streams new lines and the agent stops following when the client goes", async () => {
    const cli = spawnCli(["logs", "ticker/0", "-f", "--tail", "1"], env);
    const ticks = () => [...cli.stdout().matchAll(/tick (\d+)\n/g)].map((m) => Number(m[1]));
    await waitFor("4 ticks streamed", async () => ticks().length >= 4, 20_000);
    const seen = ticks();
    expect(seen.slice(1)).toEqual(seen.slice(1).map((_, i) => seen[1]! + i)); // in order, none lost
    const logFile = path.join(logDir, `${uids.get("ticker-0")}.log`);
    // The agent follows the log file while the client reads.
    expect(openFilesUnder(agent.pid, logDir)).toContain(logFile);
    cli.proc.kill("SIGINT");
    await cli.exited;
    await waitFor(
      "the agent to stop following",
      async () => !openFilesUnder(agent.pid, logDir).includes(logFile),
      10_000,
    );
  });

  it("logs of an unknown instance answer 404 with a clear message; no token answers 401", async () => {
    const r = await runCli(["logs", "nope/0"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nope-0.*not found/i);
    const res = await fetch(`${server.url}/v1/namespaces/default/instances/nope-0/logs`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
    });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe("NotFound");
    const anon = await fetch(`${server.url}/v1/namespaces/default/instances/hello-0/logs`);
    expect(anon.status).toBe(401);
    const anonExec = await new Promise<number>((resolve) => {
      const ws = new WebSocket(
        `${server.url.replace("http", "ws")}/v1/namespaces/default/instances/hello-0/exec?command=true`,
      );
      ws.on("unexpected-response", (req, res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      ws.on("open", () => resolve(101));
      ws.on("error", () => undefined);
    });
    expect(anonExec).toBe(401);
    const noStats = await runCli(["top", "instances"], { ...env, GROVE_TOKEN: "wrong" });
    expect(noStats.code).toBe(1);
    expect(noStats.stderr).toMatch(/token/);
  });

  it("grove exec runs a command in the instance and exits with its status", async () => {
    const r = await runCli(["exec", "hello/0", "--", "sh", "-c", "echo $$; echo to-stderr >&2; exit 3"], env);
    expect(r.stderr).toBe("to-stderr\n");
    expect(r.code).toBe(3);
    // A new process in the container's pid namespace (its init is 1).
    expect(Number(r.stdout.trim())).toBeGreaterThan(1);
    const ok = await runCli(["exec", "hello/0", "--", "cat", "/proc/1/cmdline"], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("sleep");
    const missing = await runCli(["exec", "hello/0", "--", "/no/such/program"], env);
    expect(missing.code).not.toBe(0);
  });

  it("grove exec -i passes standard input to the command", async () => {
    const cli = spawnCli(["exec", "-i", "hello/0", "--", "sh", "-c", "read x; echo got-$x; cat"], env);
    cli.proc.stdin!.write("abc\n");
    cli.proc.stdin!.end("rest\n");
    expect(await cli.exited).toBe(0);
    expect(cli.stdout()).toBe("got-abc\nrest\n");
    // A command that does not read its input ends the CLI even though stdin stays open.
    const quick = spawnCli(["exec", "-i", "hello/0", "--", "true"], env);
    quick.proc.stdin!.write("unread\n");
    const started = Date.now();
    expect(await quick.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    quick.proc.stdin!.destroy();
  });

  /** Drives the exec WebSocket directly, as `grove exec -it` does. */
  async function wsExec(query: string, steps: (ws: WebSocket, out: () => string) => Promise<void>): Promise<WsResult> {
    const url = `${server.url.replace("http", "ws")}/v1/namespaces/default/instances/hello-0/exec?${query}`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${server.adminToken}` } });
    let out = "";
    let exit: WsResult["exit"];
    ws.on("message", (data: Buffer) => {
      if (data[0] === ExecChannel.Stdout || data[0] === ExecChannel.Stderr) out += data.subarray(1).toString();
      if (data[0] === ExecChannel.Exit) exit = JSON.parse(data.subarray(1).toString()) as WsResult["exit"];
    });
    const closed = new Promise<void>((resolve) => ws.on("close", () => resolve()));
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    await steps(ws, () => out);
    await closed;
    return { out, exit };
  }

  it("grove exec -it runs on a terminal (WebSocket framing: stdin, resize, exit)", async () => {
    const r = await wsExec("command=sh&tty=1&cols=100&rows=30", async (ws, out) => {
      ws.send(execFrame(ExecChannel.Stdin, "tty; stty size; echo sum-$((40+2))\n"));
      await waitFor("the shell's answers", async () => /sum-42/.test(out()), 10_000);
      ws.send(execFrame(ExecChannel.Resize, JSON.stringify({ cols: 120, rows: 40 })));
      ws.send(execFrame(ExecChannel.Stdin, "stty size; exit 7\n"));
    });
    expect(r.out).toMatch(/\/dev\/pts\/\d+/);
    expect(r.out).toContain("30 100");
    expect(r.out).toContain("40 120");
    expect(r.exit).toEqual({ exitCode: 7, signal: 0 });
  });

  it("closing the exec WebSocket kills the process in the container", async () => {
    // A sleep whose argument nothing else on the machine uses.
    const marker = `7${runSlot(1_000_000_000)}`;
    const r = await wsExec(`command=sleep&command=${marker}`, async (ws) => {
      await waitFor("the exec'd process", async () => procsWith(marker).length > 0, 10_000);
      ws.close();
    });
    expect(r.exit).toBeUndefined();
    await waitFor("the exec'd process to be killed", async () => procsWith(marker).length === 0, 10_000);
  });

  function procsWith(marker: string): number[] {
    const out: number[] = [];
    for (const p of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      try {
        if (fs.readFileSync(`/proc/${p}/cmdline`, "utf8") === `sleep\0${marker}\0`) out.push(Number(p));
      } catch {
        // gone
      }
    }
    return out;
  }

  it("grove top and grove describe show the instances' cpu, memory and pids", async () => {
    const top = await runCli(["top", "instances", "--interval", "500"], env);
    expect(top).toMatchObject({ code: 0 });
    const lines = top.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/NAME\s+NODE\s+CPU\s+CPU%\s+MEMORY\s+MEM%\s+PEAK\s+PIDS\s+OOM/);
    const row = lines.find((l) => / hello-0 /.test(l));
    expect(row).toBeDefined();
    const cells = row!.trim().split(/\s+/);
    // NAMESPACE NAME NODE CPU CPU% MEMORY MEM% PEAK PIDS OOM
    expect(cells[2]).toBe(NODE);
    expect(cells[3]).toMatch(/^\d+m$/);
    expect(cells[5]).toMatch(/^\d+(\.\d+)?(Ki|Mi|Gi)?$/);
    expect(Number(cells[8])).toBeGreaterThanOrEqual(1);
    expect(lines.some((l) => / ticker-0 /.test(l))).toBe(true);

    const stats = await client.instanceStats("hello-0", "default");
    expect(stats.memoryBytes).toBeGreaterThan(0);
    expect(stats.memoryPeakBytes).toBeGreaterThanOrEqual(stats.memoryBytes);
    expect(stats.pids).toBeGreaterThanOrEqual(1);
    expect(stats.cpuUsageNs).toBeGreaterThan(0);

    const nodes = await runCli(["top", "nodes", "--interval", "200"], env);
    expect(nodes.stdout).toMatch(new RegExp(`${NODE}\\s+2\\s+\\d+m`));
    const apps = await runCli(["top", "apps", "--interval", "200"], env);
    expect(apps.stdout).toMatch(/default\s+ticker\s+1\s+\d+m/);

    const d = await runCli(["describe", "instance", "hello-0"], env);
    expect(d.stdout).toMatch(/Usage:/);
    expect(d.stdout).toMatch(/Memory:\s+\d/);
    expect(d.stdout).toMatch(/PIDs:\s+\d+ of \d+/);
    expect(d.stdout).toMatch(/OOM kills:\s+0/);
    const da = await runCli(["describe", "app", "ticker"], env);
    expect(da.stdout).toMatch(/Usage:\n\s+INSTANCE\s+NODE\s+CPU TIME\s+MEMORY\s+PEAK\s+PIDS\s+OOM\n\s+ticker-0\s+/);
  });

  it("heartbeats keep flowing while a big logs -f runs", async () => {
    await client.apply(
      app(
        "flood",
        "while true; do echo 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789; done",
        {
          resources: { cpu: "300m", memory: "32Mi" },
        },
      ),
    );
    await running("flood-0");
    const readyOf = async () => (await client.get("Node", NODE)).status?.conditions?.find((c) => c.type === "Ready");
    const before = await readyOf();
    expect(before?.status).toBe("True");
    // Longer than BEAT_STALE_MS: the gateway times the agent's own heartbeats (not the log output
    // beside them on the stream, nor the replica's presence beat that Node reads show as
    // lastHeartbeatTime), so had they stalled that long the node would have gone Unknown meanwhile
    // (the next test shows that rule).
    const floodMs = BEAT_STALE_MS + 5_000;
    const seen = new Set<string>();
    let bytes = 0;
    const cli = spawn(process.execPath, [BIN.cli, "logs", "flood/0", "-f"], { env: { ...process.env, ...env } });
    // Listened for at once: a stream that broke mid-flood ends the CLI before the finally below.
    const exited = new Promise((r) => cli.on("exit", r));
    cli.stdout.on("data", (d: Buffer) => (bytes += d.length));
    try {
      // Timed from the first output, not from the CLI's start (a second or two on a busy machine).
      await waitFor("the flood's first output", async () => bytes > 0, 30_000);
      const started = performance.now();
      while (performance.now() - started < floodMs) {
        const ready = await readyOf();
        seen.add(`${ready?.status} ${ready?.reason} since ${ready?.lastTransitionTime}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      cli.kill("SIGINT");
      await exited;
      await client.delete("App", "flood", "default");
    }
    process.stderr.write(`logs -f flood: ${bytes} bytes in ${floodMs / 1000} s; Ready: ${[...seen].join("; ")}\n`);
    // A lot went through the stream meanwhile...
    expect(bytes).toBeGreaterThan(2 * 1024 * 1024);
    // ...and the node was Ready throughout, without a transition.
    expect([...seen]).toEqual([`True ${before?.reason} since ${before?.lastTransitionTime}`]);
  }, 90_000);

  it(`a stream that carries output but no heartbeat for ${BEAT_STALE_MS / 1000} s: the node goes Unknown (AgentNotHeartbeating)`, async () => {
    // A hand-driven agent (its own join token and certificate) whose stream is never silent:
    // output of a sub-stream nobody opened every 250 ms (the gateway drops it), never a heartbeat.
    const name = "it-logs-mute";
    const joined = await joinOverApi(server.url, server.caPem, await createJoinToken(server, name), name);
    expect(joined.status).toBe(200);
    const stream = rawConnect(server.grpcAddress, tlsCredentials(server.caPem, joined.pair!), 120_000);
    let chatter: NodeJS.Timeout | undefined;
    try {
      stream.send(registerMessage(name));
      await waitFor(`${name} registered`, async () => stream.received.some((m) => m.registered));
      const t0 = performance.now();
      chatter = setInterval(
        () => stream.send({ streamOutput: { streamId: 4242, fd: 1, data: Buffer.from("x\n") } }),
        250,
      );
      expect(isReady(await client.get("Node", name))).toBe(true);
      const node = await waitFor(
        `${name} not Ready`,
        async () => {
          const n = await client.get("Node", name);
          return isReady(n) ? undefined : n;
        },
        BEAT_STALE_MS + 30_000,
      );
      const afterMs = performance.now() - t0;
      process.stderr.write(
        `no heartbeats, output flowing: ${name} not Ready ${(afterMs / 1000).toFixed(1)} s after registering\n`,
      );
      // Not at the 5 s silence grace (the stream was never silent), but once the beats were stale.
      expect(afterMs).toBeGreaterThanOrEqual(BEAT_STALE_MS - 1_000);
      expect(node.status?.conditions?.find((c) => c.type === "Ready")).toMatchObject({
        status: "Unknown",
        reason: "AgentNotHeartbeating",
        message: expect.stringMatching(/^no heartbeat from the agent for \d+\.\ds$/),
      });
    } finally {
      if (chatter) clearInterval(chatter);
      stream.close();
      await client.delete("Node", name).catch(() => undefined);
    }
  }, 120_000);

  it("the agent killed mid-stream: logs -f and exec end with an error promptly", async () => {
    const logs = spawnCli(["logs", "ticker/0", "-f"], env);
    await waitFor("ticks", async () => /tick/.test(logs.stdout()), 10_000);
    const exec = spawnCli(["exec", "hello/0", "--", "sh", "-c", "echo exec-running; exec sleep 1000"], env);
    await waitFor("the exec'd command to run", async () => exec.stdout().includes("exec-running"), 10_000);
    const killedAt = performance.now();
    await agent.kill9();
    try {
      const [logsCode, execCode] = await Promise.all([logs.exited, exec.exited]);
      expect(performance.now() - killedAt).toBeLessThan(5_000);
      expect(logsCode).toBe(1);
      expect(logs.stderr()).toMatch(/broke/);
      expect(execCode).toBe(1);
      expect(exec.stderr()).toMatch(/agent of node .* disconnected/);
    } finally {
      // Back, also when an assertion above failed: the tests after this one (in any order) use it,
      // and the new agent adopts the containers and stops them at the end.
      agent = await startTheAgent();
    }
    const after = await runCli(["logs", "hello/0", "--tail", "1"], env);
    expect(after.stdout).toBe("line 5\n");
  }, 60_000);
});
