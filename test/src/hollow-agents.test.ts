// Hollow agents against a real grove-server and etcd (agent/src/hollow): a
// fleet of hollow nodes in this process joins with single-use tokens, holds
// mutual-TLS Connect streams, runs an App's instances on a runtime that only
// pretends; and presence costs etcd one write per replica per refresh, not
// one per node: over 15 s, presence writes (a watch on /grove/ by kind of
// key) and etcd's own put/delete counters (its /metrics) less Events stay far
// below one write per node per 5 s, the design this replaced. One server and one fleet for the whole file.
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { GroveClient, type App } from "@grove/api";
import { HollowFleet } from "@grove/agent";
import { PRESENCE_REFRESH_MS } from "@grove/control-plane";
import { createJoinToken, isReady, startServer, tempDir, waitFor, type ServerProcess } from "./harness/processes";
import { embeddedEtcdEndpoint, etcdCounters, writesBetween, writesByPrefix } from "./harness/etcd-metrics";
import { RUN_TAG } from "./harness/run-id";

const NODES = 30;

describe("hollow agents", () => {
  let dir: string;
  let server: ServerProcess;
  let client: GroveClient;
  let fleet: HollowFleet;

  beforeAll(async () => {
    dir = tempDir("grove-it-hollow");
    server = await startServer({ dataDir: path.join(dir, "server") });
    client = new GroveClient({ server: server.url, token: server.adminToken, caPem: server.caPem });
    fleet = new HollowFleet({
      server: server.url,
      caHash: server.caHash,
      stateRoot: path.join(dir, "fleet"),
      namePrefix: `hollow-it${RUN_TAG}-`,
      joinToken: (node) => createJoinToken(server, node),
    });
    await fleet.grow(NODES);
  }, 120_000);

  afterAll(async () => {
    fleet?.stop();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const app: App = {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "hollow-app", namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sleep", "infinity"],
      instances: 2 * NODES,
      resources: { cpu: "100m", memory: "16Mi", pids: 16 },
    },
  } as App;

  /** Every hollow node registered and Ready (fleet.grow resolves before they are). */
  const allReady = () =>
    waitFor("every hollow node Ready", async () => {
      const nodes = (await client.list("Node")).items;
      return nodes.filter(isReady).length === NODES;
    });

  /** The App applied and each of its instances Running. */
  const runApp = async () => {
    await client.apply(app);
    await waitFor("every instance Running", async () => {
      const items = (await client.list("Instance", { namespace: "default" })).items;
      return items.length === 2 * NODES && items.every((i) => i.status?.state === "Running");
    });
  };

  // Each test applies the App itself; after it the App is deleted and its instances are gone
  // from the store and from the fleet.
  afterEach(async () => {
    await client.delete("App", "hollow-app", "default").catch((err: unknown) => {
      if ((err as { code?: string }).code !== "NotFound") throw err;
    });
    await waitFor(
      "no instance left, in the store or on the fleet",
      async () => (await client.list("Instance", { namespace: "default" })).items.length === 0 && fleet.running() === 0,
    );
  }, 60_000);

  it("register as Ready nodes, each with its own certificate, and run an App's instances", async () => {
    await allReady();
    await runApp();
    // Bound to hollow nodes (bin-packed: several per node), each "started" by its node's runtime.
    const items = (await client.list("Instance", { namespace: "default" })).items;
    expect(items.every((i) => i.spec.nodeName?.startsWith(`hollow-it${RUN_TAG}-`))).toBe(true);
    expect(fleet.running()).toBe(2 * NODES);
  }, 120_000);

  it("costs etcd writes per replica, not per node, while nothing changes", async () => {
    // Measured once every node has registered (each registration writes its presence key
    // once) and the App runs on them.
    await allReady();
    await runApp();
    const etcd = embeddedEtcdEndpoint(server);
    // Events of the App's starts may still drain (the recorder writes at most 10/s): a watch
    // over the same window tells them apart from presence.
    const traced = await writesByPrefix(server, etcd);
    const before = await etcdCounters(etcd, server);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 3 * PRESENCE_REFRESH_MS));
    const seconds = (performance.now() - t0) / 1000;
    const writes = writesBetween(before, await etcdCounters(etcd, server));
    const seen = await traced.stop();
    process.stderr.write(`hollow: ${NODES} nodes, ${writes} etcd writes in ${seconds.toFixed(1)} s (${seen.text})\n`);
    // One node key per refresh would be NODES * seconds / 5 (90 here); one replica key is about 3.
    expect(seen.presence).toBeLessThan(NODES / 3);
    // etcd's own count agrees: nothing but Events besides (a margin for the watch's edges).
    expect(writes - seen.events).toBeLessThan(NODES / 3);
    // ...and the nodes are still Ready on it.
    expect((await client.list("Node")).items.filter(isReady).length).toBe(NODES);
  }, 120_000);
});
