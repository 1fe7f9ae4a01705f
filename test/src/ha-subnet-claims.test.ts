// Node subnets claimed across grove-server replicas (control-plane/src/network/subnet-claims.ts)
// on one real etcd:
// - the claim logic, run by three "replicas" (each its own etcd client and view of the claims:
//   a real cache, or a view that says anything) registering nodes at once, some through two
//   replicas, some whose Node records a subnet (free, its own or another's), beside claims from
//   before node keys: no node ends with two subnets, no subnet with two nodes, none claimed for
//   no node, and every answer is the node's claim;
// - two grove-server replicas, every node registering through both at once (mutual-TLS agent
//   streams): the same, and each Node records its claim;
// - two Nodes from before claims that recorded one subnet (what the old in-process allocator did
//   across replicas), registering at once through the two replicas: they end with two subnets.
import * as fs from "node:fs";
import fc from "fast-check";
import {
  Keys,
  NODE_CLAIMS,
  SUBNET_CLAIMS,
  SubnetClaimCache,
  claimSubnet,
  createStore,
  listClaims,
  parseCidr,
  subnetClaimKey,
  subnetOfKey,
  type ClaimsSource,
  type ClaimsView,
  type EtcdStore,
} from "@grove/control-plane";
import type { KeyPair } from "@grove/control-plane";
import { GroveClient, type Node } from "@grove/api";
import { createJoinToken, startReplicas, tempDir, waitFor, type ServerProcess } from "./harness/processes";
import { EtcdCluster } from "./harness/etcd-cluster";
import { joinOverApi, rawConnect, registerMessage, tlsCredentials } from "./harness/raw-agent";
import { RUN_TAG } from "./harness/run-id";

let dir: string;
let etcd: EtcdCluster;
let stores: EtcdStore[] = [];
const servers: ServerProcess[] = [];

beforeAll(async () => {
  dir = tempDir("grove-it-subnet-claims");
  etcd = await EtcdCluster.start(dir, 1);
  stores = [0, 1, 2].map(() => createStore(etcd.endpoints));
  await startReplicas(dir, ["s1", "s2"], etcd.endpoints, servers);
}, 180_000);

