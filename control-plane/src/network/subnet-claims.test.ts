import fc from "fast-check";
import { MemoryStore } from "../store/memory-store";
import {
  NODE_CLAIMS,
  SUBNET_CLAIMS,
  SubnetClaimCache,
  claimSubnet,
  listClaims,
  nodeClaimKey,
  subnetClaimKey,
  subnetOfKey,
  type ClaimStore,
  type ClaimsSource,
  type ClaimsView,
} from "./subnet-claims";
import { parseCidr } from "./subnets";

const cluster = parseCidr("10.244.0.0/16");
const req = (node: string, extra: { recorded?: string; nodeSubnets?: string[] } = {}) => ({
  node,
  cluster,
  prefix: 24,
  nodeSubnets: extra.nodeSubnets ?? [],
  ...(extra.recorded ? { recorded: extra.recorded } : {}),
});

/** Every subnet key as subnet -> node, and every node key as node -> subnet. */
async function claimKeys(store: ClaimStore) {
  const subnets = new Map<string, string>();
  for (const kv of (await store.list<{ node: string }>(SUBNET_CLAIMS)).items)
    subnets.set(subnetOfKey(kv.key), kv.value.node);
  const nodes = new Map<string, string>();
  for (const kv of (await store.list<{ subnet: string }>(NODE_CLAIMS)).items)
    nodes.set(kv.key.slice(NODE_CLAIMS.length), kv.value.subnet);
  return { subnets, nodes };
}

/** A source whose view is whatever it was given (stale, or plain wrong) until asked for a fresh one. */
function viewOf(pairs: readonly (readonly [string, string])[]): ClaimsView {
  const view: ClaimsView = { byNode: new Map(), bySubnet: new Map(), taken: [] };
  for (const [subnet, node] of pairs) {
    view.byNode.set(node, [...(view.byNode.get(node) ?? []), subnet]);
    view.bySubnet.set(subnet, node);
    view.taken.push(parseCidr(subnet));
  }
  return view;
}
const lying = (pairs: readonly (readonly [string, string])[]): ClaimsSource => ({
  claims: (store, fresh) => (fresh ? listClaims(store) : Promise.resolve(viewOf(pairs))),
  claimed: () => undefined,
});

