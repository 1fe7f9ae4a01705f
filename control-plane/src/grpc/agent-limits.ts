// Per-node limits on the agents' endpoint, so one node (a bug, or a node an
// attacker owns) cannot flood the control plane: token buckets per node for
// heartbeats, reports (status and condition messages: each one a store
// write), sub-stream output bytes (logs, exec) and certificate renewals, and
// a cap on the streams a node holds open at once.
//
// Over a rate, a stream is not cut: the gateway stops reading it until the
// node's bucket has refilled (backpressure through HTTP/2 flow control), so
// a flooding node is slowed to its rate, loses nothing it sent, and costs
// the store no more than its share, while other nodes go on as before.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { AgentMessage__Output } from "@grove/proto";

export interface AgentLimitOptions {
  /** Heartbeats per second (an agent sends one per --heartbeat-interval). */
  heartbeats: number;
  /** Status and condition messages per second. */
  reports: number;
  /** Sub-stream output (logs, exec, stats) in bytes per second. */
  output: number;
  /** Certificate renewals per minute. */
  renewals: number;
  /** Connect streams one node may hold open at once. */
  streams: number;
}

/** Bursts up to twice each rate (a reconnecting node reports everything at once). */
export const DEFAULT_AGENT_LIMITS: AgentLimitOptions = {
  heartbeats: 10,
  reports: 200,
  output: 16 * 1024 * 1024,
  renewals: 6,
  streams: 4,
};

const UNITS: Record<string, number> = { "": 1, k: 1e3, ki: 1024, m: 1e6, mi: 1024 ** 2, g: 1e9, gi: 1024 ** 3 };

/** "heartbeats=10,reports=200,output=16Mi,renewals=6,streams=4" (any subset) over the defaults. */
export function parseAgentLimits(text: string, flag = "--agent-limits"): AgentLimitOptions {
  const out = { ...DEFAULT_AGENT_LIMITS };
  for (const part of text.split(",").filter(Boolean)) {
    const [k, v] = part.split("=");
    const m = /^([1-9][0-9]*)([kKmMgG]i?)?$/.exec(v ?? "");
    const unit = m ? UNITS[(m[2] ?? "").toLowerCase()] : undefined;
    if (!k || !(k in out) || !m || unit === undefined || (k !== "output" && m[2])) {
      throw new Error(
        `${flag}: "${part}" is not one of heartbeats=N, reports=N, output=N[Ki|Mi|Gi], renewals=N, streams=N (N > 0)`,
      );
    }
    out[k as keyof AgentLimitOptions] = Number(m[1]) * unit;
  }
  return out;
}

type Kind = "heartbeats" | "reports" | "output" | "renewals";

/** What a message costs, and from which bucket. Registrations are once per stream (streams caps them). */
export function costOf(msg: AgentMessage__Output): { kind: Kind; cost: number } | undefined {
  if (msg.heartbeat) return { kind: "heartbeats", cost: 1 };
  if (msg.status || msg.condition) return { kind: "reports", cost: 1 };
  if (msg.streamOutput) return { kind: "output", cost: Math.max(1, msg.streamOutput.data?.length ?? 0) };
  if (msg.streamEnd) return { kind: "output", cost: 1 };
  if (msg.renewCertificate) return { kind: "renewals", cost: 1 };
  return undefined;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class AgentLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly open = new Map<string, number>();
  /** Monotonic ms of the last throttling logged per node and kind. */
  private readonly warned = new Map<string, number>();

  constructor(
    readonly options: AgentLimitOptions = DEFAULT_AGENT_LIMITS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  private perSecond(kind: Kind): number {
    return kind === "renewals" ? this.options.renewals / 60 : this.options[kind];
  }

  private burst(kind: Kind): number {
    const rate = this.perSecond(kind);
    // Output: at least one full sub-stream window's worth of 32 KiB chunks; renewals: twice the per-minute count.
    if (kind === "output") return Math.max(2 * rate, 256 * 1024);
    return kind === "renewals" ? 2 * this.options.renewals : Math.max(2 * rate, 1);
  }

  /**
   * Takes `msg`'s cost from the node's bucket (it may go into debt) and
   * answers how long to stop reading the node's stream: 0 within its rate.
   */
  delayFor(node: string, msg: AgentMessage__Output): number {
    const c = costOf(msg);
    if (!c) return 0;
    const rate = this.perSecond(c.kind);
    const burst = this.burst(c.kind);
    const key = `${c.kind}:${node}`;
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate) - c.cost;
    b.at = now;
    this.buckets.set(key, b);
    return b.tokens >= 0 ? 0 : (-b.tokens / rate) * 1000;
  }

  /** True at most every 10 s per node and kind: when to log that a node is being throttled. */
  shouldWarn(node: string, msg: AgentMessage__Output): boolean {
    const key = `${costOf(msg)?.kind}:${node}`;
    const now = this.now();
    const last = this.warned.get(key);
    if (last !== undefined && now - last < 10_000) return false;
    this.warned.set(key, now);
    return true;
  }

  /** Counts an open stream of the node; undefined when it holds its maximum already, else its release. */
  openStream(node: string): (() => void) | undefined {
    const n = this.open.get(node) ?? 0;
    if (n >= this.options.streams) return undefined;
    this.open.set(node, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(node) ?? 1) - 1;
      if (left > 0) this.open.set(node, left);
      else this.open.delete(node);
    };
  }

  /** Forgets buckets that have refilled (a full bucket is the same as none): called now and then. */
  prune(): void {
    const now = this.now();
    for (const [key, b] of this.buckets) {
      const kind = key.slice(0, key.indexOf(":")) as Kind;
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond(kind) >= this.burst(kind)) this.buckets.delete(key);
    }
    for (const [key, at] of this.warned) if (now - at > 60_000) this.warned.delete(key);
  }
}

/**
 * Counts a new stream of `node` against its cap; when it holds its maximum
 * the stream ends at once (RESOURCE_EXHAUSTED) and undefined is answered.
 */
export function admitStream(limits: AgentLimits, node: string, call: grpc.ServerDuplexStream<unknown, unknown>) {
  const release = limits.openStream(node);
  if (!release) {
    const details = `node ${node} holds ${limits.options.streams} streams open already (the most it may)`;
    call.emit("error", { code: grpc.status.RESOURCE_EXHAUSTED, details });
  }
  return release;
}

/** Stops reading `call` while its node is over its rate for `msg` (backpressure), logging it now and then. */
export function throttle(
  limits: AgentLimits,
  node: string,
  msg: AgentMessage__Output,
  call: grpc.ServerDuplexStream<unknown, unknown>,
  logger: Logger,
): void {
  const delayMs = limits.delayFor(node, msg);
  if (delayMs <= 0) return;
  if (limits.shouldWarn(node, msg)) logger.warn({ node, kind: costOf(msg)?.kind }, "agent over its rate; throttled");
  call.pause();
  setTimeout(() => call.resume(), delayMs).unref();
}
