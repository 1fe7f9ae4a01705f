// The gRPC adapter for agents. Each agent holds one Connect stream: it
// registers its node, then heartbeats and reports instance status; we send it
// its node's whole desired instance set whenever that set changes
// (level-triggered), and again on every reconnect.
import { timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  API_VERSION,
  GroveError,
  USERNS_DEFAULT_SIZE,
  parseDurationMs,
  type Instance,
  type InstanceState as ApiInstanceState,
  type InstanceStatus as ApiInstanceStatus,
  type Node,
  type NodeCondition,
} from "@grove/api";
import {
  AGENT_TOKEN_METADATA,
  loadGroveProto,
  type AgentMessage__Output,
  type AgentNodeCondition__Output,
  type ContainerStats__Output,
  type ControlMessage,
  type InstanceSpec,
  type InstanceStatus__Output,
  type Register__Output,
} from "@grove/proto";
import type { Repository } from "../resources/repository";
import { Keys, type Store } from "../store/store";
import { Informer } from "../controllers/informer";
import { isTerminal } from "../controllers/app-controller";
import {
  HEARTBEAT_INTERVAL_MS,
  NODE_GRACE_MS,
  PRESENCE_REFRESH_MS,
  markNodeUnknown,
  monotonicNow,
  readyCondition,
  withReady,
  type Heartbeat,
  type MonotonicClock,
} from "../controllers/node-lifecycle";
import type { ClusterIdentity } from "../cluster/cluster-id";
import { addressesInside, allocateSubnet, formatCidr, parseCidr, type Cidr } from "../network/subnets";
import { endError, SubStreamMux, type SubStream, type SubStreamHandlers, type SubStreamRequest } from "./sub-streams";

/** Cluster networking the gateway hands to agents at registration. */
export interface ClusterNetworkOptions {
  /** Node subnets are carved out of this (default 10.244.0.0/16). */
  clusterCidr?: string;
  /** Prefix length of a node's subnet (default 24). */
  nodeSubnetPrefix?: number;
  /** Egress no rule allows: "deny" (default, as Garden) or "allow". */
  egressDefault?: "deny" | "allow";
}

export const DEFAULT_CLUSTER_CIDR = "10.244.0.0/16";

/** An App's egress rule as the agent takes it ("8000-8999" -> 8000, 8999). */
function egressOf(r: NonNullable<Instance["spec"]["egress"]>[number]) {
  const [first, last] = (r.ports ?? "").split("-").map((x) => Number(x) || 0);
  return { cidr: r.cidr, protocol: r.protocol ?? "all", portFirst: first ?? 0, portLast: last ?? first ?? 0 };
}

export { HEARTBEAT_INTERVAL_MS };

/** How the gateway times its agents (grove-server --node-grace, --heartbeat-interval). */
export interface PresenceOptions {
  /** Agent silence after which the node is marked Ready=Unknown and its stream closed. */
  graceMs?: number;
  heartbeatIntervalMs?: number;
  presenceRefreshMs?: number;
  clock?: MonotonicClock;
}

/** Node conditions an agent may set (the others belong to the control plane). */
export const AGENT_CONDITION_TYPES: readonly string[] = ["DesiredStateRefused"];

/**
 * The node's conditions with the agent's reports folded in: only types in
 * AGENT_CONDITION_TYPES, the transition time kept while the status stays.
 */
export function withAgentConditions(
  conditions: readonly NodeCondition[],
  reports: readonly AgentNodeCondition__Output[],
  now: Date,
): NodeCondition[] {
  const out = [...conditions];
  for (const r of reports) {
    if (!AGENT_CONDITION_TYPES.includes(r.type)) continue;
    const status = r.status === "True" ? "True" : r.status === "False" ? "False" : "Unknown";
    const i = out.findIndex((c) => c.type === r.type);
    const prev = i >= 0 ? out[i] : undefined;
    const next: NodeCondition = {
      type: r.type,
      status,
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.message ? { message: r.message } : {}),
      lastTransitionTime:
        prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now.toISOString(),
    };
    if (i >= 0) out[i] = next;
    else out.push(next);
  }
  return out;
}

