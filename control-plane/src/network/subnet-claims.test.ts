import { MemoryStore } from "../store/memory-store";
import { SUBNET_CLAIMS, SubnetClaimCache, claimSubnet, subnetClaimKey } from "./subnet-claims";
import { parseCidr } from "./subnets";

const cluster = parseCidr("10.244.0.0/16");
const req = (node: string, extra: { recorded?: string; nodeSubnets?: string[] } = {}) => ({
  node,
  cluster,
  prefix: 24,
  nodeSubnets: extra.nodeSubnets ?? [],
  ...(extra.recorded ? { recorded: extra.recorded } : {}),
});

describe("claimSubnet", () => {
  it("gives concurrent registrations (any replica: only the store is shared) distinct subnets", async () => {
    const store = new MemoryStore();
    // Every call lists, then creates: run together they all see the same free subnet first.
    const subnets = await Promise.all(Array.from({ length: 12 }, (_, i) => claimSubnet(store, req(`n${i}`))));
    expect(new Set(subnets).size).toBe(12);
    const claims = (await store.list<{ node: string }>(SUBNET_CLAIMS)).items;
    expect(claims).toHaveLength(12);
    for (let i = 0; i < 12; i++) {
      expect((await store.get<{ node: string }>(subnetClaimKey(subnets[i]!)))?.value).toEqual({ node: `n${i}` });
    }
  });

  it("gives a node its claimed subnet again, and does not claim twice", async () => {
    const store = new MemoryStore();
    const first = await claimSubnet(store, req("a"));
    await claimSubnet(store, req("b"));
    expect(await claimSubnet(store, req("a"))).toBe(first);
    expect((await store.list(SUBNET_CLAIMS)).items).toHaveLength(2);
  });

  it("gives a node registering again its recorded, claimed subnet with one read and no list", async () => {
    const store = new MemoryStore();
    const mine = await claimSubnet(store, req("a"));
    await claimSubnet(store, req("b"));
    const list = jest.spyOn(store, "list");
    expect(await claimSubnet(store, req("a", { recorded: mine }))).toBe(mine);
    expect(list).not.toHaveBeenCalled();
    // Recorded but claimed by another node: the full path, which keeps the recorded one as before.
    const other = (await store.list<{ node: string }>(SUBNET_CLAIMS)).items.find((c) => c.value?.node === "b")!;
    const theirs = other.key.slice(SUBNET_CLAIMS.length).replace(/-(\d+)$/, "/$1");
    list.mockClear();
    expect(await claimSubnet(store, req("c", { recorded: theirs }))).toBe(theirs);
    expect(list).toHaveBeenCalled();
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
    expect(await claimSubnet(store, req("new", { nodeSubnets: ["10.244.0.0/24"] }))).toBe("10.244.1.0/24");
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
