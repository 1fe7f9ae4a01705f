// The gRPC adapter for agents. Each agent holds one Connect stream: it
// registers its node, then heartbeats and reports instance status; we send it
// its node's whole desired instance set whenever that set changes
// (level-triggered), and again on every reconnect.
//
// This file keeps what belongs to the connection: authentication, the
// sessions and the silence measured on them, the desired-set pushes and the
// logs / exec / stats sub-streams. What the messages change in the store is
// the node registration service's (nodes/registration.ts); the translation
// between proto messages and API objects is agent-messages.ts's.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { GroveError, NodeReadyReason, type Instance } from "@grove/api";
import {
  loadGroveProto,
  type AgentMessage__Output,
  type ContainerStats__Output,
  type InstanceStatus__Output,
  type Register__Output,
} from "@grove/proto";
import { Informer } from "../controllers/informer";
import {
  HEARTBEAT_INTERVAL_MS,
  NODE_GRACE_MS,
  PRESENCE_REFRESH_MS,
  monotonicNow,
  type Heartbeat,
  type MonotonicClock,
} from "../controllers/node-lifecycle";
import type { ClusterIdentity } from "../cluster/cluster-id";
import type { NodeRegistration } from "../nodes/registration";
import { goneWithPorts, uidsWithPorts, type PresenceOptions, type Session, type Stream } from "./agent-session";
import {
  applyReport,
  desiredInputsChanged,
  desiredMessage,
  nodeInfoOf,
  SUSPECT_STORE_NOT_SENT,
} from "./agent-messages";
import { desiredSetTraceContext } from "../observability/trace-handoffs";
import { movedAway } from "../nodes/presence";
import { SubStreamMux, statsOver, type SubStream, type SubStreamHandlers, type SubStreamRequest } from "./sub-streams";
import { literalEnv, type EnvResolver } from "../secrets/env-resolver";
import { expiredProblem, ReloadableServerCredentials, renewOnStream, revokedProblem } from "./agent-certificates";
import { admitStream, AgentLimits, throttle } from "./agent-limits";
import { RegistrationGate } from "./registration-gate";
import { StatusBatcher } from "./status-batch";
import type { Store } from "../store/store";
import {
  authenticateStream,
  alreadyRegistered,
  checkRegistration,
  refusalCode,
  type AgentIdentity,
  type AgentTls,
} from "./agent-identity";

export { HEARTBEAT_INTERVAL_MS };

export type { PresenceOptions } from "./agent-session";

export class AgentGateway {
  private readonly sessions = new Map<string, Session>();
  /**
   * Sessions whose stream closed, kept until the grace runs out: an agent
   * that restarts (or redials after a reset) within the grace changes
   * nothing, so restarting an agent never replaces its instances.
   */
  private readonly disconnected = new Map<string, Session>();
  private server: grpc.Server | undefined;
  /** This replica's HTTP URL (see openStream). */
  private serverId = "";
  private readonly graceMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly presenceRefreshMs: number;
  private readonly clock: MonotonicClock;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepIntervalMs = 500;
  private lastSweep: number | undefined;
  private sweeping = false;
  private streamCount = 0;
  private closing = false;
  /** Nodes whose desired set is sent at the next flush (markDesired). */
  private readonly dirtyDesired = new Set<string>();
  private desiredFlush: NodeJS.Immediate | undefined;
  /** When (monotonic) this replica last vouched for its streams (-Infinity: not yet). */
  private replicaBeatAt = Number.NEGATIVE_INFINITY;
  /** Desired sets carry the cluster id; unset (tests): sets go out without one. */
  private cluster: ClusterIdentity | undefined;
  private env: EnvResolver = literalEnv;
  /** With TLS (grove-server always), agents are identified by their node certificates; without (unit tests), by the token. */
  private tls: AgentTls | undefined;
  private credentials: ReloadableServerCredentials | undefined;
  /** Per-node rates and open streams (grpc/agent-limits.ts). */
  limits = new AgentLimits();
  /** Registrations in flight at once (grpc/registration-gate.ts): no storm of them against the store. */
  registrations = new RegistrationGate();

