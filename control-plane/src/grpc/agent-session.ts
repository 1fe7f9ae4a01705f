// The gateway's bookkeeping types: how it times its agents and what it keeps
// per connected agent (one Connect stream each).
import type * as grpc from "@grpc/grpc-js";
import type { AgentMessage__Output, ControlMessage } from "@grove/proto";
import type { MonotonicClock } from "../controllers/node-lifecycle";
import type { SubStreamMux } from "./sub-streams";
import type { AgentIdentity } from "./agent-identity";
import { hostPortsHeldBy, type Instance } from "@grove/api";

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
  /**
   * Uids of instances with host ports this agent has had in this session (in
   * its Register or a set sent since): it reports each released once gone.
   * One it never had releases the ports its Node holds for it at once.
   */
  hadPorts: Set<string>;
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

/**
 * The node and uid of an instance with host ports that an informer event
 * shows leaving the API (deleted, or overwritten by a new uid under its name).
 */
export function goneWithPorts(
  ev: { type: "deleted"; object: Instance } | { type: "updated"; object: Instance; old: Instance } | { type: "added" },
): { node: string; uid: string } | undefined {
  if (ev.type === "added") return undefined;
  const gone = ev.type === "deleted" ? ev.object : ev.old;
  if (ev.type === "updated" && ev.object.metadata.uid === gone.metadata.uid) return undefined;
  const node = gone.spec.nodeName;
  const uid = gone.metadata.uid;
  return node && uid && hostPortsHeldBy(gone).length > 0 ? { node, uid } : undefined;
}

/** Uids of the instances in a desired set that publish host ports. */
export function uidsWithPorts(set: {
  instances?: Array<{ uid?: string; ports?: Array<{ hostPort?: number }> }>;
}): string[] {
  return (set.instances ?? []).flatMap((i) => (i.uid && i.ports?.some((p) => (p.hostPort ?? 0) > 0) ? [i.uid] : []));
}