type Stream = grpc.ServerDuplexStream<AgentMessage__Output, ControlMessage>;

interface Session {
  node: string;
  stream: Stream;
  lastSent: string;
  /** logs / exec / stats sub-streams on this Connect stream. */
  mux: SubStreamMux;
  /** When we last heard anything on the stream: monotonic, and the wall clock for people. */
  heardAt: number;
  heardWall: Date;
  /** The last heartbeat message itself (monotonic, wall clock): what the presence key shows. */
  beatAt: number;
  beatWall: Date;
  /** Our last write of the node's presence key: its mod revision (the fence) and when (monotonic). */
  presenceRev: string;
  presenceAt: number;
  /** Set once the session is given up, so it is marked lost only once. */
  lost: boolean;
}

/** How long a stats request waits for the agent. */
const STATS_TIMEOUT_MS = 10_000;

const STATE_FROM_PROTO: Record<string, ApiInstanceState | undefined> = {
  PENDING: "Pending",
  STARTING: "Starting",
  RUNNING: "Running",
  EXITED: "Exited",
  FAILED: "Failed",
  OOM_KILLED: "OOMKilled",
};

/** The API's userNamespace (true, or an explicit range) as proto Security fields. */
function userNamespaceOf(u: NonNullable<Instance["spec"]["security"]>["userNamespace"]) {
  if (u === undefined || u === false) return {};
  if (u === true) return { userNamespace: { auto: true, hostUid: 0, hostGid: 0, size: 0 } };
  return {
    userNamespace: { auto: false, hostUid: u.hostUid, hostGid: u.hostGid, size: u.size ?? USERNS_DEFAULT_SIZE },
  };
}

