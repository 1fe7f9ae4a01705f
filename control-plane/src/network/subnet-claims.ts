// Node subnets, allocated safely across grove-server replicas. A claim is two
// keys, created together in one etcd transaction that requires both absent:
//
//   /grove/subnets/<network>-<prefix> = {node}    a subnet is claimed at most once
//   /grove/subnet-nodes/<node>        = {subnet}  a node holds at most one claim
//
// Two replicas registering two nodes at once may pick the same free subnet,
// or registering one node at once may pick two: only one transaction
// succeeds either way, and the other reads the node's claim or picks again.
// The claims a replica listed (SubnetClaimCache) only propose a subnet to
// try; nothing they say is trusted without the transaction or a read of the
// keys, so a stale or wrong view costs a retry, never a subnet.
//
// A claim outlives its Node object (deleting a Node does not free the
// subnet): a node that registers again under the same name gets the same
// subnet back, and its running instances keep their addresses.
//
// Claims from before node keys (a subnet key alone) are adopted at the
// node's next registration: its node key is written, and any other subnet
// that names it is freed (a leak of the old scheme).
import { performance } from "node:perf_hooks";
import { GroveError } from "@grove/api";
import type { KeyValue, Store, TxnCompare, TxnOp } from "../store/store";
import { allocateSubnet, formatCidr, parseCidr, type Cidr } from "./subnets";

/** What claiming needs of the Store. */
export type ClaimStore = Pick<Store, "get" | "list" | "txn">;

export const SUBNET_CLAIMS = "/grove/subnets/";
export const NODE_CLAIMS = "/grove/subnet-nodes/";

/** A subnet key's value: the node the subnet belongs to. */
export interface SubnetClaim {
  node: string;
}

/** A node key's value: the node's subnet. */
export interface NodeClaim {
  subnet: string;
}

export const subnetClaimKey = (subnet: string) => `${SUBNET_CLAIMS}${subnet.replace("/", "-")}`;
export const nodeClaimKey = (node: string) => `${NODE_CLAIMS}${node}`;
export const subnetOfKey = (key: string) => key.slice(SUBNET_CLAIMS.length).replace(/-(\d+)$/, "/$1");

/** How often a claim is retried when another replica took the subnet first. */
const CLAIM_ATTEMPTS = 16;

export interface SubnetRequest {
  node: string;
  cluster: Cidr;
  prefix: number;
  /** The subnet the Node object records, if it has one (kept when it is free or the node's). */
  recorded?: string;
  /** Subnets recorded on Node objects (from before claims existed): taken too. */
  nodeSubnets: readonly string[];
}

/** The subnet keys as one list read them: each node's subnets, each subnet's node, the ranges taken. */
export interface ClaimsView {
  byNode: Map<string, string[]>;
  bySubnet: Map<string, string>;
  taken: Cidr[];
}

/** Where claimSubnet gets its view of the claims (SubnetClaimCache; tests give others). */
export interface ClaimsSource {
  /** The claims, listed now when `fresh`. */
  claims(store: ClaimStore, fresh: boolean): Promise<ClaimsView>;
  /** This replica just claimed `subnet` for `node`. */
  claimed(subnet: string, node: string): void;
  /**
   * The subnets this replica is claiming at this moment (its own registrations in flight), which
   * a concurrent registration here proposes no other node: without it every registration of a
   * burst picked the same lowest free subnet from the same view, all but one failed, and each of
   * those listed every claim afresh (6 % of grove-server's main thread at 4,400 hollow nodes).
   */
  readonly inFlight?: Set<string>;
}

/** Lists the subnet keys. */
export async function listClaims(store: ClaimStore): Promise<ClaimsView> {
  const items = (await store.list<SubnetClaim>(SUBNET_CLAIMS)).items;
  const view: ClaimsView = { byNode: new Map(), bySubnet: new Map(), taken: [] };
  for (const c of items) {
    const subnet = subnetOfKey(c.key);
    if (c.value?.node) named(view, c.value.node).push(subnet);
    view.bySubnet.set(subnet, c.value?.node ?? "");
    view.taken.push(parseCidr(subnet));
  }
  return view;
}

