// Small helpers for running an etcd member as a child process: its command
// line, free loopback ports, health checks and reading the tail of its log.

import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import { retry } from "@grove/common";

export interface EtcdArgsOptions {
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  host?: string;
  /** Backend quota; etcd's default is 2 GiB. */
  quotaBackendBytes?: number;
  /**
   * History etcd keeps before compacting it on its own (periodic mode), e.g.
   * "1h" or "30m"; "0" turns auto-compaction off. Default "1h".
   */
  autoCompactionRetention?: string;
  /**
   * TLS on both ports with client-certificate authentication: only holders of
   * a certificate the CA signed (grove-server) may talk to etcd.
   */
  tls?: EtcdServerTls;
}

/** Files etcd reads (paths, as its flags take them). */
export interface EtcdServerTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** The etcd 3.4 command line for a single-member cluster on loopback. */
export function etcdArgs(o: EtcdArgsOptions): string[] {
  const host = o.host ?? "127.0.0.1";
  const scheme = o.tls ? "https" : "http";
  const clientUrl = `${scheme}://${host}:${o.clientPort}`;
  const peerUrl = `${scheme}://${host}:${o.peerPort}`;
  const args = [
    `--name=${o.name}`,
    `--data-dir=${o.dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${o.name}=${peerUrl}`,
    "--initial-cluster-state=new",
    `--initial-cluster-token=${o.name}-${o.clientPort}`,
    "--logger=zap",
    "--log-outputs=stderr",
  ];
  if (o.tls) {
    const { caFile, certFile, keyFile } = o.tls;
    args.push(
      "--client-cert-auth",
      `--trusted-ca-file=${caFile}`,
      `--cert-file=${certFile}`,
      `--key-file=${keyFile}`,
      "--peer-client-cert-auth",
      `--peer-trusted-ca-file=${caFile}`,
      `--peer-cert-file=${certFile}`,
      `--peer-key-file=${keyFile}`,
    );
  }
  if (o.quotaBackendBytes !== undefined) args.push(`--quota-backend-bytes=${o.quotaBackendBytes}`);
  // Without compaction every write (heartbeats, status) stays in etcd's
  // history until the backend quota is full and etcd refuses writes (NOSPACE).
  const retention = o.autoCompactionRetention ?? "1h";
  if (!/^(0|\d+[hms]|\d+)$/.test(retention)) {
    throw new Error(`auto-compaction retention "${retention}": use a duration such as 1h, 30m or 90s, or 0 for off`);
  }
  if (retention !== "0") {
    args.push("--auto-compaction-mode=periodic", `--auto-compaction-retention=${retention}`);
  }
  return args;
}

/** Asks the kernel for a free TCP port on the host (bind port 0, read it, close). */
export function findFreePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("could not find a free port"))));
    });
  });
}

/**
 * Whether process `pid` holds the socket listening on 127.0.0.1:`port` (Linux
 * /proc: the listening socket's inode among the process's descriptors).
 * Undefined when /proc cannot tell (no such listener in /proc/net/tcp, or the
 * descriptors are unreadable).
 */
export function listensOn(pid: number, port: number): boolean | undefined {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let inode: string | undefined;
  try {
    for (const line of fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode (field 9); st 0A is LISTEN
      if (f[1] === local && f[3] === "0A") inode = f[9];
    }
    if (!inode) return undefined;
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return true;
      } catch {
        // closed while we looked
      }
    }
    return false;
  } catch {
    return undefined;
  }
}

/** A client certificate (PEM) for /health on an etcd with --client-cert-auth. */
export interface HealthTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** One GET of etcd's /health; true when it reports healthy. Never throws. */
export function checkHealth(clientUrl: string, timeoutMs = 1000, tls?: HealthTls): Promise<boolean> {
  return new Promise((resolve) => {
    const get = clientUrl.startsWith("https:") ? https.get : http.get;
    const options = tls
      ? { timeout: timeoutMs, ca: tls.caPem, cert: tls.certPem, key: tls.keyPem }
      : { timeout: timeoutMs };
    const req = get(`${clientUrl}/health`, options, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        try {
          resolve(res.statusCode === 200 && (JSON.parse(body) as { health?: unknown }).health === "true");
        } catch {
          resolve(false);
        }
      });
      res.on("error", () => resolve(false));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(false));
  });
}

/** Stops waitForHealthy's polling at once. */
class GaveUp extends Error {}

/**
 * Polls /health every 100 ms until it answers healthy. Rejects when
 * `timeoutMs` passes (on the monotonic clock) or `gaveUp()` says to stop
 * (e.g. the process exited).
 */
export async function waitForHealthy(
  clientUrl: string,
  timeoutMs: number,
  gaveUp: () => string | undefined = () => undefined,
  tls?: HealthTls,
): Promise<void> {
  await retry(
    async () => {
      const why = gaveUp();
      if (why) throw new GaveUp(why);
      if (!(await checkHealth(clientUrl, 1000, tls)))
        throw new Error(`etcd at ${clientUrl} not healthy after ${timeoutMs} ms`);
    },
    { initialMs: 100, maxMs: 100, factor: 1, timeoutMs, shouldRetry: (err) => !(err instanceof GaveUp) },
  );
}

/**
 * The last `maxBytes` of a file as text, not reaching back before byte `from`
 * ("" if missing); for error messages.
 */
export function tailFile(path: string, maxBytes = 2000, from = 0): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, "r");
    const size = fs.fstatSync(fd).size;
    const len = Math.max(0, Math.min(size - from, maxBytes));
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    return buf.toString("utf8");
  } catch {
    return "";
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