describe("claimSubnet", () => {
  it("gives concurrent registrations (any replica: only the store is shared) distinct subnets", async () => {
    const store = new MemoryStore();
    // Every call lists, then creates: run together they all see the same free subnet first.
    const subnets = await Promise.all(Array.from({ length: 12 }, (_, i) => claimSubnet(store, req(`n${i}`))));
    expect(new Set(subnets).size).toBe(12);
    const { subnets: bySubnet, nodes } = await claimKeys(store);
    expect(bySubnet.size).toBe(12);
    for (let i = 0; i < 12; i++) {
      expect(bySubnet.get(subnets[i]!)).toBe(`n${i}`);
      expect(nodes.get(`n${i}`)).toBe(subnets[i]);
    }
  });

  it("gives one node registering on several replicas at once one subnet, and claims no other", async () => {
    const store = new MemoryStore();
    await claimSubnet(store, req("first"));
    // Each replica's view was listed before "first" claimed: each proposes the same subnet or
    // (view 2) another; whichever claim lands first, the rest read the node's claim.
    const views = [lying([]), lying([["10.244.0.0/24", "x"]]), new SubnetClaimCache(60_000)];
    const got = await Promise.all(views.map((v) => claimSubnet(store, req("n"), v)));
    expect(new Set(got).size).toBe(1);
    const { subnets, nodes } = await claimKeys(store);
    expect([...subnets.values()].filter((n) => n === "n")).toHaveLength(1);
    expect(nodes.get("n")).toBe(got[0]);
  });

  it("gives a node its claimed subnet again, and does not claim twice", async () => {
    const store = new MemoryStore();
    const first = await claimSubnet(store, req("a"));
    await claimSubnet(store, req("b"));
    expect(await claimSubnet(store, req("a"))).toBe(first);
    expect((await store.list(SUBNET_CLAIMS)).items).toHaveLength(2);
    expect((await store.list(NODE_CLAIMS)).items).toHaveLength(2);
  });

  it("gives a node registering again its recorded, claimed subnet with two reads at once and no list", async () => {
    const store = new MemoryStore();
    const mine = await claimSubnet(store, req("a"));
    const theirs = await claimSubnet(store, req("b"));
    const list = jest.spyOn(store, "list");
    const get = jest.spyOn(store, "get");
    expect(await claimSubnet(store, req("a", { recorded: mine }))).toBe(mine);
    expect(list).not.toHaveBeenCalled();
    expect(get).toHaveBeenCalledTimes(2);
    // A Node recording another node's subnet (the old scheme could do that) does not share it.
    const c = await claimSubnet(store, req("c", { recorded: theirs }));
    expect(c).not.toBe(theirs);
    expect((await claimKeys(store)).subnets.get(theirs)).toBe("b");
  });

  it("trusts no view: one saying the node has a subnet, or that a claimed one is free, costs a retry", async () => {
    const store = new MemoryStore();
    const b = await claimSubnet(store, req("b"));
    // The view says "a" holds b's subnet (a store restored to an older state than the cache).
    expect(await claimSubnet(store, req("a"), lying([[b, "a"]]))).not.toBe(b);
    // The view says nothing is claimed: the first free subnet it proposes is taken.
    const txn = jest.spyOn(store, "txn");
    const c = await claimSubnet(store, req("c"), lying([]));
    expect(txn).toHaveBeenCalledTimes(2);
    const { subnets, nodes } = await claimKeys(store);
    expect(subnets).toEqual(new Map([...nodes].map(([n, s]) => [s, n])));
    expect(new Set(nodes.values()).size).toBe(3);
    expect(nodes.get("c")).toBe(c);
  });

  it("with a replica's cache, lists once for many new nodes and still never hands out a taken subnet", async () => {
    const store = new MemoryStore();
    const cache = new SubnetClaimCache(60_000);
    const list = jest.spyOn(store, "list");
    const mine: string[] = [];
    for (let i = 0; i < 20; i++) mine.push(await claimSubnet(store, req(`n${i}`), cache));
    expect(list).toHaveBeenCalledTimes(1);
    expect(new Set(mine).size).toBe(20);
    // Another replica (its own cache) claims the next free subnet behind this cache's back: this
    // replica's create fails, it lists afresh and takes the one after.
    const other = await claimSubnet(store, req("elsewhere"), new SubnetClaimCache(60_000));
    const next = await claimSubnet(store, req("n20"), cache);
    expect(next).not.toBe(other);
    const claims = (await store.list<{ node: string }>(SUBNET_CLAIMS)).items;
    expect(new Set(claims.map((c) => c.key)).size).toBe(22);
    expect(claims.find((c) => c.key === subnetClaimKey(next))?.value).toEqual({ node: "n20" });
    // Concurrent registrations sharing one cache still get distinct subnets.
    const together = await Promise.all(Array.from({ length: 8 }, (_, i) => claimSubnet(store, req(`c${i}`), cache)));
    expect(new Set([...together, ...mine, other, next]).size).toBe(30);
  });

  it("claims the subnet a Node already records, and skips subnets other Nodes record", async () => {
    const store = new MemoryStore();
    expect(await claimSubnet(store, req("old", { recorded: "10.244.7.0/24" }))).toBe("10.244.7.0/24");
    expect(await store.get(subnetClaimKey("10.244.7.0/24"))).toMatchObject({ value: { node: "old" } });
    expect(await store.get(nodeClaimKey("old"))).toMatchObject({ value: { subnet: "10.244.7.0/24" } });
    expect(await claimSubnet(store, req("new", { nodeSubnets: ["10.244.0.0/24"] }))).toBe("10.244.1.0/24");
  });

  it("adopts a claim from before node keys, freeing the node's other ones", async () => {
    const store = new MemoryStore();
    // The old scheme's leak: one node, two subnet keys; its Node records the second.
    await store.create(subnetClaimKey("10.244.0.0/24"), { node: "old" });
    await store.create(subnetClaimKey("10.244.1.0/24"), { node: "old" });
    await store.create(subnetClaimKey("10.244.2.0/24"), { node: "other" });
    expect(await claimSubnet(store, req("old", { recorded: "10.244.1.0/24" }), new SubnetClaimCache())).toBe(
      "10.244.1.0/24",
    );
    expect(await claimKeys(store)).toEqual({
      subnets: new Map([
        ["10.244.1.0/24", "old"],
        ["10.244.2.0/24", "other"],
      ]),
      nodes: new Map([["old", "10.244.1.0/24"]]),
    });
    // Without a recorded subnet: the one its subnet key names.
    expect(await claimSubnet(store, req("other"))).toBe("10.244.2.0/24");
    expect(await store.get(nodeClaimKey("other"))).toMatchObject({ value: { subnet: "10.244.2.0/24" } });
  });

  it("mends a claim whose subnet key was removed, and drops one naming another node's subnet", async () => {
    const store = new MemoryStore();
    const a = await claimSubnet(store, req("a"));
    await store.delete(subnetClaimKey(a));
    expect(await claimSubnet(store, req("a"))).toBe(a);
    expect(await store.get(subnetClaimKey(a))).toMatchObject({ value: { node: "a" } });
    // "b"'s node key names a's subnet (written by hand): b gets a subnet of its own.
    await store.create(nodeClaimKey("b"), { subnet: a });
    const b = await claimSubnet(store, req("b"));
    expect(b).not.toBe(a);
    expect(await claimKeys(store)).toEqual({
      subnets: new Map([
        [a, "a"],
        [b, "b"],
      ]),
      nodes: new Map([
        ["a", a],
        ["b", b],
      ]),
    });
  });

  it("says so, naming the node, when the cluster CIDR is full", async () => {
    const store = new MemoryStore();
    const small = { ...req("a"), cluster: parseCidr("10.9.0.0/23") };
    await claimSubnet(store, small);
    await claimSubnet(store, { ...small, node: "b" });
    await expect(claimSubnet(store, { ...small, node: "c" })).rejects.toMatchObject({
      code: "BadRequest",
      message: expect.stringMatching(/no free \/24 left in the cluster CIDR 10\.9\.0\.0\/23 for node c/),
    });
  });
});