  constructor(
    /** The service that records what agents report (nodes/registration.ts). */
    private readonly nodes: NodeRegistration,
    private readonly instances: Informer<Instance>,
    private readonly agentToken: string,
    private readonly logger: Logger,
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
    instances.on((ev) => {
      const gone = goneWithPorts(ev);
      if (gone) this.releaseIfNeverHad(gone.node, gone.uid);
      // An agent's status report changes nothing its node is sent.
      if (ev.type === "updated" && !desiredInputsChanged(ev.old, ev.object)) return;
      const nodes = new Set<string>();
      if (ev.object.spec.nodeName) nodes.add(ev.object.spec.nodeName);
      if (ev.type === "updated" && ev.old.spec.nodeName) nodes.add(ev.old.spec.nodeName);
      for (const n of nodes) this.markDesired(n);
    });
    // A stale cache sent nothing (pushDesired); fresh again, every node gets what changed.
    instances.onFreshness((fresh) => {
      if (fresh) this.resendAll();
    });
  }

  /** Serve mutual TLS (call before listen): only agents holding a node certificate of the cluster CA get in. */
  useTls(tls: AgentTls): ReloadableServerCredentials {
    this.tls = tls;
    // Answered so that a renewed serving certificate can be put in (new connections get it).
    return (this.credentials = new ReloadableServerCredentials(tls));
  }

