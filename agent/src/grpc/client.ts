// The agent's end of AgentService.Connect: one bidirectional stream to the
// control plane, re-opened forever with exponential backoff.
//
// Per stream (a "session"): Register first, carrying the node's facts and
// the status of every instance the reconciler knows (so nothing reported
// while disconnected is lost); then status reports as they happen, and a
// heartbeat at the interval the Registered answer asks for. Every
// DesiredInstances goes to the reconciler once the DesiredStateGuard admits
// it (same cluster, not older than what was applied); the reconciler keeps
// converging (and keeps containers running) whether or not a stream is up.
//
// Several control-plane addresses (one per grove-server replica) may be
// given: a stream that ends or cannot be opened moves the agent to the next
// one at once, and only a whole round of failures waits out the backoff. A
// replica that goes away so costs its agents one reconnect (a few hundred
// ms), well within the node grace: the replica they reach writes the node's
// presence key and the node stays Ready.
//
// The control plane answers every heartbeat; the time since the last answer
// (minus one interval, the normal gap) is how long the node has been without
// contact: spec.disconnect.stopAfter is measured with it, on the monotonic clock.
import { extractTraceContext, SpanKind, withSpan } from "@grove/common";
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import { Backoff } from "@grove/common";
import { pino, type Logger } from "pino";
import {
  AGENT_TOKEN_METADATA,
  loadGroveProto,
  type AgentMessage,
  type AgentServiceClient,
  type ControlMessage__Output,
  type DesiredInstances__Output,
  type InstanceStatus,
  type NodeInfo,
  type Registered__Output,
} from "@grove/proto";
import type { StreamOutlet } from "../streams/sub-streams";
import type { DesiredHeader, GuardCondition, Verdict } from "./desired-state-guard";

/** What the connection needs from the DesiredStateGuard. */
export interface DesiredSetGuard {
  admit(set: DesiredHeader): Verdict;
  condition(): GuardCondition;
}

/** What the connection needs from the reconciler. */
export interface DesiredStateSink {
  setDesired(desired: Omit<DesiredInstances__Output, "leaderEpoch" | "traceContext">): void;
  statuses(): InstanceStatus[];
}

export interface ControlPlaneConnectionOptions {
  /** host:port of the control plane's gRPC listener. */
  address: string;
  /** Every replica's host:port, tried in turn (default: [address]). */
  addresses?: readonly string[];
  /** Join token, sent as x-grove-agent-token metadata on every stream. */
  token: string;
  /** Called on every (re)connect, so the Register carries current facts. */
  nodeInfo: () => NodeInfo;
  reconciler: DesiredStateSink;
  /** Told about every Registered answer (node subnet, egress default), before any desired set. */
  onRegistered?: (registered: Registered__Output) => void;
  logger?: Logger;
  /** Insecure unless given (TLS comes later). */
  credentials?: grpc.ChannelCredentials;
  /** Heartbeat interval until (or unless) Registered names one. */
  defaultHeartbeatIntervalMs?: number;
  /** Reconnect backoff: first delay, doubling up to the max, with ±20 % jitter. */
  reconnectInitialDelayMs?: number;
  reconnectMaxDelayMs?: number;
  random?: () => number;
  channelOptions?: grpc.ChannelOptions;
  /**
   * Serves the sub-streams (logs, exec, stats) the control plane opens on the
   * Connect stream: attached once a stream is registered, detached (every
   * sub-stream cancelled) when it ends.
   */
  streams?: SubStreamHost;
  /** Admits desired sets (cluster id, revision); without it every set is applied. */
  guard?: DesiredSetGuard;
  /** The monotonic clock in ms (tests). */
  monotonicNow?: () => number;
}

/** What the connection needs from the sub-stream server (streams/sub-streams.ts). */
export interface SubStreamHost {
  attach(outlet: StreamOutlet): void;
  detach(): void;
  handle(message: ControlMessage__Output): boolean;
}