function tokenMatches(given: string, want: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

function msToIso(ms: string | number): string | undefined {
  const n = Number(ms);
  return n > 0 ? new Date(n).toISOString() : undefined;
}

/** The instances a node should run: bound to it and not finished. */
export function desiredFor(node: string, instances: readonly Instance[]): InstanceSpec[] {
  return instances
    .filter((i) => i.spec.nodeName === node && !isTerminal(i))
    .sort((a, b) => (a.metadata.uid ?? "").localeCompare(b.metadata.uid ?? ""))
    .map((i) => ({
      uid: i.metadata.uid ?? "",
      namespace: i.metadata.namespace ?? "default",
      name: i.metadata.name,
      app: i.spec.app,
      rootfs: i.spec.rootfs,
      command: i.spec.command,
      env: i.spec.env ?? {},
      workingDir: i.spec.workingDir ?? (i.spec.image ? "" : "/"),
      resources: {
        cpuMillis: i.spec.resources.cpuMillis,
        memoryBytes: i.spec.resources.memoryBytes,
        pids: i.spec.resources.pids,
      },
      hostname: i.metadata.name,
      stopGraceSeconds: i.spec.stopGracePeriodSeconds,
      stopAfterMs: i.spec.disconnect?.stopAfter !== undefined ? parseDurationMs(i.spec.disconnect.stopAfter) : 0,
      ports: (i.spec.ports ?? []).map((p) => ({
        name: p.name,
        protocol: p.protocol ?? "tcp",
        containerPort: p.containerPort,
        hostPort: p.hostPort ?? 0,
      })),
      egress: (i.spec.egress ?? []).map(egressOf),
      ...(i.spec.security !== undefined
        ? {
            security: {
              user: i.spec.security.user ?? "",
              capabilitiesAdd: i.spec.security.capabilities?.add ?? [],
              capabilitiesDrop: i.spec.security.capabilities?.drop ?? [],
              seccomp: i.spec.security.seccomp ?? "",
              readOnlyRootFilesystem: i.spec.security.readOnlyRootFilesystem ?? false,
              ...userNamespaceOf(i.spec.security.userNamespace),
            },
          }
        : {}),
      ...(i.spec.image
        ? { image: i.spec.image, imagePullSecret: i.spec.imagePullSecret ?? "", entrypoint: i.spec.entrypoint ?? [] }
        : {}),
    }));
}

/** Applies an agent's status report to an Instance's status; undefined = nothing to change. */
export function applyReport(
  inst: Instance,
  report: InstanceStatus__Output,
  nodeAddress?: string,
): ApiInstanceStatus | undefined {
  const state = STATE_FROM_PROTO[report.state];
  if (!state) return undefined;
  const cur = inst.status;
  // A finished instance stays finished: late or repeated reports cannot revive it.
  if (cur && isTerminal(inst)) return undefined;
  const next: ApiInstanceStatus = {
    ...cur,
    state,
    nodeName: inst.spec.nodeName,
    reason: report.reason || (state === "OOMKilled" ? "OOMKilled" : state),
    message: report.message || undefined,
  };
  if (report.pid) next.pid = report.pid;
  if (report.ip) next.ip = report.ip;
  // The limits the running container has (a live resize changes them).
  if (report.appliedResources) {
    next.appliedResources = {
      cpuMillis: Number(report.appliedResources.cpuMillis),
      memoryBytes: Number(report.appliedResources.memoryBytes),
      pids: Number(report.appliedResources.pids),
    };
  }
  // Image pull progress lives only as long as the pull.
  if (report.pull) {
    next.pull = {
      image: report.pull.image,
      layersDone: report.pull.layersDone,
      layersTotal: report.pull.layersTotal,
      bytesDone: Number(report.pull.bytesDone),
      bytesTotal: Number(report.pull.bytesTotal),
    };
  } else {
    delete next.pull;
  }
  if (report.ports?.length) {
    next.ports = report.ports.map((p) => ({
      name: p.name,
      protocol: p.protocol,
      containerPort: p.containerPort,
      hostPort: p.hostPort,
      ...(nodeAddress ? { hostIP: nodeAddress } : {}),
    }));
  }
  const started = msToIso(report.startedAtMs);
  if (started) next.startedAt = started;
  if (state === "Exited" || state === "Failed" || state === "OOMKilled") {
    next.exitCode = report.exitCode;
    if (report.signal) next.signal = report.signal;
    next.finishedAt = msToIso(report.finishedAtMs) ?? new Date().toISOString();
  }
  if (!next.message) delete next.message;
  if (
    cur &&
    cur.state === next.state &&
    cur.pid === next.pid &&
    cur.reason === next.reason &&
    cur.message === next.message &&
    cur.exitCode === next.exitCode &&
    cur.ip === next.ip &&
    sameLimits(cur.appliedResources, next.appliedResources)
  ) {
    return undefined;
  }
  return next;
}

function sameLimits(a: ApiInstanceStatus["appliedResources"], b: ApiInstanceStatus["appliedResources"]): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.cpuMillis === b.cpuMillis && a.memoryBytes === b.memoryBytes && a.pids === b.pids;
}

export class AgentGateway {
  private readonly sessions = new Map<string, Session>();
  /**
   * Sessions whose stream closed, kept until the grace runs out: an agent
   * that restarts (or redials after a reset) within the grace changes
   * nothing, so restarting an agent never replaces its instances.
   */
  private readonly disconnected = new Map<string, Session>();
  private server: grpc.Server | undefined;
  private readonly clusterCidr: Cidr;
  private readonly nodeSubnetPrefix: number;
  /** Registrations allocate subnets one at a time (one grove-server per etcd cluster for now). */
  private subnetLock: Promise<unknown> = Promise.resolve();
  private readonly assignedSubnets = new Map<string, string>();
  /** The first address each registered node advertised (where its ports are published). */
  private readonly nodeAddresses = new Map<string, string>();
  /** Written into presence keys, so other replicas can name the one holding a node's stream. */
  private serverId = "";
  private readonly graceMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly presenceRefreshMs: number;
  private readonly clock: MonotonicClock;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepIntervalMs = 500;
  private lastSweep: number | undefined;
  private sweeping = false;
  private closing = false;
  /** Desired sets carry the cluster id; unset (tests): sets go out without one. */
  private cluster: ClusterIdentity | undefined;