  /** Ends the node's stream once its certificate is no longer accepted (on every change of its record). */
  async recheckCertificate(node: string): Promise<void> {
    const s = this.sessions.get(node);
    const why = s && (await revokedProblem(this.tls, s.identity));
    if (!s || !why || this.sessions.get(node) !== s) return;
    this.logger.warn({ node }, why);
    this.dropSession(s, why, true, grpc.status.UNAUTHENTICATED);
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
      server.bindAsync(`${host}:${port}`, this.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) =>
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
    if (this.desiredFlush) clearImmediate(this.desiredFlush);
    this.desiredFlush = undefined;
    this.dirtyDesired.clear();
    for (const s of this.sessions.values()) {
      s.mux.closeAll("the control plane is shutting down");
      s.stream.end();
    }
    this.sessions.clear();
    this.disconnected.clear();
    // Our nodes age from now on in the leader's eyes unless their agents register elsewhere.
    await this.nodes.endReplica(1_000);
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

  /** Desired sets carry the newest leader epoch this replica knows (leader/leader-record.ts). */
  private leaderEpoch: () => string = () => "0";
  setLeaderEpoch(epoch: () => string): void {
    this.leaderEpoch = epoch;
  }

  /**
   * Agents' status reports are written a batch at a time (status-batch.ts)
   * to this store, the one node registration writes them to; unset (tests):
   * one update per report.
   */
  private statusBatch: StatusBatcher | undefined;
  batchStatusReports(store: Store): void {
    this.statusBatch = new StatusBatcher(store, this.instances, (node, ref, fold) =>
      this.nodes.recordStatus(node, ref, fold),
    );
  }

  /** Resolves Secret references in env (secrets/env-resolver.ts); sets are sent again when Secrets change. */
  setEnvResolver(env: EnvResolver): void {
    this.env = env;
  }

  /** Sends every connected node its set again if it changed (a Secret it uses changed). */
  resendAll(): void {
    for (const node of this.sessions.keys()) this.pushDesired(node);
  }

  /** This replica's HTTP URL, written into presence keys (see openStream). */
  setServerId(id: string): void {
    this.serverId = id;
    this.nodes.setServerId(id);
  }

  /** True while the node's agent holds its Connect stream with this replica. */
  holds(node: string): boolean {
    return this.sessions.has(node);
  }

  /**
   * The advertised URL of the other replica that holds the node's stream,
   * from its presence key; undefined when none does (or it is this one).
   */
  async holderOf(node: string): Promise<string | undefined> {
    const beat = await this.nodes.presenceOf(node);
    return beat?.server && beat.server !== this.serverId ? beat.server : undefined;
  }

  /**
   * Opens a logs / exec / stats sub-stream to a node's agent over its Connect
   * stream. Throws NodeUnavailable when the agent is not connected here,
   * naming the grove-server replica that holds its stream when another does
   * (replicas/replica-streams.ts goes there instead).
   */
  async openStream(node: string, req: SubStreamRequest, handlers: SubStreamHandlers): Promise<SubStream> {
    const session = this.sessions.get(node);
    if (session) return session.mux.open(req, handlers);
    let beat: Heartbeat | undefined;
    try {
      beat = await this.nodes.presenceOf(node);
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
  stats(node: string, uid: string): Promise<ContainerStats__Output[]> {
    return statsOver((n, req, h) => this.openStream(n, req, h), node, uid);
  }

  private onConnect(call: Stream): void {
    const auth = authenticateStream(call, this.tls, this.agentToken);
    if ("refused" in auth) {
      call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: auth.refused });
      return;
    }
    const identity = auth.identity;
    // Rates and open streams count per node (its certificate's name; per stream without TLS).
    const limitKey = identity?.node ?? `(stream ${++this.streamCount})`;
    const release = admitStream(this.limits, limitKey, call);
    if (!release) return;
    let session: Session | undefined;
    let ended = false;
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
      throttle(this.limits, limitKey, msg, call, this.logger);
      if (mux.route(msg)) return;
      // Messages of one stream are handled strictly in order.
      chain = chain.then(async () => {
        try {
          if (msg.register) {
            // One registration per stream: a stream is one node, from its first message to its end.
            if (session) throw alreadyRegistered();
            const reg = msg.register;
            session = await this.registrations.run(
              () => !ended,
              () => this.onRegister(call, reg, mux, identity),
            );
            if (ended && session) detach(session); // it ended while registering
          } else if (!session) throw new GroveError("BadRequest", "the first message on the stream must be register");
          else if (msg.heartbeat) {
            // Heard: the agent measures its time without contact from these (spec.disconnect.stopAfter).
            // Presence is timed in memory (sweep), not written per beat.
            call.write({ heartbeatAck: { sentAtMs: msg.heartbeat.sentAtMs } });
          } else if (msg.status) await this.onStatus(session.node, msg.status);
          else if (msg.condition) await this.nodes.recordConditions(session.node, [msg.condition]);
          else if (msg.renewCertificate)
            await renewOnStream(this.tls, session.identity, msg.renewCertificate.csr, (m) => call.write(m));
        } catch (err) {
          this.logger.warn({ err, node: session?.node }, "agent message failed; closing the stream");
          // The agent re-registers with every status it holds, so nothing it
          // reported is lost when we could not record it now.
          const code = refusalCode(err) ?? (session ? grpc.status.UNAVAILABLE : grpc.status.INVALID_ARGUMENT);
          call.emit("error", { code, details: err instanceof Error ? err.message : String(err) });
        }
      });
    });
    const detach = (s: Session) => {
      if (this.sessions.get(s.node)?.stream !== call) return;
      this.logger.info({ node: s.node }, "agent disconnected");
      this.sessions.delete(s.node);
      this.disconnected.set(s.node, s);
    };
    const done = () => {
      ended = true;
      release();
      mux.closeAll(`the agent of node ${session?.node ?? "(unregistered)"} disconnected`);
      if (session) detach(session);
    };
    call.on("end", () => {
      done();
      call.end();
    });
    call.on("error", done);
    call.on("cancelled", done);
  }

  private async onRegister(
    call: Stream,
    reg: Register__Output,
    mux: SubStreamMux,
    id?: AgentIdentity,
  ): Promise<Session> {
    if (!reg.node) throw new GroveError("BadRequest", 'invalid node name ""');
    const name = reg.node.name;
    const info = nodeInfoOf(reg.node);
    await checkRegistration(id, info, this.tls);
    const now = new Date();
    const { subnet, presenceRev } = await this.nodes.register(info, reg.conditions);
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
      hadPorts: new Set(reg.instances.map((st) => st.uid)),
      mux,
      heardAt: this.clock(),
      heardWall: now,
      beatAt: this.clock(),
      beatWall: now,
      presenceRev,
      lost: false,
      ...(id ? { identity: { ...id } } : {}),
    };
    this.sessions.set(name, session);
    this.logger.info({ node: name, reported: reg.instances.length }, "agent registered");
    call.write({
      registered: {
        nodeName: name,
        heartbeatIntervalMs: this.heartbeatIntervalMs,
        subnet,
        egressDefault: this.nodes.egressDefault,
      },
    });
    // Applied to the stored instances, not our cache: the leader may have
    // marked them Unknown just before this registration, and our cache may
    // not show that yet; these reports are what brings their states back.
    for (const st of reg.instances) await this.onStatus(name, st, true);
    const reported = new Set(reg.instances.map((st) => st.uid));
    await this.nodes.markLost(name, reported);
    await this.nodes.markReleased(name, reported);
    await this.nodes.releaseHeldPorts(name, (uid) => !reported.has(uid), "its agent registered without it");
    this.pushDesired(name, true);
    return session;
  }

  /**
   * Runs every few hundred ms: marks sessions silent for longer than the
   * grace lost and, every presenceRefreshMs, vouches for all the others in
   * one write (the replica presence key, nodes/presence.ts) after dropping
   * those whose presence key moved elsewhere. No per-node write while
   * nothing changes.
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
        for (const s of [...this.sessions.values(), ...this.disconnected.values()]) {
          s.heardAt = Math.max(s.heardAt, now);
          s.beatAt = Math.max(s.beatAt, now);
        }
        return;
      }
      for (const s of [...this.disconnected.values()]) {
        const silent = this.clock() - s.heardAt;
        if (s.lost || silent <= this.graceMs) continue;
        await this.lose(
          s,
          NodeReadyReason.AgentDisconnected,
          `the agent's stream closed and it has not come back for ${(silent / 1000).toFixed(1)}s`,
          false,
        );
      }
      this.limits.prune();
      // Heartbeats proper may stop while other messages (log output) still flow: past
      // the stale time (what the leader's fallback allows) the node is not vouched for.
      const beatStaleMs = Math.max(this.graceMs, 3 * this.presenceRefreshMs);
      for (const s of [...this.sessions.values()]) {
        // The handshake checked the certificate when the stream opened; it may have expired since.
        const expired = s.lost ? undefined : expiredProblem(s.identity);
        if (expired) this.dropSession(s, expired, true, grpc.status.UNAUTHENTICATED);
        if (s.lost) continue;
        const now = this.clock();
        const silent = now - s.heardAt;
        const noBeat = now - s.beatAt;
        if (silent > this.graceMs || noBeat > beatStaleMs) {
          const quiet = silent > this.graceMs ? silent : noBeat;
          this.logger.warn({ node: s.node, silentMs: Math.round(quiet) }, "agent stopped heartbeating");
          await this.lose(
            s,
            NodeReadyReason.AgentNotHeartbeating,
            `no heartbeat from the agent for ${(quiet / 1000).toFixed(1)}s`,
          );
        }
      }
      await this.nodes.retryUnreachable();
      if (now - this.replicaBeatAt >= this.presenceRefreshMs) await this.beatReplica(now);
    } finally {
      this.sweeping = false;
    }
  }

  /**
   * Drops the streams whose presence key someone else moved (another replica
   * took the node, or it was marked lost), then vouches for the rest in one
   * write. A failure is retried at the next sweep; while it fails, the
   * leader's fallback sees our beat stand still, as it should.
   */
  private async beatReplica(now: number): Promise<void> {
    try {
      const live = [...this.sessions.values()].filter((x) => !x.lost);
      for (const s of movedAway(live, await this.nodes.presenceRevisions())) {
        if (this.sessions.get(s.node) !== s) continue;
        this.logger.warn({ node: s.node }, "node presence moved away from this replica; closing the stream");
        this.dropSession(s, "the node's presence was taken over");
      }
      await this.nodes.beatReplica(this.sessions.size);
      this.replicaBeatAt = now;
    } catch (err) {
      this.logger.warn({ err }, "could not refresh this replica's presence; will retry");
    }
  }

  private dropSession(s: Session, why: string, closeStream = true, code = grpc.status.UNAVAILABLE): void {
    s.lost = true;
    if (this.sessions.get(s.node) === s) this.sessions.delete(s.node);
    if (this.disconnected.get(s.node) === s) this.disconnected.delete(s.node);
    s.mux.closeAll(`the agent of node ${s.node}: ${why}`);
    if (closeStream) s.stream.emit("error", { code, details: why });
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
    const marked = await this.nodes.markUnreachable(s.node, s.presenceRev, reason, message, s.heardWall);
    if (marked) this.logger.warn({ node: s.node, reason, message }, "node not ready");
  }

  private async onStatus(node: string, report: InstanceStatus__Output, fresh = false): Promise<void> {
    const address = this.nodes.addressOf(node);
    const fold = (cur: Instance) => applyReport(cur, report, address);
    // At registration (fresh) each on its own: it must apply to the stored instance (recordStatus).
    const gone =
      this.statusBatch && !fresh
        ? await this.statusBatch.record(node, report, fold)
        : await this.nodes.recordStatus(node, report, fold, fresh);
    if (gone && report.released)
      await this.nodes.releaseHeldPorts(node, (u) => u === report.uid, "its agent reported it gone");
  }

  /** A gone instance whose agent never had it (never sent it): its Node need not hold its host ports. */
  private releaseIfNeverHad(node: string, uid: string): void {
    const s = this.sessions.get(node);
    if (!s || s.lost || s.hadPorts.delete(uid)) return; // the agent reports it released (or registers without it)
    this.nodes
      .releaseHeldPorts(node, (u) => u === uid, "its agent never had it")
      .catch((err: unknown) =>
        this.logger.warn({ err, node, uid }, "could not release the host ports of a gone instance"),
      );
  }

  /**
   * The node's set may have changed: it is sent once this turn of the event
   * loop's watch events are in (setImmediate), not once per event. A pass
   * that binds 40 instances to a node arrives as 40 events of one watch
   * response; sending after each would build, fingerprint and serialise the
   * growing set 40 times (docs/scheduling.md, "End to end: where the time
   * went"). The set sent is the same one the last event would have sent.
   */
  private markDesired(node: string): void {
    if (!this.sessions.has(node)) return;
    this.dirtyDesired.add(node);
    if (this.desiredFlush) return;
    this.desiredFlush = setImmediate(() => this.flushDesired());
  }

  private flushDesired(): void {
    this.desiredFlush = undefined;
    const nodes = [...this.dirtyDesired];
    this.dirtyDesired.clear();
    if (this.closing) return;
    for (const node of nodes) this.pushDesired(node);
  }

  private pushDesired(node: string, force = false): void {
    const session = this.sessions.get(node);
    if (!session) return;
    const cluster = this.cluster;
    if (cluster?.state === "suspect") {
      // Sending what this store holds could stop what the node runs for good.
      if (force) this.logger.error({ node, holds: cluster.holds }, SUSPECT_STORE_NOT_SENT);
      return;
    }
    if (!this.instances.isFresh) {
      // The cache may be behind etcd (cut off, or compacted meanwhile): a set
      // from it could stop what the node should run. The agent keeps what it
      // has; the set goes out once the cache is fresh (onFreshness above).
      const log = force ? this.logger.warn.bind(this.logger) : this.logger.debug.bind(this.logger);
      log({ node }, "not sending the node its desired set: this replica's instance cache is stale");
      return;
    }
    const { fingerprint, desired } = desiredMessage(node, this.nodes.instancesOf(node), this.env, {
      revision: this.instances.revision,
      clusterId: cluster?.id ?? "",
      leaderEpoch: this.leaderEpoch(),
    });
    if (!force && fingerprint === session.lastSent) return;
    session.lastSent = fingerprint;
    for (const uid of uidsWithPorts(desired)) session.hadPorts.add(uid);
    // Part of the trace that bound (or changed) one of these instances, when traced.
    session.stream.write({
      desired: { ...desired, traceContext: desiredSetTraceContext(node, desired.instances ?? []) },
    });
  }
}