function named(view: ClaimsView, node: string): string[] {
  let subnets = view.byNode.get(node);
  if (!subnets) view.byNode.set(node, (subnets = []));
  return subnets;
}

/**
 * The claims this replica listed last, for at most `maxAgeMs` (monotonic),
 * with the claims it made since added. Listing and decoding every claim at
 * each new node's registration made joining N nodes quadratic: at 2,000
 * hollow nodes the list was the largest part of the server's registration
 * work. The view only proposes: a claim of a subnet it missed fails and lists
 * afresh. maxAgeMs 0: list every time.
 */
export class SubnetClaimCache implements ClaimsSource {
  private view: ClaimsView | undefined;
  private listedAt = Number.NEGATIVE_INFINITY;
  readonly inFlight = new Set<string>();
  private listing: Promise<ClaimsView> | undefined;

  constructor(private readonly maxAgeMs = 5_000) {}

  async claims(store: ClaimStore, fresh: boolean): Promise<ClaimsView> {
    if (!fresh && this.view && performance.now() - this.listedAt < this.maxAgeMs) return this.view;
    // A burst of registrations with no view yet waits for one list, not one each.
    if (!fresh && this.listing) return this.listing;
    const listedAt = performance.now();
    const listing = listClaims(store);
    this.listing = listing;
    try {
      const view = await listing;
      if (listedAt >= this.listedAt) {
        this.view = view;
        this.listedAt = listedAt;
      }
      return view;
    } finally {
      if (this.listing === listing) this.listing = undefined;
    }
  }

  claimed(subnet: string, node: string): void {
    if (!this.view) return;
    named(this.view, node).push(subnet);
    this.view.bySubnet.set(subnet, node);
    this.view.taken.push(parseCidr(subnet));
  }
}

/**
 * The node's subnet: its claim, or a newly claimed one (the one its Node
 * records when that is free, else the lowest free). `cache` (one per
 * replica) spares a list of every claim per new node; without it every
 * attempt lists.
 */
export async function claimSubnet(
  store: ClaimStore,
  req: SubnetRequest,
  cache: ClaimsSource = new SubnetClaimCache(0),
): Promise<string> {
  for (let attempt = 1; attempt <= CLAIM_ATTEMPTS; attempt++) {
    const held = await heldClaim(store, req.node, req.recorded);
    if (held === "changed") continue;
    if (held !== "none") return held.subnet;
    const view = await cache.claims(store, attempt > 1);
    const legacy = await legacyClaim(store, req, view);
    if (legacy) {
      if (await adopt(store, req.node, legacy)) return claimedBy(cache, legacy.subnet, req.node);
      continue;
    }
    // Clear of this replica's claims in flight; when only those are left, one of them (it may fail).
    const free = freeSubnet(req, view, cache.inFlight) ?? freeSubnet(req, view);
    if (!free) {
      if (attempt === 1) continue; // a stale view may be fuller than the store: list afresh first
      throw new GroveError(
        "BadRequest",
        `no free /${req.prefix} left in the cluster CIDR ${formatCidr(req.cluster)} for node ${req.node}`,
      );
    }
    cache.inFlight?.add(free);
    let won: boolean;
    try {
      won = await tryClaim(store, free, req.node);
    } finally {
      cache.inFlight?.delete(free);
    }
    if (won) return claimedBy(cache, free, req.node);
    // Another replica claimed this subnet, or claimed one for this node, since our view: read again.
  }
  throw new GroveError(
    "Conflict",
    `could not claim a subnet for node ${req.node}: other registrations kept taking the free ones; try again`,
  );
}

/**
 * The node's claim from its node key: { subnet } when both keys agree;
 * "none" when it has no node key; "changed" when it had a broken claim,
 * mended or dropped just now (read again). Each registration of a known node
 * costs one round trip of two reads when its Node records the subnet.
 */
