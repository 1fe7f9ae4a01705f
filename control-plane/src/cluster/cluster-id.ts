// The cluster's identity: a random id made once, when the store is first
// started, and kept in the store itself. Desired sets carry it, and an agent
// that has applied a set of one cluster refuses sets of another (agent
// grpc/desired-state-guard.ts). So a control plane whose store was wiped or
// swapped comes back with a new id, and its (empty) desired sets cannot make
// the agents stop everything they run.
import { randomUUID } from "node:crypto";
import { Keys, type Store } from "../store/store";

export const CLUSTER_KEY = "/grove/cluster";

export interface ClusterRecord {
  id: string;
  createdAt: string;
}

/** Collections whose objects mean the store was in use before (a store without them is new). */
const IN_USE_PREFIXES = ["apps", "nodes", "instances"] as const;

export type ClusterIdentity =
  | { state: "ok"; id: string; created: boolean }
  /**
   * The store holds objects but no cluster id: its id key was lost (a partial
   * wipe, a restore of part of it) or it was written by a Grove from before
   * cluster ids. Which one cannot be told from here, so nothing is served
   * until an operator says so (grove-server --assign-cluster-id).
   */
  | { state: "suspect"; holds: string[] };

/**
 * Reads the cluster id, creating it (a create-only transaction: of two
 * replicas starting at once, one wins and both use its id) when the store is
 * new, or when `assign` says an operator vouched for a store that is not.
 */
export async function ensureClusterId(store: Store, opts: { assign?: boolean } = {}): Promise<ClusterIdentity> {
  const existing = await store.get<ClusterRecord>(CLUSTER_KEY);
  if (existing?.value.id) return { state: "ok", id: existing.value.id, created: false };
  const holds: string[] = [];
  for (const plural of IN_USE_PREFIXES) {
    const page = await store.listPage(Keys.collection(plural), { limit: 1 });
    if (page.items.length > 0) holds.push(plural);
  }
  if (holds.length > 0 && opts.assign !== true) return { state: "suspect", holds };
  const record: ClusterRecord = { id: randomUUID(), createdAt: new Date().toISOString() };
  const r = await store.txn(
    [{ key: CLUSTER_KEY, modRevision: "0" }],
    [{ type: "put", key: CLUSTER_KEY, value: record }],
  );
  if (r.succeeded) return { state: "ok", id: record.id, created: true };
  const winner = await store.get<ClusterRecord>(CLUSTER_KEY);
  if (!winner?.value.id) throw new Error(`${CLUSTER_KEY} exists but holds no cluster id`);
  return { state: "ok", id: winner.value.id, created: false };
}
