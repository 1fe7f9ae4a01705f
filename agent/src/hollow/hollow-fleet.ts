// Hollow agents: many grove-agents in one process, for scale benchmarks
// (kubemark's hollow nodes). Each hollow node is the real agent minus the
// host: it joins with a single-use token and gets its own node certificate
// (mutual TLS on its own gRPC connection), registers over the real
// ControlPlaneConnection, heartbeats, receives its desired sets through the
// real DesiredStateGuard and converges them with the real Reconciler, whose
// runtime (HollowRuntime) only pretends to start containers. No networking,
// images or private roots: instances point at a rootfs directory that is
// never entered.
//
// Only the key is shared: every hollow node's certificate request is signed
// with one RSA key made once, since making a 2048-bit key costs about half a
// second of CPU (5,000 nodes: 40 minutes). The certificates, and so the
// identities the control plane checks, are each node's own.
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { pino, type Logger } from "pino";
import type { NodeInfo } from "@grove/proto";
import { ControlPlaneConnection } from "../grpc/client";
import { DesiredStateGuard } from "../grpc/desired-state-guard";
import { channelCredentials, join, loadNodeCredentials, newNodeKey, type NodeKeyPair } from "../join";
import { Reconciler } from "../reconcile/reconciler";
import { agentVersion } from "../host";
import { HollowRuntime } from "./hollow-runtime";

export interface HollowFleetOptions {
  /** https://HOST:PORT of grove-server's API (joins go there). */
  server: string;
  /** The cluster CA's pin (grove-agent --ca-hash). */
  caHash: string;
  /** A single-use join token for the node (POST /v1/join-tokens, `grove token create`). */
  joinToken: (node: string) => Promise<string>;
  /** gRPC addresses of other replicas to move to (the first is learnt at the join). */
  otherAddresses?: readonly string[];
  /** Each node's state directory is <stateRoot>/<node>: its certificate and cluster.json. */
  stateRoot: string;
  /** Node names: <namePrefix><index, 5 digits> (default "hollow-"). */
  namePrefix?: string;
  /** What each node offers (default 4 cpus, 8 GiB, 4096 pids). */
  capacity?: { cpuMillis: number; memoryBytes: number; pids: number };
  labels?: Record<string, string>;
  /** Joins and first registrations in flight at once (default 8). */
  startConcurrency?: number;
  logger?: Logger;
}

/**
 * How long a hollow node keeps trying to join before the fleet gives up. A
 * store that is unreachable for a few seconds under a registration storm
 * (503) used to end a 2,000-node benchmark after five tries in 10 s; a real
 * agent is restarted by its service manager for as long as it takes.
 */
const JOIN_GIVE_UP_MS = 180_000;
/** The longest wait between two tries (the waits double from 1 s, with jitter so a storm spreads out). */
const JOIN_BACKOFF_MAX_MS = 15_000;

/** One hollow node: the real agent pieces over a HollowRuntime. */
export class HollowNode {
  readonly runtime = new HollowRuntime();
  private readonly reconciler: Reconciler;
  private connection: ControlPlaneConnection | undefined;
  /** Joins refused and tried again (the benchmark reports them). */
  joinRetries = 0;

  constructor(
    readonly name: string,
    private readonly index: number,
    private readonly stateDir: string,
    private readonly rootfsDir: string,
    private readonly opts: HollowFleetOptions,
    private readonly key: NodeKeyPair,
    private readonly log: Logger,
  ) {
    this.reconciler = new Reconciler({
      runtime: this.runtime,
      rootfsDir,
      stateDir,
      logger: log,
      onStatus: (status) => this.connection?.reportStatus(status),
      onReleased: (status) => this.connection?.reportStatus(status),
      withoutContactMs: () => this.connection?.withoutContactMs() ?? 0,
    });
  }

  get registered(): boolean {
    return this.connection?.registered ?? false;
  }

