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

/** The node's subnet: its claim, the one its Node records, or a newly claimed free one. */
export async function claimSubnet(store: Store, req: SubnetRequest): Promise<string> {
  // A node registering again (each reconnect; every agent after a replica restarts) has its
  // subnet recorded on its Node and claimed: one read of that claim, not a list of every claim
  // (5,000 agents coming back listed 5,000 claims each: 25 million values decoded).
  if (req.recorded && (await store.get<SubnetClaim>(subnetClaimKey(req.recorded)))?.value?.node === req.node) {
    return req.recorded;
  }
  for (let attempt = 1; attempt <= CLAIM_ATTEMPTS; attempt++) {
    const claims = (await store.list<SubnetClaim>(SUBNET_CLAIMS)).items;
    const mine = claims.find((c) => c.value?.node === req.node);
    if (mine) return subnetOfKey(mine.key);
    if (req.recorded) {
      // A Node from before claims: record its claim so no one else gets its subnet.
      const owner = claims.find((c) => subnetOfKey(c.key) === req.recorded);
      if (!owner && (await tryClaim(store, req.recorded, req.node))) return req.recorded;
      if (!owner) continue;
      // Claimed by another node (two Nodes recorded one subnet): keep the recorded one, as before.
      return req.recorded;
    }
    const taken = [...claims.map((c) => subnetOfKey(c.key)), ...req.nodeSubnets].map((s) => parseCidr(s));
    const free = allocateSubnet(req.cluster, req.prefix, taken);
    if (!free) {
      throw new GroveError(
        "BadRequest",
        `no free /${req.prefix} left in the cluster CIDR ${formatCidr(req.cluster)} for node ${req.node}`,
      );
    }
    if (await tryClaim(store, formatCidr(free), req.node)) return formatCidr(free);
    // Another replica claimed it between our list and our create: list again.
  }
  throw new GroveError(
    "Conflict",
    `could not claim a subnet for node ${req.node}: other registrations kept taking the free ones; try again`,
  );
}

async function tryClaim(store: Store, subnet: string, node: string): Promise<boolean> {
  const claim: SubnetClaim = { node };
  const r = await store.txn(
    [{ key: subnetClaimKey(subnet), modRevision: "0" }],
    [{ type: "put", key: subnetClaimKey(subnet), value: claim }],
  );
  return r.succeeded;
}
