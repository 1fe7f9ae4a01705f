// The embedded store: grove-server with no --etcd-endpoints runs a one-member
// etcd as its child (like k3s), keeps it running, and stops it on shutdown.
//
// Data lives in <dataDir>/etcd, the log in <dataDir>/etcd.log. The member
// listens on loopback only. If etcd dies while we did not ask it to, it is
// restarted on the same ports with exponential backoff; clients reconnect.

import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as path from "node:path";
import { Backoff } from "@grove/common";
import {
  etcdArgs,
  findFreePort,
  listensOn,
  tailFile,
  waitForHealthy,
  type EtcdServerTls,
  type HealthTls,
} from "./etcd-process";

/** The subset of a pino logger this uses. */
export interface EtcdLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface EmbeddedEtcdOptions {
  /** Grove's data directory; etcd gets <dataDir>/etcd and <dataDir>/etcd.log. */
  dataDir: string;
  /** Client port on 127.0.0.1. Default 2379; 0 picks a free port. */
  port?: number;
  /** Alias of `port`. */
  clientPort?: number;
  /** Peer port on 127.0.0.1. Default port + 1 (2380) when port is fixed; a free port when port is 0. */
  peerPort?: number;
  /** The etcd binary. Default "etcd" (on PATH; Debian etcd-server puts it in /usr/bin). */
  etcdBinary?: string;
  /** How long start (and each restart) may take to become healthy. Default 30 s. */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. Default 10 s. */
  stopTimeoutMs?: number;
  /** Restart backoff after an unexpected exit: first delay and cap. Defaults 200 ms and 10 s. */
  restartBackoffBaseMs?: number;
  restartBackoffMaxMs?: number;
  quotaBackendBytes?: number;
  /** etcd's periodic auto-compaction retention ("1h" default, "0" off); see etcdArgs. */
  autoCompactionRetention?: string;
  logger?: EtcdLogger;
  /**
   * TLS with client-certificate authentication on both ports: etcd's own
   * certificate files, and the client certificate this supervisor checks
   * /health with (grove-server's own).
   */
  tls?: { server: EtcdServerTls; client: HealthTls };
}

const silent: EtcdLogger = { info() {}, warn() {}, error() {} };

/**
 * How many times start() picks new ports when the ones it chose were taken
 * before etcd could bind them. etcd cannot be handed a bound socket and cannot
 * usefully listen on port 0 (it advertises the URLs it was given, and its own
 * gateway dials them), so with port 0 we must pick ports, close them and let
 * etcd bind: another process can take one in between. Then etcd fails with
 * EADDRINUSE, or, worse, the /health we poll is another etcd's; both are
 * detected and retried on fresh ports. Each try takes milliseconds to fail;
 * five lost races in a row mean something else is wrong.
 */
const PORT_ATTEMPTS = 5;

/** The client or peer port is held by another process. */
class PortTaken extends Error {}

/**
 * Events: "ready" (pid) after each (re)start is healthy, "exit" (code, signal)
 * on every exit, "restarting" (attempt, delayMs) before a restart.
 */
export class EmbeddedEtcd extends EventEmitter {
  private child: ChildProcess | undefined;
  private clientPort = 0;
  private peerPort = 0;
  private stopping = false;
  private started = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly restartBackoff: Backoff;
  private exited: Promise<void> = Promise.resolve();
  private readonly log: EtcdLogger;
  /** How many times the supervisor restarted etcd. */
  restarts = 0;

  constructor(private readonly opts: EmbeddedEtcdOptions) {
    super();
    this.log = opts.logger ?? silent;
    this.restartBackoff = new Backoff({
      initialMs: opts.restartBackoffBaseMs ?? 200,
      maxMs: opts.restartBackoffMaxMs ?? 10_000,
    });
  }

  get dataDir(): string {
    return path.join(this.opts.dataDir, "etcd");
  }

  get logFile(): string {
    return path.join(this.opts.dataDir, "etcd.log");
  }

  /** Client URLs for the Store, e.g. ["http://127.0.0.1:2379"]. Valid after start(). */
  get endpoints(): string[] {
    if (!this.clientPort) throw new Error("EmbeddedEtcd: endpoints are known only after start()");
    return [this.clientUrl];
  }

  get clientUrl(): string {
    return `${this.opts.tls ? "https" : "http"}://127.0.0.1:${this.clientPort}`;
  }

  /** Its client and peer ports (valid after start()): node ports no App may publish. */
  get ports(): { client: number; peer: number } {
    return { client: this.clientPort, peer: this.peerPort };
  }

