// Presence that costs etcd little at thousands of nodes.
//
// A node's presence key (Keys.heartbeat, /grove/heartbeats/<node>) is written
// only when something changes: when a replica takes the node's stream (at
// registration) and when the node is given up (deleted, together with
// Ready=Unknown). It names the replica holding the stream by a random id of
// that replica's process.
//
// What shows that the holder is still there is one key per replica,
// /grove/replica-presence/<replica id>, which the replica rewrites every
// PRESENCE_REFRESH_MS from the same sweep that times its agents' silence
// (grpc/agent-gateway.ts): as long as that sweep runs, every node whose
// stream it holds has been heard within the grace, or it would have been
// marked Unknown. So steady-state presence costs one write per replica per
// refresh, not one per node (5,000 nodes: 0.2 writes/s instead of 1,000).
//
// The leader's fallback (controllers/node-lifecycle.ts) reads both: a Ready
// node is fresh while its presence key or its holder's replica key changes;
// when neither has changed for PRESENCE_STALE_MS by the leader's own
// monotonic clock (the holder died, or is paused), the node goes Unknown,
// exactly as when each node's key was refreshed on its own. A presence key
// that names no replica (older grove-server, tests that write presence keys
// themselves) is judged by its own changes alone.
import { randomUUID } from "node:crypto";
import type { KeyValue, Store } from "../store/store";

/** The value of a node's presence key (Keys.heartbeat). */
export interface Heartbeat {
  /** When the holding replica took the stream or last heard the agent (its wall clock; for people, never compared). */
  time: string;
  /** The grove-server replica (its HTTP URL) holding the node's agent stream. */
  server?: string;
  /** That replica's process id (newReplicaId): its beat under REPLICA_PRESENCE_PREFIX vouches for the node. */
  replica?: string;
}

/** Under /grove/replica-presence/<replica id>: a live replica's beat. */
export const REPLICA_PRESENCE_PREFIX = "/grove/replica-presence/";

export function replicaPresenceKey(replica: string): string {
  return REPLICA_PRESENCE_PREFIX + replica;
}

/** The value of a replica's presence key. */
export interface ReplicaBeat {
  /** Its wall clock when it wrote the key (for people; never compared with another machine's). */
  time: string;
  /** Its advertised HTTP URL, when known. */
  server?: string;
  /** How many agent streams it held then. */
  streams: number;
}

/** A fresh id for this replica process (a restarted replica is a new one: its old streams are gone). */
export function newReplicaId(): string {
  return randomUUID();
}

/** Writes the replica's beat (one put); returns the revision. */
export async function writeReplicaBeat(store: Store, replica: string, beat: ReplicaBeat): Promise<string> {
  const r = await store.txn([], [{ type: "put", key: replicaPresenceKey(replica), value: beat }]);
  return r.revision;
}

/** Removes the replica's beat (a clean shutdown). */
export async function removeReplicaBeat(store: Store, replica: string): Promise<void> {
  await store.txn([], [{ type: "delete", key: replicaPresenceKey(replica) }]);
}

/** Every replica beat, by replica id. */
export async function listReplicaBeats(store: Store): Promise<Map<string, KeyValue<ReplicaBeat>>> {
  const out = new Map<string, KeyValue<ReplicaBeat>>();
  for (const kv of (await store.list<ReplicaBeat>(REPLICA_PRESENCE_PREFIX)).items) {
    out.set(kv.key.slice(REPLICA_PRESENCE_PREFIX.length), kv);
  }
  return out;
}

/**
 * What shows a node is present, as one token: its presence key's revision
 * and, when the key names a replica, that replica's beat revision. The
 * token changes while either is written; "0" when the node has no presence key.
 */
export function presenceToken(
  presence: KeyValue<Heartbeat> | undefined,
  replicas: ReadonlyMap<string, KeyValue<ReplicaBeat>>,
): string {
  if (!presence) return "0";
  const replica = presence.value.replica;
  if (!replica) return presence.modRevision;
  return `${presence.modRevision}/${replicas.get(replica)?.modRevision ?? "0"}`;
}

/**
 * When the node was last known to be heard, for people: the later of its
 * presence key's time and its holder's last beat (the holder marks a node
 * Unknown within the grace of silence, so while it beats the node was heard).
 */
export function lastHeardTime(
  presence: Heartbeat | undefined,
  replicas: ReadonlyMap<string, KeyValue<ReplicaBeat>>,
): string | undefined {
  if (!presence) return undefined;
  const beat = presence.replica ? replicas.get(presence.replica)?.value.time : undefined;
  if (!beat || Date.parse(beat) < Date.parse(presence.time)) return presence.time;
  return beat;
}

/**
 * The streams (node, presence revision written at registration) whose
 * presence key now has another revision or is gone: someone else took the
 * node or gave it up. `held` was read at store revision `revision`; a stream
 * registered after that read is newer than what it shows and is kept.
 */
export function movedAway<S extends { node: string; presenceRev: string }>(
  streams: readonly S[],
  held: { revisions: ReadonlyMap<string, string>; revision: string },
): S[] {
  return streams.filter(
    (s) => BigInt(s.presenceRev) <= BigInt(held.revision) && held.revisions.get(s.node) !== s.presenceRev,
  );
}