type Session = {
  id: number;
  address: string;
  call: grpc.ClientDuplexStream<AgentMessage, ControlMessage__Output>;
  heartbeat?: NodeJS.Timeout;
  registered: boolean;
  ended: boolean;
  /** Called once when the session ends (pending sub-stream writes give up). */
  onEnd: Set<() => void>;
  /** The answer to a RenewCertificate sent on this stream (one at a time). */
  renewal?: { resolve(certificatePem: string): void; reject(error: Error): void };
};

const DEFAULT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Notice a dead control plane (or a dead path to it) without waiting for TCP.
  "grpc.keepalive_time_ms": 20_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  // The channel's own reconnect backoff, kept in step with the stream's.
  "grpc.initial_reconnect_backoff_ms": 250,
  "grpc.max_reconnect_backoff_ms": 5_000,
};

/** Between two addresses of one round: the next replica is tried almost at once. */
const NEXT_ADDRESS_DELAY_MS = 100;

export class ControlPlaneConnection {
  private readonly addresses: readonly string[];
  /** One channel per address, made when first dialled. */
  private readonly clients = new Map<string, AgentServiceClient>();
  /** The address the next stream dials (index into addresses). */
  private current = 0;
  /** Failed attempts since the last registration: a whole round of them waits out the backoff. */
  private failedAttempts = 0;
  private readonly log: Logger;
  private readonly reconnectBackoff: Backoff;
  private session: Session | undefined;
  private sessionCounter = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly monotonicNow: () => number;
  /** Monotonic ms of the last message from the control plane (or of the agent's start). */
  private lastHeardMs: number;
  private heartbeatIntervalMs: number;
  /** The last DesiredStateRefused condition sent ("status/reason"). */
  private conditionSent = "";

  constructor(private readonly options: ControlPlaneConnectionOptions) {
    this.log = options.logger ?? pino({ level: "silent" });
    this.reconnectBackoff = new Backoff(
      {
        initialMs: options.reconnectInitialDelayMs ?? 250,
        maxMs: options.reconnectMaxDelayMs ?? 5_000,
        jitter: 0.2,
      },
      options.random,
    );
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
    this.lastHeardMs = this.monotonicNow();
    this.heartbeatIntervalMs = options.defaultHeartbeatIntervalMs ?? 5_000;
    this.addresses = options.addresses?.length ? [...options.addresses] : [options.address];
  }

  /** The address of the replica the current (or next) stream is with. */
  get address(): string {
    return this.session?.address ?? this.addresses[this.current]!;
  }

  private clientFor(address: string): AgentServiceClient {
    let client = this.clients.get(address);
    if (!client) {
      const proto = loadGroveProto();
      client = new proto.grove.v1.AgentService(address, this.options.credentials ?? grpc.credentials.createInsecure(), {
        ...DEFAULT_CHANNEL_OPTIONS,
        ...this.options.channelOptions,
      });
      this.clients.set(address, client);
    }
    return client;
  }

  /** True while a stream is open and the control plane has answered Registered. */
  get registered(): boolean {
    return this.session?.registered ?? false;
  }

  /**
   * How long the node has been without contact with the control plane, in
   * ms: the time since its last message (an answered heartbeat, Registered,
   * a desired set, ...) beyond one heartbeat interval (the gap between two
   * answers). A stream that is up is not contact by itself: a link cut right
   * after registering, before the first heartbeat was answered, must count
   * (it once delayed spec.disconnect.stopAfter by the ~20 s until the stream
   * was torn down).
   */
  withoutContactMs(): number {
    return Math.max(0, this.monotonicNow() - this.lastHeardMs - this.heartbeatIntervalMs);
  }