  constructor(
    private readonly store: Store,
    private readonly repo: Repository,
    private readonly instances: Informer<Instance>,
    private readonly agentToken: string,
    private readonly logger: Logger,
    private readonly network: ClusterNetworkOptions = {},
    presence: PresenceOptions = {},
  ) {
    this.graceMs = presence.graceMs ?? NODE_GRACE_MS;
    this.heartbeatIntervalMs = presence.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.presenceRefreshMs = presence.presenceRefreshMs ?? PRESENCE_REFRESH_MS;
    this.clock = presence.clock ?? monotonicNow;
    if (this.heartbeatIntervalMs * 2 > this.graceMs) {
      throw new Error(
        `node grace ${this.graceMs}ms must be at least twice the heartbeat interval ${this.heartbeatIntervalMs}ms`,
      );
    }
    this.clusterCidr = parseCidr(network.clusterCidr ?? DEFAULT_CLUSTER_CIDR, "cluster CIDR");
    this.nodeSubnetPrefix = network.nodeSubnetPrefix ?? 24;
    if (this.nodeSubnetPrefix < this.clusterCidr.prefix || this.nodeSubnetPrefix > 30) {
      throw new Error(
        `node subnet prefix: /${this.nodeSubnetPrefix} must be between the cluster CIDR's /${this.clusterCidr.prefix} and /30`,
      );
    }
    instances.on((ev) => {
      const nodes = new Set<string>();
      if (ev.object.spec.nodeName) nodes.add(ev.object.spec.nodeName);
      if (ev.type === "updated" && ev.old.spec.nodeName) nodes.add(ev.old.spec.nodeName);
      for (const n of nodes) this.pushDesired(n);
    });
  }

  /** Listens on host:port (port 0 picks one); resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    const proto = loadGroveProto();
    const server = new grpc.Server({
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 5_000,
    });
    server.addService(proto.grove.v1.AgentService.service, { Connect: (call: Stream) => this.onConnect(call) });
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.server = server;
    // Silence is timed here, on the replica holding the stream, with a monotonic clock.
    this.sweepIntervalMs = Math.max(50, Math.min(500, this.graceMs / 10));
    this.sweepTimer = setInterval(() => void this.sweep(), this.sweepIntervalMs);
    this.sweepTimer.unref();
    return bound;
  }

  async close(): Promise<void> {
    // Going away is not the agents' fault: their nodes are left as they are,
    // and they re-register with a replica that is up (no burst of replacements).
    this.closing = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const s of this.sessions.values()) {
      s.mux.closeAll("the control plane is shutting down");
      s.stream.end();
    }
    this.sessions.clear();
    this.disconnected.clear();
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  connectedNodes(): string[] {
    return [...this.sessions.keys()];
  }

  /**
   * The cluster's identity (cluster/cluster-id.ts). While the store is
   * suspect no desired set goes out: agents keep what they run.
   */
  setCluster(cluster: ClusterIdentity): void {
    this.cluster = cluster;
  }

  /** This replica's HTTP URL, written into presence keys (see openStream). */
  setServerId(id: string): void {
    this.serverId = id;
  }

  /**
   * Opens a logs / exec / stats sub-stream to a node's agent over its Connect
   * stream. Throws NodeUnavailable when the agent is not connected here,
   * naming the grove-server replica that holds its stream when another does.
   */
  async openStream(node: string, req: SubStreamRequest, handlers: SubStreamHandlers): Promise<SubStream> {
    const session = this.sessions.get(node);
    if (session) return session.mux.open(req, handlers);
    let beat: Heartbeat | undefined;
    try {
      beat = (await this.store.get<Heartbeat>(Keys.heartbeat(node)))?.value;
    } catch {
      beat = undefined;
    }
    // The key exists only while some replica holds the stream (it is deleted when the node is lost).
    if (beat?.server && beat.server !== this.serverId) {
      throw new GroveError(
        "NodeUnavailable",
        `the agent of node ${node} is connected to another grove-server replica (${beat.server}); ` +
          `send this request there (grove --server ${beat.server})`,
      );
    }
    throw new GroveError("NodeUnavailable", `the agent of node ${node} is not connected`);
  }