  /** Joins (once per state directory), starts the reconciler and dials the control plane. */
  async start(): Promise<void> {
    fs.mkdirSync(this.stateDir, { recursive: true });
    const credentials = loadNodeCredentials(this.stateDir) ?? (await this.joinWithRetries());
    const others = (this.opts.otherAddresses ?? []).filter((a) => a !== credentials.grpcAddress);
    const guard = new DesiredStateGuard({ stateDir: this.stateDir });
    await this.reconciler.start();
    this.connection = new ControlPlaneConnection({
      address: credentials.grpcAddress,
      addresses: [credentials.grpcAddress, ...others],
      token: "",
      credentials: channelCredentials(credentials),
      reconciler: this.reconciler,
      guard,
      logger: this.log,
      nodeInfo: () => this.nodeInfo(),
    });
    this.connection.start();
  }

  /**
   * Joins with a fresh token, again after a refusal the server may get over
   * (a busy store answers 503): a real agent is restarted by its service
   * manager instead. Gives up after JOIN_GIVE_UP_MS (monotonic).
   */
  private async joinWithRetries() {
    const giveUpAt = performance.now() + JOIN_GIVE_UP_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const token = await this.opts.joinToken(this.name);
        const o = { server: this.opts.server, caHash: this.opts.caHash, token, nodeName: this.name };
        return await join(this.stateDir, o, this.key);
      } catch (err) {
        if (performance.now() >= giveUpAt) throw err;
        this.joinRetries++;
        this.log.warn({ err, attempt }, "hollow node could not join; trying again");
        const backoff = Math.min(JOIN_BACKOFF_MAX_MS, 1_000 * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, backoff / 2 + Math.random() * (backoff / 2)));
      }
    }
  }

  stop(): void {
    this.connection?.stop();
    this.reconciler.close();
    this.runtime.stopAll();
  }

  private nodeInfo(): NodeInfo {
    const c = this.opts.capacity ?? { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30, pids: 4096 };
    // Made-up addresses outside any cluster CIDR (TEST-NET-style 198.18.0.0/15, for benchmarks).
    const address = `198.${18 + (this.index >> 16)}.${(this.index >> 8) & 255}.${this.index & 255}`;
    return {
      name: this.name,
      capacity: { ...c },
      allocatable: { ...c },
      labels: { hollow: "true", ...this.opts.labels },
      addresses: [address],
      agentVersion: `${agentVersion()}-hollow`,
      os: "linux",
      kernel: "hollow",
      cgroupMode: this.runtime.cgroupMode,
    };
  }
}

/** Many hollow nodes in this process. */
export class HollowFleet {
  readonly nodes: HollowNode[] = [];
  private readonly log: Logger;

  constructor(private readonly opts: HollowFleetOptions) {
    this.log = opts.logger ?? pino({ level: "silent" });
  }

  /**
   * Starts `count` more nodes, at most startConcurrency joining at once;
   * resolves when every one has been started (not necessarily registered:
   * see registered()). Throws the first join that failed.
   */
  async grow(count: number): Promise<void> {
    const key = newNodeKey();
    const rootfsDir = path.join(this.opts.stateRoot, "rootfs");
    // The rootfs directories instances name: never entered by a HollowRuntime.
    fs.mkdirSync(path.join(rootfsDir, "busybox"), { recursive: true });
    const prefix = this.opts.namePrefix ?? "hollow-";
    const first = this.nodes.length;
    const pending: HollowNode[] = [];
    for (let i = first; i < first + count; i++) {
      const name = `${prefix}${String(i).padStart(5, "0")}`;
      const node = new HollowNode(
        name,
        i,
        path.join(this.opts.stateRoot, name),
        rootfsDir,
        this.opts,
        key,
        this.log.child({ node: name }),
      );
      this.nodes.push(node);
      pending.push(node);
    }
    const workers = Array.from({ length: Math.min(this.opts.startConcurrency ?? 8, pending.length) }, async () => {
      for (let node = pending.shift(); node; node = pending.shift()) await node.start();
    });
    await Promise.all(workers);
  }

  /** How many nodes hold a registered stream now. */
  registered(): number {
    return this.nodes.filter((n) => n.registered).length;
  }

  /** Joins refused and tried again across the fleet. */
  joinRetries(): number {
    return this.nodes.reduce((sum, n) => sum + n.joinRetries, 0);
  }

  /** How many pretend containers run across the fleet. */
  running(): number {
    return this.nodes.reduce((sum, n) => sum + n.runtime.running, 0);
  }

  stop(): void {
    for (const n of this.nodes) n.stop();
  }
}
