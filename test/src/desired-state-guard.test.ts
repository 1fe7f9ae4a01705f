// Keeping desired state true when the control plane goes wrong (issue 11),
// with the real things: grove-server and its embedded etcd, two agents as
// hosts in network namespaces, real containers.
//
// - A control plane with a fresh store (a new cluster id, an empty desired
//   set) makes no agent stop anything: they refuse its sets, keep their
//   containers and say why (DesiredStateRefused); the real control plane back,
//   everything is as it was.
// - The control plane stopped for OUTAGE_MS: every container keeps running
//   (same pids) and nothing is replaced when it returns.
// - spec.disconnect.stopAfter: a host cut off from the control plane stops
//   that App's instance after stopAfter; an App without it keeps running.
// - The store restored from an older etcd snapshot: the agent that applied a
//   newer set refuses the older one and keeps its container.
// - A store that lost its cluster id is suspect: grove-server sends no
//   desired sets until --assign-cluster-id, and agents refuse the new id.
//
// The outage test runs in `npm run test:chaos` only (GROVE_CHAOS=1), for the
// full two minutes the issue asks for (GROVE_CHAOS_OUTAGE_MS): in `npm test`
// the other tests here stop the control plane seven times and check that every
// container is kept (same pids), the first also that nothing was replaced once
// the real control plane is back; a 20 s outage there only added its length. Where a test checks that
// nothing happens, it watches for ABSENCE_MS: three of the agents' 1 s
// heartbeats and more than a container's 1 s stop grace.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance, type Node } from "@grove/api";
import { HEARTBEAT_INTERVAL_MS, PRESENCE_REFRESH_MS } from "@grove/control-plane";
import { HostCluster, type Host } from "./harness/hosts";
import { etcdctlTlsArgs, isReady, startServer, waitFor, type ServerProcess } from "./harness/processes";

/** How long the control plane stays down (the issue asks for 2 minutes: `npm run test:chaos`). */
export const OUTAGE_MS = Number(process.env.GROVE_CHAOS_OUTAGE_MS ?? 20_000);
const chaosOnly = process.env.GROVE_CHAOS === "1" ? it : it.skip;
/** The heartbeat interval the control plane asks for (node-lifecycle.ts HEARTBEAT_INTERVAL_MS, 1 s). */
const HEARTBEAT_MS = HEARTBEAT_INTERVAL_MS;
/** How long a check that something does not happen watches (a wrongly applied set stops a container within this). */
const ABSENCE_MS = Math.max(3 * HEARTBEAT_MS, 3_000);
/**
 * After a restart, the leader's presence fallback (PRESENCE_STALE_MS, three refreshes) would mark
 * a node whose agent had not re-registered Unknown, and its instances replaced: the window a wrong
 * replacement needs to show.
 */
