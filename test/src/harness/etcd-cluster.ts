// A real multi-member etcd cluster on loopback for HA tests: N `etcd`
// processes (Debian etcd-server) with their own data directories under one
// temp dir, members that can be killed (-9) and started again on the same
// data, and optionally a second client port on member 0 (`cutPort`) so a
// test can cut the clients that use it from etcd with iptables without
// touching anyone else's connections. With `tls` the members serve their
// client ports over TLS and demand client certificates (etcd's
// --client-cert-auth), as an installed external etcd does.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import { createCa, issueKeyPair } from "@grove/control-plane";
import { waitFor } from "./processes";
import { RUN_TAG } from "./run-id";

/** Files and PEMs of the client side of a TLS etcd: grove-server's --etcd-cafile/--etcd-certfile/--etcd-keyfile. */
export interface EtcdClientFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

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
  /** With `tls`: the CA and a client certificate the members accept. */
  clientTls: EtcdClientFiles | undefined;
  private serverTls: { certFile: string; keyFile: string } | undefined;

  private constructor(
    readonly dir: string,
    private readonly token: string,
  ) {}

  static async start(dir: string, size: number, opts: { cutPort?: boolean; tls?: boolean } = {}): Promise<EtcdCluster> {
    const c = new EtcdCluster(dir, `grove-${RUN_TAG}-${path.basename(dir)}`);
    if (opts.tls) c.makePki();
    for (let i = 0; i < size; i++) {
      c.members.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort() });
    }
    if (opts.cutPort) c.cutPort = await freePort();
    c.members.forEach((_, i) => c.spawnMember(i));
    await c.waitHealthy();
    return c;
  }

  private get scheme(): string {
    return this.clientTls ? "https" : "http";
  }

  /** Client URLs of every member. */
  get endpoints(): string[] {
    return this.members.map((m) => `${this.scheme}://127.0.0.1:${m.clientPort}`);
  }

  /** Member 0's second client URL (for the client a test will cut off). */
  get cutEndpoint(): string {
    return `${this.scheme}://127.0.0.1:${this.cutPort}`;
  }

  /** A CA, a serving certificate for 127.0.0.1 and a client certificate, under dir/pki. */
  private makePki(): void {
    const pki = path.join(this.dir, "pki");
    fs.mkdirSync(pki, { recursive: true, mode: 0o700 });
    const ca = createCa("grove-test-etcd-ca");
    const year = 365 * 86_400_000;
    const server = issueKeyPair(ca, {
      commonName: "etcd",
      sans: ["127.0.0.1", "localhost"],
      usage: "server-and-client",
      validForMs: year,
    });
    const client = issueKeyPair(ca, { commonName: "grove-server", usage: "client", validForMs: year });
    const write = (name: string, pem: string) => {
      const f = path.join(pki, name);
      fs.writeFileSync(f, pem, { mode: 0o600 });
      return f;
    };
    this.serverTls = { certFile: write("server.crt", server.certPem), keyFile: write("server.key", server.keyPem) };
    this.clientTls = {
      caFile: write("ca.crt", ca.certPem),
      certFile: write("client.crt", client.certPem),
      keyFile: write("client.key", client.keyPem),
      caPem: ca.certPem,
      certPem: client.certPem,
      keyPem: client.keyPem,
    };
  }

  /** etcdctl's TLS flags (none without `tls`). */
  get etcdctlArgs(): string[] {
    const t = this.clientTls;
    return t ? [`--cacert=${t.caFile}`, `--cert=${t.certFile}`, `--key=${t.keyFile}`] : [];
  }

  private spawnMember(i: number): void {
    const m = this.members[i]!;
    const initial = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(",");
    const clientUrls = [`${this.scheme}://127.0.0.1:${m.clientPort}`];
    if (i === 0 && this.cutPort) clientUrls.push(`${this.scheme}://127.0.0.1:${this.cutPort}`);
    const tls =
      this.serverTls && this.clientTls
        ? [
            `--cert-file=${this.serverTls.certFile}`,
            `--key-file=${this.serverTls.keyFile}`,
            `--trusted-ca-file=${this.clientTls.caFile}`,
            "--client-cert-auth",
          ]
        : [];
    const dataDir = path.join(this.dir, m.name);
    const fresh = !fs.existsSync(dataDir);
    const log = fs.openSync(path.join(this.dir, `${m.name}.log`), "a");
    m.proc = spawn(
      "etcd",
      [
        `--name=${m.name}`,
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${clientUrls.join(",")}`,
        `--advertise-client-urls=${this.scheme}://127.0.0.1:${m.clientPort}`,
        `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-cluster=${initial}`,
        `--initial-cluster-state=${fresh ? "new" : "existing"}`,
        `--initial-cluster-token=${this.token}`,
        "--heartbeat-interval=100",
        "--election-timeout=1000",
        ...tls,
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
        const ok = await Promise.all(running.map((m) => health(m.clientPort, this.clientTls)));
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

function health(port: number, tls: EtcdClientFiles | undefined): Promise<boolean> {
  if (!tls) {
    return fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) })
      .then(async (r) => r.ok && ((await r.json()) as { health?: string }).health === "true")
      .catch(() => false);
  }
  return new Promise((resolve) => {
    const req = https.get(
      `https://127.0.0.1:${port}/health`,
      { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem, timeout: 1000 },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => {
          try {
            resolve(res.statusCode === 200 && (JSON.parse(text) as { health?: string }).health === "true");
          } catch {
            resolve(false);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}