  /** Opens the first stream; reconnects on its own from then on. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /** Ends the stream and stops reconnecting; containers are not touched. */
  stop(): void {
    this.running = false;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const session = this.session;
    if (session) {
      this.endSession(session, "agent stopping");
      session.call.end();
      session.call.cancel();
    }
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  /**
   * Sends a status report when a stream is up. Otherwise it is dropped here:
   * the reconciler still holds it and the next Register carries it.
   */
  reportStatus(status: InstanceStatus): void {
    const session = this.session;
    if (!session || session.ended) return;
    session.call.write({ status });
  }

  /**
   * Asks for a renewed node certificate over the registered stream (the
   * stream's certificate is the credential); resolves with the certificate
   * (PEM). Rejects when no stream is registered, the request was refused, or
   * the stream ended first.
   */
  renewCertificate(csrPem: string, timeoutMs = 30_000): Promise<string> {
    const session = this.session;
    if (!session?.registered || session.ended) return Promise.reject(new Error("no registered stream"));
    if (session.renewal) return Promise.reject(new Error("a renewal is under way"));
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no answer to the renewal within ${timeoutMs} ms`)), timeoutMs);
      const onEnd = () => done(new Error("the control plane stream ended"));
      const done = (error: Error | undefined, pem?: string) => {
        clearTimeout(timer);
        session.onEnd.delete(onEnd);
        session.renewal = undefined;
        if (error) reject(error);
        else resolve(pem!);
      };
      session.onEnd.add(onEnd);
      session.renewal = { resolve: (pem) => done(undefined, pem), reject: done };
      session.call.write({ renewCertificate: { csr: csrPem } });
    });
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (!this.running) return;
    const metadata = new grpc.Metadata();
    metadata.set(AGENT_TOKEN_METADATA, this.options.token);
    const address = this.addresses[this.current]!;
    const call = this.clientFor(address).Connect(metadata);
    const session: Session = {
      id: ++this.sessionCounter,
      address,
      call,
      registered: false,
      ended: false,
      onEnd: new Set(),
    };
    this.session = session;

    call.on("data", (message: ControlMessage__Output) => this.onMessage(session, message));
    call.on("error", (error: grpc.ServiceError) => {
      this.endSession(session, `${grpc.status[error.code] ?? error.code}: ${error.details || error.message}`);
    });
    call.on("end", () => this.endSession(session, "stream ended by the control plane"));

    let instances: InstanceStatus[];
    try {
      instances = this.options.reconciler.statuses();
      const conditions = this.options.guard ? [this.options.guard.condition()] : [];
      call.write({ register: { node: this.options.nodeInfo(), instances, conditions } });
      this.conditionSent = conditions[0] ? `${conditions[0].status}/${conditions[0].reason}` : "";
    } catch (error) {
      call.cancel();
      this.endSession(session, `could not build Register: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.log.debug({ session: session.id, instances: instances.length }, "stream opened; Register sent");
  }

  private onMessage(session: Session, message: ControlMessage__Output): void {
    if (session.ended) return;
    this.lastHeardMs = this.monotonicNow();
    // A heartbeat's answer carries nothing else: hearing it (lastHeardMs) is the point.
    if (message.heartbeatAck) return;
    if (message.certificateIssued) {
      const { certificate, error } = message.certificateIssued;
      if (certificate) session.renewal?.resolve(certificate);
      else session.renewal?.reject(new Error(`renewal refused: ${error || "no certificate"}`));
    } else if (message.registered) {
      const interval = message.registered.heartbeatIntervalMs || this.options.defaultHeartbeatIntervalMs || 5_000;
      this.heartbeatIntervalMs = interval;
      session.registered = true;
      this.reconnectBackoff.reset();
      this.failedAttempts = 0;
      try {
        this.options.onRegistered?.(message.registered);
      } catch (error) {
        this.log.error({ err: error }, "Registered listener threw");
      }
      if (session.heartbeat) clearInterval(session.heartbeat);
      session.heartbeat = setInterval(() => {
        if (!session.ended) session.call.write({ heartbeat: { sentAtMs: Date.now() } });
      }, interval);
      this.options.streams?.attach(this.outletOf(session));
      this.log.info(
        { address: session.address, nodeName: message.registered.nodeName, heartbeatIntervalMs: interval },
        "registered with the control plane",
      );
    } else if (message.desired) {
      const desired = message.desired;
      this.log.debug(
        { clusterId: desired.clusterId, revision: desired.revision, instances: desired.instances.length },
        "desired instances received",
      );
      if (!this.admit(session, desired)) return;
      // The epoch is the guard's business; the reconciler gets the set.
      const { leaderEpoch: _epoch, traceContext, ...set } = desired;
      // Part of the control plane's trace when it sent one (docs/observability.md).
      const parent = extractTraceContext(traceContext ?? {});
      void withSpan("agent desired set", () => this.options.reconciler.setDesired(set), {
        parent,
        childOnly: true,
        kind: SpanKind.CONSUMER,
        attributes: { "grove.instances": set.instances.length, "grove.revision": String(set.revision) },
      }).catch((err: unknown) => this.log.error({ err }, "applying the desired set failed"));
    } else if (session.registered) {
      this.options.streams?.handle(message);
    }
  }

  /** Asks the guard; reports the DesiredStateRefused condition when it changes. True: apply the set. */
  private admit(session: Session, desired: DesiredInstances__Output): boolean {
    const guard = this.options.guard;
    if (!guard) return true;
    let verdict: Verdict;
    try {
      verdict = guard.admit({
        clusterId: desired.clusterId,
        revision: desired.revision,
        leaderEpoch: desired.leaderEpoch,
      });
    } catch (error) {
      // Could not record it (disk full?): applying is what an agent without the guard does.
      this.log.error({ err: error }, "could not record the desired set's cluster id and revision; applying it anyway");
      verdict = { accept: true };
    }
    if (!verdict.accept) {
      this.log.warn(
        { reason: verdict.reason, clusterId: desired.clusterId, revision: desired.revision, message: verdict.message },
        "desired set refused; every container keeps running",
      );
    }
    const condition = guard.condition();
    const key = `${condition.status}/${condition.reason}`;
    if (key !== this.conditionSent && !session.ended) {
      this.conditionSent = key;
      session.call.write({ condition });
    }
    return verdict.accept;
  }

  /**
   * Writes sub-stream messages to this session's call, waiting for its write
   * buffer to drain when it is full, so output never piles up ahead of
   * heartbeats and status reports.
   */
  private outletOf(session: Session): StreamOutlet {
    return {
      write: (message) =>
        new Promise<void>((resolve, reject) => {
          if (session.ended) return reject(new Error("the control plane stream has ended"));
          if (session.call.write(message)) return resolve();
          const done = (error?: Error) => {
            session.call.off("drain", onDrain);
            session.onEnd.delete(onEnd);
            if (error) reject(error);
            else resolve();
          };
          const onDrain = () => done();
          const onEnd = () => done(new Error("the control plane stream has ended"));
          session.call.on("drain", onDrain);
          session.onEnd.add(onEnd);
        }),
    };
  }

  private endSession(session: Session, reason: string): void {
    if (session.ended) return;
    session.ended = true;
    if (session.heartbeat) clearInterval(session.heartbeat);
    if (session.registered) this.options.streams?.detach();
    for (const f of [...session.onEnd]) f();
    if (this.session === session) this.session = undefined;
    if (!this.running) return;
    // Make sure our half is closed too, whichever side failed.
    session.call.cancel();
    // The next stream goes to the next replica; a whole round of failed
    // attempts (every replica tried) waits out the backoff.
    this.current = (this.current + 1) % this.addresses.length;
    this.failedAttempts++;
    const delay =
      this.addresses.length > 1 && this.failedAttempts < this.addresses.length
        ? NEXT_ADDRESS_DELAY_MS
        : this.reconnectBackoff.next();
    if (this.failedAttempts >= this.addresses.length) this.failedAttempts = 0;
    const logFields = { address: session.address, next: this.addresses[this.current], reason, reconnectInMs: delay };
    if (reason.startsWith("UNAUTHENTICATED"))
      this.log.error(logFields, "the control plane refuses this node's certificate; retrying");
    else if (session.registered) this.log.warn(logFields, "lost the control plane stream; reconnecting");
    else this.log.info(logFields, "could not register with the control plane; retrying");
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}