const AFTER_RESTART_MS = 3 * PRESENCE_REFRESH_MS;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function app(name: string, spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", "exec sleep 1000000"],
      instances: 1,
      stopGracePeriodSeconds: 1,
      resources: { cpu: "50m", memory: "16Mi", pids: 16 },
      ...spec,
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function condition(node: Node, type: string) {
  return node.status?.conditions?.find((c) => c.type === type);
}

interface Seen {
  name: string;
  uid: string;
  pid: number;
  node: string;
  restarts: number;
}

describe("desired-state guard and disconnected agents", () => {
  let cluster: HostCluster;
  let client: GroveClient;
  let grpcListen: string;
  /** Every instance of `keep` as it first ran. */
  let kept: Seen[];

  const clientOf = (s: ServerProcess) => new GroveClient({ server: s.url, token: s.adminToken });

  async function seen(): Promise<Seen[]> {
    const items = (await client.list("Instance", { namespace: "default" })).items;
    return items
      .map((i: Instance) => ({
        name: i.metadata.name,
        uid: i.metadata.uid ?? "",
        pid: i.status?.pid ?? 0,
        node: i.spec.nodeName ?? "",
        restarts: i.spec.restarts,
        state: i.status?.state,
      }))
      .filter((i) => i.state === "Running")
      .map(({ state: _s, ...rest }) => rest)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async function running(appName: string, count: number): Promise<Seen[]> {
    return waitFor(
      `${count} Running instances of ${appName}`,
      async () => {
        const mine = (await seen()).filter((i) => i.name.startsWith(`${appName}-`) && i.pid > 0);
        return mine.length === count ? mine : undefined;
      },
      120_000,
    );
  }

  /** Stops the current grove-server and starts one on `dataDir`, agents' gRPC address unchanged. */
  async function replaceServer(dataDir: string): Promise<ServerProcess> {
    await cluster.server?.stop(20_000);
    cluster.server = await startServer({ dataDir, grpcListen });
    client = clientOf(cluster.server);
    return cluster.server;
  }

  async function nodesWith(what: string, ok: (n: Node) => boolean, count = 2): Promise<Node[]> {
    return waitFor(
      what,
      async () => {
        const nodes = (await client.list("Node")).items;
        return nodes.length === count && nodes.every(ok) ? nodes : undefined;
      },
      90_000,
    );
  }

  /** Both agents apply this cluster's desired sets again (what every test starts from). */
  async function acceptedAgain(): Promise<void> {
    await nodesWith(
      "both agents to apply the cluster's desired sets again",
      (n) => isReady(n) && condition(n, "DesiredStateRefused")?.status === "False",
    );
  }

  function expectKeptAlive(): void {
    for (const i of kept) expect({ name: i.name, alive: alive(i.pid) }).toEqual({ name: i.name, alive: true });
  }

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 2 });
    client = clientOf(cluster.server!);
    grpcListen = cluster.server!.grpcAddress;
    await nodesWith("two Ready nodes", isReady);
    // One instance per host (a fixed host port fits once per node).
    await client.apply(app("keep", { instances: 2, ports: [{ name: "p", containerPort: 9000, hostPort: 19000 }] }));
    kept = await running("keep", 2);
    expect(new Set(kept.map((i) => i.node)).size).toBe(2);
  }, 240_000);

  afterAll(async () => {
    await cluster?.destroy();
  }, 180_000);

  it("a control plane with a fresh store (new cluster id, empty sets) stops nothing; agents refuse and say why", async () => {
    const original = cluster.server!;
    const clusterFiles = cluster.hosts.map((h) => fs.readFileSync(path.join(h.stateDir, "cluster.json"), "utf8"));
    const clusterId = (JSON.parse(clusterFiles[0]!) as { clusterId: string }).clusterId;
    expect(clusterFiles.every((f) => f.includes(clusterId))).toBe(true);

    // A second grove-server with its own new etcd, where the first one was (the agents' tokens kept).
    const freshDir = path.join(cluster.dir, "server-fresh");
    fs.mkdirSync(freshDir, { mode: 0o700 });
    for (const t of ["admin-token", "agent-token"])
      fs.copyFileSync(path.join(original.dataDir, t), path.join(freshDir, t));
    // ...and the cluster CA, which the agents' certificates chain to.
    fs.mkdirSync(path.join(freshDir, "pki"), { mode: 0o700 });
    for (const f of ["ca.crt", "ca.key"])
      fs.copyFileSync(path.join(original.dataDir, "pki", f), path.join(freshDir, "pki", f));
    await replaceServer(freshDir);
    const refused = await nodesWith(
      "both agents to refuse the fresh store's sets",
      (n) => condition(n, "DesiredStateRefused")?.status === "True",
    );
    for (const n of refused) {
      expect(condition(n, "DesiredStateRefused")).toMatchObject({
        reason: "OtherCluster",
        message: expect.stringContaining(`belongs to cluster ${clusterId}`),
      });
    }
    // The fresh store has no instances: an applied set would have stopped everything by now.
    await sleep(ABSENCE_MS);
    expectKeptAlive();
    for (const h of cluster.hosts) {
      expect(h.agent!.output.join("\n")).toContain("desired set refused; every container keeps running");
      expect(fs.readFileSync(path.join(h.stateDir, "cluster.json"), "utf8")).toContain(clusterId);
    }

    // The real control plane again: accepted, nothing changed.
    await replaceServer(original.dataDir);
    await nodesWith(
      "both agents to apply the real cluster's sets again",
      (n) => isReady(n) && condition(n, "DesiredStateRefused")?.status === "False",
    );
    expect((await seen()).filter((i) => i.name.startsWith("keep-"))).toEqual(kept);
    expectKeptAlive();
  }, 300_000);

  chaosOnly(
    `the control plane stopped for ${OUTAGE_MS / 1000}s (GROVE_CHAOS=1, npm run test:chaos): every container keeps running, nothing is replaced after`,
    async () => {
      const before = await seen();
      const dataDir = cluster.server!.dataDir;
      await cluster.server!.stop(20_000);
      const downAt = Date.now();
      while (Date.now() - downAt < OUTAGE_MS) {
        await sleep(Math.min(ABSENCE_MS, OUTAGE_MS));
        for (const i of before) expect({ name: i.name, alive: alive(i.pid) }).toEqual({ name: i.name, alive: true });
      }
      cluster.server = await startServer({ dataDir, grpcListen });
      client = clientOf(cluster.server);
      await nodesWith("both nodes Ready again", isReady);
      // Give the controllers time to act on anything they found (they should find nothing).
      await sleep(AFTER_RESTART_MS);
      expect(await seen()).toEqual(before);
      const all = (await client.list("Instance", { namespace: "default" })).items;
      expect(all.map((i) => i.metadata.name).sort()).toEqual(before.map((i) => i.name));
    },
    600_000,
  );

  it("spec.disconnect.stopAfter: a host cut off from the control plane stops that App; an App without it keeps running", async () => {
    const h1 = cluster.host("h1");
    const onH1 = { placement: { nodeSelector: { "grove.test/host": "h1" } } };
    await client.apply(app("single", { ...onH1, disconnect: { stopAfter: "5s" } }));
    await client.apply(app("steady", onH1));
    const [single] = await running("single", 1);
    const [steady] = await running("steady", 1);

    const port = grpcListen.split(":").pop()!;
    const rules = [
      ["OUTPUT", "-p", "tcp", "-d", cluster.gateway, "--dport", port, "-j", "DROP"],
      ["INPUT", "-p", "tcp", "-s", cluster.gateway, "--sport", port, "-j", "DROP"],
    ];
    const cutAt = performance.now();
    for (const r of rules) cluster.exec(h1, "iptables", ["-w", "10", "-I", ...r]);
    let stoppedAfterMs: number;
    try {
      await waitFor("single's container to be stopped", async () => !alive(single!.pid), 60_000);
      stoppedAfterMs = performance.now() - cutAt;
      // Some time for a wrong stop of steady to happen.
      await sleep(ABSENCE_MS);
      expect(alive(steady!.pid)).toBe(true);
    } finally {
      for (const r of rules) cluster.exec(h1, "iptables", ["-w", "10", "-D", ...r]);
    }
    // Not before stopAfter; at most one heartbeat interval (the answer that never came) and slack later.
    expect(stoppedAfterMs).toBeGreaterThanOrEqual(5_000);
    expect(stoppedAfterMs).toBeLessThan(5_000 + HEARTBEAT_MS + 20_000);
    expect(h1.agent!.output.join("\n")).toContain("its App's disconnect.stopAfter passed");
    console.log(`stopAfter 5s: the container stopped ${(stoppedAfterMs / 1000).toFixed(1)}s after the cut`);

    // Back in contact: the stop is reported and the control plane replaces the instance.
    const [replaced] = await waitFor(
      "single to be replaced",
      async () => {
        const r = (await seen()).filter((i) => i.name === single!.name && i.uid !== single!.uid);
        return r.length === 1 ? r : undefined;
      },
      120_000,
    );
    expect(replaced!.restarts).toBe(single!.restarts + 1);
    expect((await seen()).find((i) => i.name === steady!.name)).toEqual(steady);
    await client.delete("App", "single", "default");
    await client.delete("App", "steady", "default");
    await waitFor("single and steady gone", async () =>
      (await seen()).every((i) => !i.name.startsWith("single-") && !i.name.startsWith("steady-")),
    );
  }, 300_000);

  it("a store restored from an older etcd snapshot: the agent that applied a newer set refuses it and keeps running", async () => {
    const server = cluster.server!;
    const endpoint = etcdEndpointOf(server);
    const snapshot = path.join(cluster.dir, "before-late.db");
    etcdctl([...etcdctlTlsArgs(server), "--endpoints", endpoint, "snapshot", "save", snapshot]);

    const appliedRevision = (h: Host) =>
      BigInt(
        (JSON.parse(fs.readFileSync(path.join(h.stateDir, "cluster.json"), "utf8")) as { revision: string }).revision,
      );
    const before = new Map(cluster.hosts.map((h) => [h.name, appliedRevision(h)]));

    // After the snapshot: an App the restored store will not know.
    await client.apply(app("late"));
    const [late] = await running("late", 1);
    const host: Host = cluster.host(late!.node);
    expect(appliedRevision(host)).toBeGreaterThan(before.get(host.name)!);

    await server.stop(20_000);
    const etcdDir = path.join(server.dataDir, "etcd");
    const restored = path.join(server.dataDir, "etcd-restored");
    // The store as it is now, put back at the end so the tests after this one
    // (in any order) find agents that accept their sets.
    const current = path.join(server.dataDir, "etcd-current");
    fs.cpSync(etcdDir, current, { recursive: true });
    etcdctl([
      "snapshot",
      "restore",
      snapshot,
      "--data-dir",
      restored,
      "--name",
      "grove",
      "--initial-cluster",
      "grove=http://127.0.0.1:2380",
      "--initial-advertise-peer-urls",
      "http://127.0.0.1:2380",
    ]);
    fs.rmSync(etcdDir, { recursive: true, force: true });
    fs.renameSync(restored, etcdDir);
    cluster.server = await startServer({ dataDir: server.dataDir, grpcListen });
    client = clientOf(cluster.server);

    const [refusing] = await waitFor(
      `${host.name} to refuse the restored store's older set`,
      async () => {
        const n = await client.get("Node", host.name);
        return condition(n, "DesiredStateRefused")?.status === "True" ? [n] : undefined;
      },
      90_000,
    );
    expect(condition(refusing!, "DesiredStateRefused")).toMatchObject({
      reason: "StaleRevision",
      message: expect.stringMatching(/refused a desired set at revision \d+: this node applied revision \d+/),
    });
    // The restored store has no `late`: the agent did not stop it, nor anything else.
    await sleep(ABSENCE_MS);
    expect(alive(late!.pid)).toBe(true);
    expectKeptAlive();

    // The newer store again: accepted, and `late` goes.
    await cluster.server.stop(20_000);
    cluster.server = undefined;
    fs.rmSync(etcdDir, { recursive: true, force: true });
    fs.renameSync(current, etcdDir);
    await replaceServer(server.dataDir);
    await acceptedAgain();
    await client.delete("App", "late", "default");
    await waitFor("late's container to stop", async () => !alive(late!.pid), 60_000);
  }, 300_000);

  it("a store whose cluster id was lost is suspect: no desired sets until --assign-cluster-id, and agents refuse the new id", async () => {
    const server = cluster.server!;
    const clusterKey = etcdctl([
      ...etcdctlTlsArgs(server),
      "--endpoints",
      etcdEndpointOf(server),
      "get",
      "/grove/cluster",
      "--print-value-only",
    ]);
    expect(clusterKey.trim()).not.toBe("");
    etcdctl([...etcdctlTlsArgs(server), "--endpoints", etcdEndpointOf(server), "del", "/grove/cluster"]);
    await server.stop(20_000);
    cluster.server = await startServer({ dataDir: server.dataDir, grpcListen });
    client = clientOf(cluster.server);
    await nodesWith("both nodes registered again", isReady);
    expect(cluster.server.output.join("\n")).toContain("the store holds objects but no cluster id");
    await waitFor("the gateway to hold back the desired sets", async () =>
      cluster.server!.output.some((l) => l.includes("not sending the node its desired set")),
    );
    await sleep(ABSENCE_MS);
    expectKeptAlive();

    // The operator vouches for the store: it gets a new id, which agents that knew the old one refuse.
    await cluster.server.stop(20_000);
    cluster.server = await startServer({ dataDir: server.dataDir, grpcListen, extraArgs: ["--assign-cluster-id"] });
    client = clientOf(cluster.server);
    await nodesWith(
      "both agents to refuse the new cluster id",
      (n) => condition(n, "DesiredStateRefused")?.reason === "OtherCluster",
    );
    await sleep(ABSENCE_MS);
    expectKeptAlive();

    // The old id put back (as an operator restoring it would): accepted again.
    etcdctl([
      ...etcdctlTlsArgs(cluster.server),
      "--endpoints",
      etcdEndpointOf(cluster.server),
      "put",
      "/grove/cluster",
      clusterKey.replace(/\n$/, ""),
    ]);
    await replaceServer(server.dataDir);
    await acceptedAgain();
    expectKeptAlive();
  }, 300_000);
});

function etcdctl(args: string[]): string {
  return execFileSync("etcdctl", args, {
    encoding: "utf8",
    env: { ...process.env, ETCDCTL_API: "3" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The embedded etcd's client URL, from grove-server's "embedded etcd is up" log line. */
function etcdEndpointOf(server: ServerProcess): string {
  for (const line of server.output) {
    try {
      const l = JSON.parse(line) as { msg?: string; endpoints?: string[] };
      if (l.msg === "embedded etcd is up" && l.endpoints?.[0]) return l.endpoints[0];
    } catch {
      /* not JSON */
    }
  }
  throw new Error("grove-server logged no embedded etcd endpoint");
}
