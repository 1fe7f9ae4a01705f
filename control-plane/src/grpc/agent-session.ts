// The gateway's bookkeeping types: how it times its agents and what it keeps
// per connected agent (one Connect stream each).
import type * as grpc from "@grpc/grpc-js";
import type { AgentMessage__Output, ControlMessage } from "@grove/proto";
import type { MonotonicClock } from "../controllers/node-lifecycle";
import type { SubStreamMux } from "./sub-streams";
import type { AgentIdentity } from "./agent-identity";

/** How the gateway times its agents (grove-server --node-grace, --heartbeat-interval). */
export interface PresenceOptions {
  /** Agent silence after which the node is marked Ready=Unknown and its stream closed. */
  graceMs?: number;
  heartbeatIntervalMs?: number;
  presenceRefreshMs?: number;
  clock?: MonotonicClock;
}

export type Stream = grpc.ServerDuplexStream<AgentMessage__Output, ControlMessage>;

export interface Session {
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
  /** Our write of the node's presence key at registration: its mod revision (the fence of giving the node up). */
  presenceRev: string;
  /** Set once the session is given up, so it is marked lost only once. */
  lost: boolean;
  /** The node certificate the stream holds (its serial and expiry follow renewals on the stream); none without TLS. */
  identity?: AgentIdentity;
}