  /** Resource usage of one running instance (uid) or of every running instance of the node (""). */
  async stats(node: string, uid: string): Promise<ContainerStats__Output[]> {
    return new Promise<ContainerStats__Output[]>((resolve, reject) => {
      let sub: SubStream | undefined;
      const timer = setTimeout(() => {
        sub?.cancel();
        reject(new GroveError("NodeUnavailable", `the agent of node ${node} did not answer a stats request in time`));
      }, STATS_TIMEOUT_MS);
      const settle = () => clearTimeout(timer);
      this.openStream(
        node,
        { kind: "STATS", instanceUid: uid },
        {
          onOutput: () => undefined,
          onEnd: (end) => {
            settle();
            const err = endError(end, `stats from node ${node}`);
            if (err) reject(err);
            else resolve(end.stats);
          },
          onBroken: (err) => {
            settle();
            reject(err);
          },
        },
      ).then(
        (s) => (sub = s),
        (err: unknown) => {
          settle();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  private onConnect(call: Stream): void {
    const given = call.metadata.get(AGENT_TOKEN_METADATA)[0];
    if (typeof given !== "string" || !tokenMatches(given, this.agentToken)) {
      call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: "invalid or missing agent token" });
      return;
    }
    let session: Session | undefined;
    let chain = Promise.resolve();
    // Sub-stream output is routed at once, not behind the store writes of the chain.
    const mux = new SubStreamMux("(unregistered)", (m) => call.write(m));
    call.on("data", (msg: AgentMessage__Output) => {
      // Anything the agent sends shows it is there, not only heartbeats.
      if (session) {
        session.heardAt = this.clock();
        session.heardWall = new Date();
        if (msg.heartbeat) {
          session.beatAt = session.heardAt;
          session.beatWall = session.heardWall;
        }
      }
      if (mux.route(msg)) return;
      // Messages of one stream are handled strictly in order.
      chain = chain.then(async () => {
        try {
          if (msg.register) session = await this.onRegister(call, msg.register, mux);
          else if (!session) throw new GroveError("BadRequest", "the first message on the stream must be register");
          else if (msg.heartbeat) {
            // Heard: the agent measures its time without contact from these (spec.disconnect.stopAfter).
            // Presence is timed in memory (sweep), not written per beat.
            call.write({ heartbeatAck: { sentAtMs: msg.heartbeat.sentAtMs } });
          } else if (msg.status) await this.onStatus(session.node, msg.status);
          else if (msg.condition) await this.onConditions(session.node, [msg.condition]);
        } catch (err) {
          this.logger.warn({ err, node: session?.node }, "agent message failed; closing the stream");
          // The agent re-registers with every status it holds, so nothing it
          // reported is lost when we could not record it now.
          const code = session ? grpc.status.UNAVAILABLE : grpc.status.INVALID_ARGUMENT;
          call.emit("error", { code, details: err instanceof Error ? err.message : String(err) });
        }
      });
    });
    const done = () => {
      mux.closeAll(`the agent of node ${session?.node ?? "(unregistered)"} disconnected`);
      if (session && this.sessions.get(session.node)?.stream === call) {
        this.logger.info({ node: session.node }, "agent disconnected");
        this.sessions.delete(session.node);
        this.disconnected.set(session.node, session);
      }
    };
    call.on("end", () => {
      done();
      call.end();
    });
    call.on("error", done);
    call.on("cancelled", done);
  }

  /** The node's subnet: the one it has, or the first free one of the cluster CIDR. */
  private allocateSubnetFor(name: string): Promise<string> {
    const run = async () => {
      const nodes = (await this.repo.list("Node")).items;
      const mine = nodes.find((n) => n.metadata.name === name)?.status?.subnet ?? this.assignedSubnets.get(name);
      if (mine) {
        this.assignedSubnets.set(name, mine);
        return mine;
      }
      // Subnets handed out but maybe not written to their Node yet count as taken too.
      const taken = [
        ...nodes.flatMap((n) => (n.status?.subnet ? [n.status.subnet] : [])),
        ...this.assignedSubnets.values(),
      ].map((s) => parseCidr(s));
      const free = allocateSubnet(this.clusterCidr, this.nodeSubnetPrefix, taken);
      if (!free) {
        throw new GroveError(
          "BadRequest",
          `no free /${this.nodeSubnetPrefix} left in the cluster CIDR ${formatCidr(this.clusterCidr)} for node ${name}`,
        );
      }
      this.assignedSubnets.set(name, formatCidr(free));
      return formatCidr(free);
    };
    const next = this.subnetLock.then(run, run);
    this.subnetLock = next.catch(() => undefined);
    return next;
  }

  private async onRegister(call: Stream, reg: Register__Output, mux: SubStreamMux): Promise<Session> {
    const info = reg.node;
    if (!info || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(info.name) || info.name.length > 63) {
      throw new GroveError("BadRequest", `invalid node name "${info?.name ?? ""}"`);
    }
    const name = info.name;
    const res = (r: { cpuMillis: string; memoryBytes: string; pids: string } | null) => ({
      cpuMillis: Number(r?.cpuMillis ?? 0),
      memoryBytes: Number(r?.memoryBytes ?? 0),
      pids: Number(r?.pids ?? 0),
    });
    const now = new Date();
    const ready = readyCondition("True", "AgentConnected", "the agent is connected and heartbeating", now);
    const existing = await this.repo.get("Node", undefined, name).catch((err: unknown) => {
      if (err instanceof GroveError && err.code === "NotFound") return undefined;
      throw err;
    });
    // Instance subnets must not overlap the network the nodes themselves are on.
    const clash = addressesInside(this.clusterCidr, info.addresses);
    if (clash.length > 0) {
      throw new GroveError(
        "BadRequest",
        `node ${name}'s address ${clash.join(", ")} lies inside the cluster CIDR ${formatCidr(this.clusterCidr)}: ` +
          "give grove-server a --cluster-cidr that does not overlap the nodes' network",
      );
    }
    const subnet = await this.allocateSubnetFor(name);
    // Presence first: a Ready node without a presence key looks abandoned to the leader.
    const presenceRev = await this.writePresence(name, now);
    if (info.addresses[0]) this.nodeAddresses.set(name, info.addresses[0]);
    const status = {
      subnet,
      capacity: res(info.capacity),
      allocatable: res(info.allocatable),
      addresses: info.addresses,
      agentVersion: info.agentVersion,
      kernel: info.kernel,
      cgroupMode: info.cgroupMode,
      lastHeartbeatTime: now.toISOString(),
    };
    if (!existing) {
      const node: Node = {
        apiVersion: API_VERSION,
        kind: "Node",
        metadata: { name, labels: { ...info.labels } },
        spec: {},
        status: { ...status, conditions: withAgentConditions([ready], reg.conditions, now) },
      };
      await this.repo.create(node);
    } else {
      await this.repo.updateStatus("Node", existing, (n) => {
        const node = n as Node;
        const updated = withReady({ ...node, status: { ...node.status, ...status } }, ready);
        node.status = {
          ...updated.status,
          conditions: withAgentConditions(updated.status?.conditions ?? [], reg.conditions, now),
        };
        node.metadata.labels = { ...(node.metadata.labels ?? {}), ...info.labels };
      });
    }
    const gone = this.disconnected.get(name);
    if (gone) {
      gone.lost = true; // back within the grace: the node stays Ready
      this.disconnected.delete(name);
    }
    const old = this.sessions.get(name);
    if (old && old.stream !== call) {
      old.lost = true; // replaced, not lost: the node stays Ready
      old.mux.closeAll(`the agent of node ${name} reconnected`);
      old.stream.end();
    }
    const session: Session = {
      node: name,
      stream: call,
      lastSent: "",
      mux,
      heardAt: this.clock(),
      heardWall: now,
      beatAt: this.clock(),
      beatWall: now,
      presenceRev,
      presenceAt: this.clock(),
      lost: false,
    };
    this.sessions.set(name, session);
    this.logger.info({ node: name, reported: reg.instances.length }, "agent registered");
    call.write({
      registered: {
        nodeName: name,
        heartbeatIntervalMs: this.heartbeatIntervalMs,
        subnet,
        egressDefault: this.network.egressDefault ?? "deny",
      },
    });
    // Applied to the stored instances, not our cache: the leader may have
    // marked them Unknown just before this registration, and our cache may
    // not show that yet; these reports are what brings their states back.
    for (const st of reg.instances) await this.onStatus(name, st, true);
    await this.markLost(name, new Set(reg.instances.map((st) => st.uid)));
    this.pushDesired(name, true);
    return session;
  }

  /**
   * The Register carries every instance the agent has. One of this node's
   * Unknown instances it did not report is not there any more (the host
   * rebooted, its containers were lost): it ended, as Failed/Lost, so that it
   * is replaced (or its replacement kept) instead of being started again.
   */
  private async markLost(node: string, reported: Set<string>): Promise<void> {
    for (const inst of this.instances.list()) {
      if (inst.spec.nodeName !== node || inst.status?.state !== "Unknown" || reported.has(inst.metadata.uid ?? "")) {
        continue;
      }
      try {
        await this.repo.updateStatus(
          "Instance",
          { metadata: { name: inst.metadata.name, namespace: inst.metadata.namespace } },
          (i) => {
            const cur = i as Instance;
            if (cur.metadata.uid !== inst.metadata.uid || cur.status?.state !== "Unknown") return false;
            cur.status = {
              ...cur.status,
              state: "Failed",
              reason: "Lost",
              message: `node ${node} came back without it: its agent does not have it (the host lost its containers)`,
              finishedAt: new Date().toISOString(),
            };
          },
        );
        this.logger.warn({ node, instance: `${inst.metadata.namespace}/${inst.metadata.name}` }, "instance lost");
      } catch (err) {
        if (!(err instanceof GroveError && err.code === "NotFound")) throw err;
      }
    }
  }

  /** Writes the node's presence key (this replica holds its stream); returns its mod revision. */
  private async writePresence(node: string, heard: Date): Promise<string> {
    const beat: Heartbeat = { time: heard.toISOString(), ...(this.serverId ? { server: this.serverId } : {}) };
    const r = await this.store.txn([], [{ type: "put", key: Keys.heartbeat(node), value: beat }]);
    return r.revision;
  }

  /**
   * Runs every few hundred ms: marks sessions silent for longer than the
   * grace lost, and refreshes the presence keys of the others (at most every
   * presenceRefreshMs, and only when the agent was heard since).
   */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.closing) return;
    this.sweeping = true;
    try {
      // When this process itself was not running (SIGSTOP, a long GC pause,
      // a suspended VM) the silence it measured is its own: the agents'
      // messages are still waiting in its sockets. Give everyone a fresh grace.
      const now = this.clock();
      const gap = this.lastSweep === undefined ? 0 : now - this.lastSweep;
      this.lastSweep = now;
      if (gap > 2 * this.sweepIntervalMs + 1_000) {
        this.logger.warn({ pausedMs: Math.round(gap) }, "this replica was paused; restarting the agents' grace");
        for (const s of [...this.sessions.values(), ...this.disconnected.values()])
          s.heardAt = Math.max(s.heardAt, now);
        return;
      }
      for (const s of [...this.disconnected.values()]) {
        const silent = this.clock() - s.heardAt;
        if (s.lost || silent <= this.graceMs) continue;
        await this.lose(
          s,
          "AgentDisconnected",
          `the agent's stream closed and it has not come back for ${(silent / 1000).toFixed(1)}s`,
          false,
        );
      }
      for (const s of [...this.sessions.values()]) {
        if (s.lost) continue;
        const now = this.clock();
        const silent = now - s.heardAt;
        if (silent > this.graceMs) {
          this.logger.warn({ node: s.node, silentMs: Math.round(silent) }, "agent stopped heartbeating");
          await this.lose(s, "AgentNotHeartbeating", `no heartbeat from the agent for ${(silent / 1000).toFixed(1)}s`);
          continue;
        }
        // Heartbeats proper, so the key also shows that they are not stuck behind a flood of log output.
        if (now - s.presenceAt < this.presenceRefreshMs || s.beatAt <= s.presenceAt) continue;
        const beat: Heartbeat = {
          time: s.beatWall.toISOString(),
          ...(this.serverId ? { server: this.serverId } : {}),
        };
        const key = Keys.heartbeat(s.node);
        try {
          const r = await this.store.txn([{ key, modRevision: s.presenceRev }], [{ type: "put", key, value: beat }]);
          if (r.succeeded) {
            s.presenceRev = r.revision;
            s.presenceAt = now;
          } else if (this.sessions.get(s.node) === s) {
            // Someone else marked the node lost or took its stream: this stream is stale.
            this.logger.warn({ node: s.node }, "node presence moved away from this replica; closing the stream");
            this.dropSession(s, "the node's presence was taken over");
          }
        } catch (err) {
          this.logger.warn({ err, node: s.node }, "could not refresh node presence; will retry");
        }
      }
    } finally {
      this.sweeping = false;
    }
  }

  private dropSession(s: Session, why: string, closeStream = true): void {
    s.lost = true;
    if (this.sessions.get(s.node) === s) this.sessions.delete(s.node);
    if (this.disconnected.get(s.node) === s) this.disconnected.delete(s.node);
    s.mux.closeAll(`the agent of node ${s.node}: ${why}`);
    if (closeStream) s.stream.emit("error", { code: grpc.status.UNAVAILABLE, details: why });
  }

  /**
   * Gives up a session: closes its stream (the agent re-registers when it is
   * back) and marks the node Ready=Unknown, fenced by our presence revision
   * so a registration elsewhere in the meantime wins.
   */
  private async lose(s: Session, reason: string, message: string, closeStream = true): Promise<void> {
    if (s.lost) return;
    this.dropSession(s, message, closeStream);
    if (this.closing) return;
    try {
      const marked = await markNodeUnknown(
        this.store,
        { node: s.node, modRevision: s.presenceRev },
        reason,
        message,
        s.heardWall,
      );
      if (marked) this.logger.warn({ node: s.node, reason, message }, "node not ready");
    } catch (err) {
      // The leader's presence check marks it when its presence key goes stale.
      this.logger.warn({ err, node: s.node }, "could not mark the node lost; the leader will");
    }
  }

  /** An agent's conditions (e.g. DesiredStateRefused) onto its Node. */
  private async onConditions(name: string, reports: AgentNodeCondition__Output[]): Promise<void> {
    const node = await this.repo.get("Node", undefined, name);
    for (const r of reports) {
      const level = r.status === "True" ? "warn" : "info";
      this.logger[level](
        { node: name, condition: r.type, status: r.status, reason: r.reason, message: r.message },
        "agent condition",
      );
    }
    await this.repo.updateStatus("Node", node, (n) => {
      const cur = n as Node;
      cur.status = {
        ...cur.status,
        conditions: withAgentConditions(cur.status?.conditions ?? [], reports, new Date()),
      };
    });
  }

  private async onStatus(node: string, report: InstanceStatus__Output, fresh = false): Promise<void> {
    const inst = this.instances.get(`${report.namespace}/${report.name}`);
    if (!inst || inst.metadata.uid !== report.uid || inst.spec.nodeName !== node) return; // gone or replaced
    const address = this.nodeAddresses.get(node);
    if (!fresh && !applyReport(inst, report, address)) return;
    try {
      // Only the name: updateStatus then reads the stored object.
      const target = fresh ? { metadata: { name: inst.metadata.name, namespace: inst.metadata.namespace } } : inst;
      await this.repo.updateStatus("Instance", target, (i) => {
        const cur = i as Instance;
        if (cur.metadata.uid !== report.uid) return;
        const next = applyReport(cur, report, address);
        if (next) cur.status = next;
      });
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }

  private pushDesired(node: string, force = false): void {
    const session = this.sessions.get(node);
    if (!session) return;
    const cluster = this.cluster;
    if (cluster?.state === "suspect") {
      // Sending what this store holds could stop what the node runs for good.
      if (force) {
        this.logger.error(
          { node, holds: cluster.holds },
          "not sending the node its desired set: the store holds objects but no cluster id " +
            "(lost or from an older Grove); check it is the right store, then restart grove-server with --assign-cluster-id",
        );
      }
      return;
    }
    const desired = desiredFor(node, this.instances.list());
    const fingerprint = JSON.stringify(desired);
    if (!force && fingerprint === session.lastSent) return;
    session.lastSent = fingerprint;
    // The revision the instances cache reflects: it only grows, so an agent can
    // tell a set older than one it applied (another replica lagging, a restored store).
    session.stream.write({
      desired: { instances: desired, revision: this.instances.revision, clusterId: cluster?.id ?? "" },
    });
  }
}
