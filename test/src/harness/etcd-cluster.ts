// A real multi-member etcd cluster on loopback for HA tests: N `etcd`
// processes (Debian etcd-server) with their own data directories under one
// temp dir, members that can be killed (-9) and started again on the same
// data, and optionally a second client port on member 0 (`cutPort`) so a
// test can cut the clients that use it from etcd with iptables without
// touching anyone else's connections.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { waitFor } from "./processes";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  proc?: ChildProcess;
  exited?: Promise<void>;
}

export class EtcdCluster {
  private members: Member[] = [];
  /** Member 0's second client port (see the header), when asked for. */
  cutPort: number | undefined;

  private constructor(
    readonly dir: string,
    private readonly token: string,
  ) {}

  static async start(dir: string, size: number, opts: { cutPort?: boolean } = {}): Promise<EtcdCluster> {
    const c = new EtcdCluster(dir, `grove-${process.pid}-${path.basename(dir)}`);
    for (let i = 0; i < size; i++) {
      c.members.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort() });
    }
    if (opts.cutPort) c.cutPort = await freePort();
    c.members.forEach((_, i) => c.spawnMember(i));
    await c.waitHealthy();
    return c;
  }

  /** Client URLs of every member. */
  get endpoints(): string[] {
    return this.members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  /** Member 0's second client URL (for the client a test will cut off). */
  get cutEndpoint(): string {
    return `http://127.0.0.1:${this.cutPort}`;
  }

  private spawnMember(i: number): void {
    const m = this.members[i]!;
    const initial = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(",");
    const clientUrls = [`http://127.0.0.1:${m.clientPort}`];
    if (i === 0 && this.cutPort) clientUrls.push(`http://127.0.0.1:${this.cutPort}`);
    const dataDir = path.join(this.dir, m.name);
    const fresh = !fs.existsSync(dataDir);
    const log = fs.openSync(path.join(this.dir, `${m.name}.log`), "a");
    m.proc = spawn(
      "etcd",
      [
        `--name=${m.name}`,
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${clientUrls.join(",")}`,
        `--advertise-client-urls=http://127.0.0.1:${m.clientPort}`,
        `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-cluster=${initial}`,
        `--initial-cluster-state=${fresh ? "new" : "existing"}`,
        `--initial-cluster-token=${this.token}`,
        "--heartbeat-interval=100",
        "--election-timeout=1000",
      ],
      { stdio: ["ignore", log, log] },
    );
    fs.closeSync(log);
    m.exited = new Promise((resolve) => m.proc!.once("exit", () => resolve()));
  }

  /** Every running member answers /health (the cluster has a leader). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const running = this.members.filter((m) => m.proc && m.proc.exitCode === null && m.proc.signalCode === null);
    await waitFor(
      "etcd members healthy",
      async () => {
        const ok = await Promise.all(running.map((m) => health(m.clientPort)));
        return ok.every(Boolean) || undefined;
      },
      timeoutMs,
    );
  }

  /** kill -9 of member i. */
  async kill(i: number): Promise<void> {
    const m = this.members[i]!;
    if (!m.proc || m.proc.exitCode !== null || m.proc.signalCode !== null) return;
    m.proc.kill("SIGKILL");
    await m.exited;
  }

  /** Starts member i again on its data directory. */
  restart(i: number): void {
    this.spawnMember(i);
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.kill(i);
  }

  /** The tail of member i's log, for failure messages. */
  log(i: number): string {
    try {
      return fs.readFileSync(path.join(this.dir, `${this.members[i]!.name}.log`), "utf8").slice(-3000);
    } catch {
      return "";
    }
  }
}

function health(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) })
    .then(async (r) => r.ok && ((await r.json()) as { health?: string }).health === "true")
    .catch(() => false);
}