describe("claimSubnet, any interleaving, any view", () => {
  const small = parseCidr("10.9.0.0/21"); // eight /24s
  const subnetAt = (i: number) => `10.9.${i}.0/24`;
  const NODES = ["n0", "n1", "n2", "n3", "n4", "n5"];

  /** The store's calls start and answer when the scheduler says: stale reads, late answers. */
  function scheduled(store: MemoryStore, s: fc.Scheduler): ClaimStore {
    const delay =
      <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
      (...a: A): Promise<R> =>
        s
          .schedule(Promise.resolve())
          .then(() => f(...a))
          .then((r) => s.schedule(Promise.resolve(r)));
    return {
      get: delay((k: string) => store.get(k)) as ClaimStore["get"],
      list: delay((p: string) => store.list(p)) as ClaimStore["list"],
      txn: delay((c: Parameters<ClaimStore["txn"]>[0], o: Parameters<ClaimStore["txn"]>[1]) =>
        store.txn(c, o),
      ) as ClaimStore["txn"],
    };
  }

  const source = fc.oneof(
    fc.constant<"cache">("cache"),
    fc.array(fc.tuple(fc.nat(7).map(subnetAt), fc.constantFrom(...NODES, "ghost")), { maxLength: 6 }),
  );

  it("never gives a node two subnets, a subnet two nodes, or a subnet to no node", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(source, { minLength: 2, maxLength: 3 }),
        fc.array(fc.record({ node: fc.nat(5), replica: fc.nat(2), recorded: fc.option(fc.nat(7)) }), {
          minLength: 1,
          maxLength: 12,
        }),
        // Claims from before node keys: a subnet key alone.
        fc.uniqueArray(fc.tuple(fc.nat(7), fc.nat(5)), { maxLength: 2, selector: ([i]) => i }),
        async (s, sources, regs, legacy) => {
          const store = new MemoryStore();
          for (const [i, n] of legacy) await store.create(subnetClaimKey(subnetAt(i)), { node: NODES[n]! });
          // A view may say anything, but it holds the claims from before node keys: every replica
          // of this version lists after they were made (docs/networking.md, upgrading).
          const before = legacy.map(([i, n]) => [subnetAt(i), NODES[n]!] as const);
          const replicas = sources.map((v) =>
            v === "cache" ? new SubnetClaimCache(60_000) : lying([...v, ...before]),
          );
          const view = scheduled(store, s);
          const results = await s.waitFor(
            Promise.all(
              regs.map(async (r) => {
                const node = NODES[r.node]!;
                const request = {
                  node,
                  cluster: small,
                  prefix: 24,
                  nodeSubnets: [],
                  ...(r.recorded === null ? {} : { recorded: subnetAt(r.recorded) }),
                };
                return [node, await claimSubnet(view, request, replicas[r.replica % replicas.length])] as const;
              }),
            ),
          );
          const got = new Map<string, Set<string>>();
          for (const [node, subnet] of results) got.set(node, (got.get(node) ?? new Set()).add(subnet));
          // A node's registrations all answered one subnet, and no two nodes got one subnet.
          for (const subnets of got.values()) expect(subnets.size).toBe(1);
          const answered = [...got].map(([node, subnets]) => [node, [...subnets][0]!] as const);
          expect(new Set(answered.map(([, subnet]) => subnet)).size).toBe(answered.length);
          // The subnet keys: each registered node's answer names it, no other names it.
          const { subnets, nodes } = await claimKeys(store);
          for (const [node, subnet] of answered) {
            expect(subnets.get(subnet)).toBe(node);
            expect([...subnets].filter(([, n]) => n === node).map(([sub]) => sub)).toEqual([subnet]);
          }
          // Nothing else claimed but the legacy claims of nodes that did not register.
          const unregistered = before.filter(([, n]) => !got.has(n));
          expect(new Map([...subnets].filter(([, n]) => !got.has(n)))).toEqual(new Map(unregistered));
          // The node keys mirror the subnet keys of registered nodes.
          expect(nodes).toEqual(new Map(answered));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("SubnetClaimCache", () => {
  it("a burst of registrations through one replica's cache proposes distinct subnets: one list, no collisions", async () => {
    const store = new MemoryStore();
    let lists = 0;
    let failedTxns = 0;
    const counted: ClaimStore = {
      get: (k) => store.get(k),
      list: (p) => (lists++, store.list(p)),
      txn: async (c, o) => {
        const r = await store.txn(c, o);
        if (!r.succeeded) failedTxns++;
        return r;
      },
    } as ClaimStore;
    const cache = new SubnetClaimCache(60_000);
    const subnets = await Promise.all(Array.from({ length: 20 }, (_, i) => claimSubnet(counted, req(`n${i}`), cache)));
    expect(new Set(subnets).size).toBe(20);
    // Before: all 20 picked 10.244.0.0/24, 19 failed and listed again (and collided again).
    expect({ lists, failedTxns }).toEqual({ lists: 1, failedTxns: 0 });
    expect(cache.inFlight.size).toBe(0);
  });
});