afterAll(async () => {
  for (const s of servers) await s.stop();
  for (const s of stores) await s.close();
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** The subnet keys (subnet -> node) and node keys (node -> subnet) of the nodes `mine` picks. */
async function claimsOf(mine: (node: string) => boolean) {
  const store = stores[0]!;
  const subnets = new Map<string, string>();
  for (const kv of (await store.list<{ node: string }>(SUBNET_CLAIMS)).items)
    if (mine(kv.value.node)) subnets.set(subnetOfKey(kv.key), kv.value.node);
  const nodes = new Map<string, string>();
  for (const kv of (await store.list<{ subnet: string }>(NODE_CLAIMS)).items) {
    const node = kv.key.slice(NODE_CLAIMS.length);
    if (mine(node)) nodes.set(node, kv.value.subnet);
  }
  return { subnets, nodes };
}

/** Each node answered one subnet, no two nodes one, and the keys hold exactly those claims. */
async function expectOneClaimEach(answers: readonly (readonly [string, string])[], mine: (node: string) => boolean) {
  const got = new Map<string, Set<string>>();
  for (const [node, subnet] of answers) got.set(node, (got.get(node) ?? new Set()).add(subnet));
  for (const [node, subnets] of got) expect([node, [...subnets]]).toEqual([node, [...subnets].slice(0, 1)]);
  const answered = new Map([...got].map(([node, subnets]) => [node, [...subnets][0]!]));
  expect(new Set(answered.values()).size).toBe(answered.size);
  const { subnets, nodes } = await claimsOf(mine);
  expect(subnets).toEqual(new Map([...answered].map(([node, subnet]) => [subnet, node])));
  expect(nodes).toEqual(answered);
}

describe("the claim logic against etcd, several replicas at once", () => {
  const cluster = parseCidr("10.9.0.0/21"); // eight /24s, apart from the servers' 10.244.0.0/16
  const subnetAt = (i: number) => `10.9.${i}.0/24`;
  const NODES = Array.from({ length: 6 }, (_, i) => `p${i}-${RUN_TAG}`);
  const ours = (node: string) => NODES.includes(node);

  /** A view that says what it was given until asked for a fresh one. */
  const lying = (pairs: readonly (readonly [string, string])[]): ClaimsSource => ({
    claims: (store, fresh) => {
      if (fresh) return listClaims(store);
      const view: ClaimsView = { byNode: new Map(), bySubnet: new Map(), taken: [] };
      for (const [subnet, node] of pairs) {
        view.byNode.set(node, [...(view.byNode.get(node) ?? []), subnet]);
        view.bySubnet.set(subnet, node);
        view.taken.push(parseCidr(subnet));
      }
      return Promise.resolve(view);
    },
    claimed: () => undefined,
  });

  async function wipe(): Promise<void> {
    const store = stores[0]!;
    for (const kv of (await store.list<{ node: string }>(SUBNET_CLAIMS)).items)
      if (ours(kv.value.node) || subnetOfKey(kv.key).startsWith("10.9.")) await store.delete(kv.key);
    for (const node of NODES) await store.delete(`${NODE_CLAIMS}${node}`).catch(() => undefined);
  }

  it("never gives a node two subnets, a subnet two nodes, or a subnet to no node", async () => {
    const source = fc.oneof(
      fc.constant<"cache">("cache"),
      fc.array(fc.tuple(fc.nat(7).map(subnetAt), fc.constantFrom(...NODES, "ghost")), { maxLength: 6 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(source, { minLength: 3, maxLength: 3 }),
        fc.array(
          fc.record({ node: fc.nat(5), replica: fc.nat(2), recorded: fc.option(fc.nat(7)), delayMs: fc.nat(3) }),
          { minLength: 1, maxLength: 12 },
        ),
        fc.uniqueArray(fc.tuple(fc.nat(7), fc.nat(5)), { maxLength: 2, selector: ([i]) => i }),
        async (sources, regs, legacy) => {
          await wipe();
          const store = stores[0]!;
          for (const [i, n] of legacy) await store.create(subnetClaimKey(subnetAt(i)), { node: NODES[n]! });
          // A view may say anything, but it holds the claims from before node keys (made before
          // any replica of this version listed).
          const before = legacy.map(([i, n]) => [subnetAt(i), NODES[n]!] as const);
          const views = sources.map((v) => (v === "cache" ? new SubnetClaimCache(60_000) : lying([...v, ...before])));
          const answers = await Promise.all(
            regs.map(async (r) => {
              await new Promise((resolve) => setTimeout(resolve, r.delayMs));
              const node = NODES[r.node]!;
              const request = {
                node,
                cluster,
                prefix: 24,
                nodeSubnets: [],
                ...(r.recorded === null ? {} : { recorded: subnetAt(r.recorded) }),
              };
              return [node, await claimSubnet(stores[r.replica]!, request, views[r.replica])] as const;
            }),
          );
          const registered = new Set(answers.map(([node]) => node));
          await expectOneClaimEach(answers, (n) => registered.has(n));
          // Nothing else claimed in the range but the old claims of nodes that did not register.
          const { subnets } = await claimsOf((n) => ours(n) && !registered.has(n));
          expect(subnets).toEqual(new Map(before.filter(([, n]) => !registered.has(n))));
        },
      ),
      { numRuns: 100 },
    );
    await wipe();
  }, 120_000);
});

describe("two grove-server replicas registering nodes at once", () => {
  const joined = new Map<string, KeyPair>();

  /** Joins `node` (a certificate of its own, through either replica: they share the CA). */
  async function join(node: string): Promise<KeyPair> {
    const s = servers[0]!;
    const res = await joinOverApi(s.url, s.caPem, await createJoinToken(s, node), node);
    expect(res.status).toBe(200);
    joined.set(node, res.pair!);
    return res.pair!;
  }

  /** Registers `node` through `server` like an agent; the subnet answered, or undefined when refused. */
  async function register(server: ServerProcess, node: string): Promise<string | undefined> {
    const stream = rawConnect(server.grpcAddress, tlsCredentials(server.caPem, joined.get(node)), 60_000);
    let ended = false;
    void stream.ended.then(() => (ended = true));
    stream.send(registerMessage(node));
    try {
      const r = await waitFor(
        `${node} registered through ${server.url}`,
        async () => {
          const registered = stream.received.find((m) => m.registered)?.registered;
          if (registered) return { subnet: registered.subnet };
          // Refused (the other replica created the Node first): an agent tries again.
          return ended ? { subnet: undefined } : undefined;
        },
        45_000,
      );
      return r.subnet;
    } finally {
      stream.close();
    }
  }

  /** Every node through both replicas at once, then (as an agent would after a refusal) once more. */
  async function registerEverywhere(nodes: readonly string[]): Promise<[string, string][]> {
    const first = await Promise.all(
      nodes.flatMap((node) => servers.map(async (s) => [node, await register(s, node)] as const)),
    );
    const again = await Promise.all(nodes.map(async (node) => [node, await register(servers[1]!, node)] as const));
    const answers = [...first, ...again].filter((a): a is [string, string] => a[1] !== undefined);
    // Every node answered at least once (its registration again at the latest).
    expect(new Set(answers.map(([node]) => node))).toEqual(new Set(nodes));
    return answers;
  }

  async function expectNodesRecord(nodes: readonly string[]): Promise<void> {
    const s = servers[0]!;
    const client = new GroveClient({ server: s.url, token: s.adminToken, caPem: s.caPem });
    const { nodes: claims } = await claimsOf((n) => nodes.includes(n));
    for (const name of nodes) {
      const node = await client.get("Node", name);
      expect([name, node.status?.subnet]).toEqual([name, claims.get(name)]);
    }
  }

  it("gives each node one subnet of its own, whichever replicas it registers through", async () => {
    const nodes = Array.from({ length: 6 }, (_, i) => `sc-${RUN_TAG}-new${i}`);
    for (const node of nodes) await join(node);
    const answers = await registerEverywhere(nodes);
    await expectOneClaimEach(answers, (n) => nodes.includes(n));
    await expectNodesRecord(nodes);
  }, 180_000);

  it("gives Nodes from before claims that recorded one subnet a subnet each", async () => {
    const nodes = [0, 1].map((i) => `sc-${RUN_TAG}-old${i}`);
    const shared = "10.244.250.0/24";
    for (const name of nodes) {
      await join(name);
      const node: Node = {
        apiVersion: "grove/v1",
        kind: "Node",
        metadata: { name, uid: `${name}-uid`, generation: 1, creationTimestamp: new Date().toISOString() },
        spec: {},
        status: { subnet: shared },
      } as Node;
      await stores[0]!.create(Keys.object("nodes", undefined, name), node);
    }
    const answers = await registerEverywhere(nodes);
    await expectOneClaimEach(answers, (n) => nodes.includes(n));
    expect(answers.map(([, subnet]) => subnet)).toContain(shared);
    await expectNodesRecord(nodes);
  }, 180_000);
});