async function heldClaim(
  store: ClaimStore,
  node: string,
  recorded: string | undefined,
): Promise<{ subnet: string } | "none" | "changed"> {
  const [own, recordedKey] = await Promise.all([
    store.get<NodeClaim>(nodeClaimKey(node)),
    recorded ? store.get<SubnetClaim>(subnetClaimKey(recorded)) : undefined,
  ]);
  if (!own) return "none";
  const subnet = own.value?.subnet;
  const valid = typeof subnet === "string" && isCidr(subnet);
  const back = !valid
    ? undefined
    : subnet === recorded
      ? recordedKey
      : await store.get<SubnetClaim>(subnetClaimKey(subnet));
  if (valid && back?.value?.node === node) return { subnet };
  const mine: TxnCompare = { key: nodeClaimKey(node), modRevision: own.modRevision };
  if (valid && !back) {
    // The subnet key alone is gone (removed by hand): take the subnet again.
    await store.txn([mine, { key: subnetClaimKey(subnet), modRevision: "0" }], [put(subnetClaimKey(subnet), { node })]);
    return "changed";
  }
  // The node key names a subnet that is another node's (or nothing readable): the claim is void.
  const compares = back ? [mine, { key: back.key, modRevision: back.modRevision }] : [mine];
  await store.txn(compares, [{ type: "delete", key: nodeClaimKey(node) }]);
  return "changed";
}

/** A subnet key naming the node with no node key beside it (a claim from before node keys). */
async function legacyClaim(
  store: ClaimStore,
  req: SubnetRequest,
  view: ClaimsView,
): Promise<{ subnet: string; kv: KeyValue<SubnetClaim>; others: KeyValue<SubnetClaim>[] } | undefined> {
  const candidates = [...new Set([...(req.recorded ? [req.recorded] : []), ...(view.byNode.get(req.node) ?? [])])];
  const mine: { subnet: string; kv: KeyValue<SubnetClaim> }[] = [];
  for (const subnet of candidates) {
    const kv = await store.get<SubnetClaim>(subnetClaimKey(subnet));
    if (kv?.value?.node === req.node) mine.push({ subnet, kv });
  }
  const [keep, ...others] = mine; // the recorded one first: the node's instances use it
  return keep && { ...keep, others: others.map((o) => o.kv) };
}

/** Writes the node key of a legacy claim, freeing the node's other legacy subnets, if all are unchanged. */
async function adopt(
  store: ClaimStore,
  node: string,
  legacy: { subnet: string; kv: KeyValue<SubnetClaim>; others: KeyValue<SubnetClaim>[] },
): Promise<boolean> {
  const unchanged = [legacy.kv, ...legacy.others].map((kv) => ({ key: kv.key, modRevision: kv.modRevision }));
  const r = await store.txn<NodeClaim>(
    [{ key: nodeClaimKey(node), modRevision: "0" }, ...unchanged],
    [put(nodeClaimKey(node), { subnet: legacy.subnet }), ...legacy.others.map((kv) => del(kv.key))],
  );
  return r.succeeded;
}

/** The subnet to try: the recorded one unless the view has it claimed, else the lowest free; none of `busy`. */
function freeSubnet(req: SubnetRequest, view: ClaimsView, busy?: ReadonlySet<string>): string | undefined {
  if (req.recorded && !view.bySubnet.has(req.recorded) && !busy?.has(req.recorded)) return req.recorded;
  const taken = [
    ...view.taken,
    ...req.nodeSubnets.map((s) => parseCidr(s)),
    ...[...(busy ?? [])].map((s) => parseCidr(s)),
  ];
  const free = allocateSubnet(req.cluster, req.prefix, taken);
  return free && formatCidr(free);
}

function claimedBy(cache: ClaimsSource, subnet: string, node: string): string {
  cache.claimed(subnet, node);
  return subnet;
}

/** Claims the subnet for the node: both keys, created only if neither exists. */
async function tryClaim(store: ClaimStore, subnet: string, node: string): Promise<boolean> {
  const r = await store.txn<SubnetClaim | NodeClaim>(
    [
      { key: subnetClaimKey(subnet), modRevision: "0" },
      { key: nodeClaimKey(node), modRevision: "0" },
    ],
    [put(subnetClaimKey(subnet), { node }), put(nodeClaimKey(node), { subnet })],
  );
  return r.succeeded;
}

const put = <T>(key: string, value: T): TxnOp<T> => ({ type: "put", key, value });
const del = (key: string): TxnOp<never> => ({ type: "delete", key });

function isCidr(text: string): boolean {
  try {
    parseCidr(text);
    return true;
  } catch {
    return false;
  }
}
