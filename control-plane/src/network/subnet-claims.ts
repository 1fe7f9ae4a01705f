// Node subnets, allocated safely across grove-server replicas. Each subnet
// handed out has a claim key, /grove/subnets/<network>-<prefix> = {node},
// created in an etcd transaction that requires the key to be absent: two
// replicas registering two nodes at once may pick the same free subnet, but
// only one create succeeds and the other picks again. No in-process lock and
// no in-process map, so a replica restart or a second replica changes nothing.
//
// A claim outlives its Node object (deleting a Node does not free the
// subnet): a node that registers again under the same name gets the same
// subnet back, and its running instances keep their addresses.
import { performance } from "node:perf_hooks";
import { GroveError } from "@grove/api";
import type { Store } from "../store/store";
import { allocateSubnet, formatCidr, parseCidr, type Cidr } from "./subnets";

export const SUBNET_CLAIMS = "/grove/subnets/";

/** A claim's value: the node the subnet belongs to. */
export interface SubnetClaim {
  node: string;
}

export const subnetClaimKey = (subnet: string) => `${SUBNET_CLAIMS}${subnet.replace("/", "-")}`;
const subnetOfKey = (key: string) => key.slice(SUBNET_CLAIMS.length).replace(/-(\d+)$/, "/$1");

/** How often a claim is retried when another replica took the subnet first. */
const CLAIM_ATTEMPTS = 16;

export interface SubnetRequest {
  node: string;
  cluster: Cidr;
  prefix: number;
  /** The subnet the Node object records, if it has one (kept, and claimed if it was not yet). */
  recorded?: string;
  /** Subnets recorded on Node objects (from before claims existed): taken too. */
  nodeSubnets: readonly string[];
}

/** The claims as one list read them: each node's subnet, each subnet's node, the ranges taken. */
interface ClaimsView {
  byNode: Map<string, string>;
  bySubnet: Map<string, string>;
  taken: Cidr[];
}

/**
 * The claims this replica listed last, for at most `maxAgeMs` (monotonic),
 * with the claims it made since added. Listing and decoding every claim at
 * each new node's registration made joining N nodes quadratic: at 2,000
 * hollow nodes the list was the largest part of the server's registration
 * work. A stale view cannot hand out a taken subnet (the claim is created
 * only if absent; a failed create lists afresh); what it can miss is a claim
 * another replica made for the same node within `maxAgeMs` before its Node
 * object existed (the node then holds two claims, one of which its Node
 * records). maxAgeMs 0: list every time.
 */
export class SubnetClaimCache {
  private view: ClaimsView | undefined;
  private listedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly maxAgeMs = 5_000) {}

  async claims(store: Store, fresh: boolean): Promise<ClaimsView> {
    if (!fresh && this.view && performance.now() - this.listedAt < this.maxAgeMs) return this.view;
    const listedAt = performance.now();
    const items = (await store.list<SubnetClaim>(SUBNET_CLAIMS)).items;
    const view: ClaimsView = { byNode: new Map(), bySubnet: new Map(), taken: [] };
    for (const c of items) {
      const subnet = subnetOfKey(c.key);
      if (c.value?.node && !view.byNode.has(c.value.node)) view.byNode.set(c.value.node, subnet);
      view.bySubnet.set(subnet, c.value?.node ?? "");
      view.taken.push(parseCidr(subnet));
    }
    this.view = view;
    this.listedAt = listedAt;
    return view;
  }

  claimed(subnet: string, node: string): void {
    if (!this.view) return;
    if (!this.view.byNode.has(node)) this.view.byNode.set(node, subnet);
    this.view.bySubnet.set(subnet, node);
    this.view.taken.push(parseCidr(subnet));
  }
}

/**
 * The node's subnet: its claim, the one its Node records, or a newly claimed
 * free one. `cache` (one per replica) spares a list of every claim per new
 * node; without it every call lists.
 */
export async function claimSubnet(store: Store, req: SubnetRequest, cache = new SubnetClaimCache(0)): Promise<string> {
  // A node registering again (each reconnect; every agent after a replica restarts) has its
  // subnet recorded on its Node and claimed: one read of that claim, not a list of every claim
  // (5,000 agents coming back listed 5,000 claims each: 25 million values decoded).
  if (req.recorded && (await store.get<SubnetClaim>(subnetClaimKey(req.recorded)))?.value?.node === req.node) {
    return req.recorded;
  }
  for (let attempt = 1; attempt <= CLAIM_ATTEMPTS; attempt++) {
    const claims = await cache.claims(store, attempt > 1);
    const mine = claims.byNode.get(req.node);
    if (mine) return mine;
    if (req.recorded) {
      // A Node from before claims: record its claim so no one else gets its subnet.
      const owned = claims.bySubnet.has(req.recorded);
      if (!owned && (await tryClaim(store, req.recorded, req.node))) return claimedBy(cache, req.recorded, req.node);
      if (!owned) continue;
      // Claimed by another node (two Nodes recorded one subnet): keep the recorded one, as before.
      return req.recorded;
    }
    const taken = [...claims.taken, ...req.nodeSubnets.map((s) => parseCidr(s))];
    const free = allocateSubnet(req.cluster, req.prefix, taken);
    if (!free) {
      if (attempt === 1) continue; // a stale view may be fuller than the store: list afresh first
      throw new GroveError(
        "BadRequest",
        `no free /${req.prefix} left in the cluster CIDR ${formatCidr(req.cluster)} for node ${req.node}`,
      );
    }
    if (await tryClaim(store, formatCidr(free), req.node)) return claimedBy(cache, formatCidr(free), req.node);
    // Another replica claimed it between our list and our create: list again.
  }
  throw new GroveError(
    "Conflict",
    `could not claim a subnet for node ${req.node}: other registrations kept taking the free ones; try again`,
  );
}

function claimedBy(cache: SubnetClaimCache, subnet: string, node: string): string {
  cache.claimed(subnet, node);
  return subnet;
}

async function tryClaim(store: Store, subnet: string, node: string): Promise<boolean> {
  const claim: SubnetClaim = { node };
  const r = await store.txn(
    [{ key: subnetClaimKey(subnet), modRevision: "0" }],
    [{ type: "put", key: subnetClaimKey(subnet), value: claim }],
  );
  return r.succeeded;
}