  /** The running etcd's PID (undefined while it is down). */
  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** Starts etcd and resolves when it answers /health. */
  async start(): Promise<void> {
    if (this.started) throw new Error("EmbeddedEtcd already started");
    this.started = true;
    this.stopping = false;
    const port = this.opts.port ?? this.opts.clientPort ?? 2379;
    fs.mkdirSync(this.opts.dataDir, { recursive: true });
    fs.mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    for (let attempt = 1; ; attempt++) {
      this.clientPort = port === 0 ? await findFreePort() : port;
      this.peerPort = this.opts.peerPort ?? (port === 0 ? await findFreePort() : port + 1);
      if (this.peerPort === this.clientPort) this.peerPort = await findFreePort();
      try {
        await this.launch();
        return;
      } catch (err) {
        await this.stop();
        // Only ports we picked ourselves are worth another pick (see PORT_ATTEMPTS).
        if (!(err instanceof PortTaken && port === 0 && attempt < PORT_ATTEMPTS)) throw err;
        this.log.warn(
          { attempt, clientPort: this.clientPort, peerPort: this.peerPort, err: err.message },
          "embedded etcd: a port we picked was taken before etcd bound it; picking new ones",
        );
        this.started = true;
        this.stopping = false;
      }
    }
  }

  /** Spawns etcd once and waits for it to be healthy. */
  private async launch(): Promise<void> {
    const logFd = fs.openSync(this.logFile, "a");
    const logStart = fs.fstatSync(logFd).size;
    let child: ChildProcess;
    try {
      child = spawn(
        this.opts.etcdBinary ?? "etcd",
        etcdArgs({
          name: "grove",
          dataDir: this.dataDir,
          clientPort: this.clientPort,
          peerPort: this.peerPort,
          quotaBackendBytes: this.opts.quotaBackendBytes,
          autoCompactionRetention: this.opts.autoCompactionRetention,
          ...(this.opts.tls ? { tls: this.opts.tls.server } : {}),
        }),
        { stdio: ["ignore", logFd, logFd] },
      );
    } finally {
      fs.closeSync(logFd); // the child holds its own copy
    }
    this.child = child;
    let exitReason: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once("error", (err) => {
        exitReason = `could not run etcd: ${err.message}`;
        resolve();
      });
      child.once("exit", (code, signal) => {
        exitReason = `etcd exited (code ${code}, signal ${signal})`;
        this.onExit(child, code, signal);
        resolve();
      });
    });
    try {
      await waitForHealthy(this.clientUrl, this.opts.startTimeoutMs ?? 30_000, () => exitReason, this.opts.tls?.client);
    } catch (err) {
      const tail = tailFile(this.logFile);
      const msg = `${(err as Error).message}; log ${this.logFile}:\n${tail}`;
      // This run's own lines only: an old failure in the log must not count.
      const portTaken = /address already in use/.test(tailFile(this.logFile, 64 * 1024, logStart));
      throw portTaken ? new PortTaken(msg) : new Error(msg);
    }
    // What answered /health may be another process on a port etcd could not
    // bind (another etcd even): it counts only if our child holds the socket.
    if (child.pid !== undefined && listensOn(child.pid, this.clientPort) === false) {
      child.kill("SIGKILL");
      throw new PortTaken(
        `127.0.0.1:${this.clientPort} is served by another process, not by the etcd we started (pid ${child.pid}); log ${this.logFile}:\n${tailFile(this.logFile)}`,
      );
    }
    this.restartBackoff.reset();
    this.log.info({ pid: child.pid, endpoints: this.endpoints }, "embedded etcd ready");
    this.emit("ready", child.pid);
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child === child) this.child = undefined;
    this.emit("exit", code, signal);
    if (this.stopping || !this.started) return;
    const delay = this.restartBackoff.next();
    const attempt = this.restartBackoff.attempt;
    this.log.warn(
      { pid: child.pid, code, signal, delayMs: delay, attempt, log: this.logFile },
      "embedded etcd exited unexpectedly; restarting",
    );
    this.emit("restarting", attempt, delay);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.restarts++;
      this.launch().catch((err: Error) => {
        // A failed launch that exited schedules its own retry via onExit; one
        // that hangs unhealthy is killed so the next attempt starts clean.
        this.log.error({ err: err.message }, "embedded etcd restart failed");
        if (this.child && !this.stopping) this.child.kill("SIGKILL");
      });
    }, delay);
  }

  /** Resolves once etcd is healthy again (e.g. after a supervised restart). */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    await waitForHealthy(
      this.clientUrl,
      timeoutMs,
      () => (this.stopping ? "EmbeddedEtcd is stopping" : undefined),
      this.opts.tls?.client,
    );
  }

  /** SIGTERM, then SIGKILL after stopTimeoutMs; resolves when etcd has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timeoutMs = this.opts.stopTimeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.log.warn({ pid: child.pid, timeoutMs }, "embedded etcd did not stop on SIGTERM; killing it");
        child.kill("SIGKILL");
        await this.exited;
      }
    }
    this.child = undefined;
    this.started = false;
  }
}
