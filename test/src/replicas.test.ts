// Three grove-server replicas on one etcd, two agents given every replica's
// address (--server A --server B --server C). Their streams start on A.
//  - logs, exec and stats (grove top) through B, which does not hold the
//    nodes' streams, are served through A (replicas/peer-streams.ts);
//  - A is killed -9: the agents are registered with another replica within
//    seconds, the nodes never leave Ready (watched past the leader's 15 s
//    presence fallback), and the containers keep their pids.
// (Moved from logs-replicas.test.ts, which asserted that B named A instead.)
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { EmbeddedEtcd, PRESENCE_REFRESH_MS } from "@grove/control-plane";
import { GroveClient, type Node } from "@grove/api";
import {
  REPO_ROOT,
  isReady,
  runCli,
  startAgent,
  startReplicas,
  tempDir,
  waitFor,
  type ServerProcess,
  type Started,
} from "./harness/processes";
import { RUN_TAG } from "./harness/run-id";

const NODES = ["it-replica-a", "it-replica-b"];

/** The replica a node's presence key names (the one holding its agent's stream). */
async function holderOf(etcd: EmbeddedEtcd, node: string): Promise<string | undefined> {
  const out = execFileSync("etcdctl", [
    "--endpoints",
    etcd.endpoints.join(","),
    "get",
    `/grove/heartbeats/${node}`,
    "--print-value-only",
  ]);
  const text = out.toString().trim();
  return text ? (JSON.parse(text) as { server?: string }).server : undefined;
}

describe("three grove-server replicas", () => {
  let dir: string;
  let etcd: EmbeddedEtcd;
  const servers: ServerProcess[] = [];
  const agents: Started[] = [];

  const envOf = (s: ServerProcess) => ({ GROVE_SERVER: s.url, GROVE_TOKEN: s.adminToken, HOME: dir, GROVE_CONFIG: "" });

  beforeAll(async () => {
    dir = tempDir("grove-replicas");
    execFileSync(path.join(REPO_ROOT, "deploy", "make-rootfs.sh"), [path.join(dir, "rootfs", "busybox")]);
    etcd = new EmbeddedEtcd({ dataDir: path.join(dir, "etcd"), port: 0, stopTimeoutMs: 5000 });
    await etcd.start();
    await startReplicas(dir, ["s1", "s2", "s3"], etcd.endpoints, servers);
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess];
    for (const name of NODES) {
      agents.push(
        await startAgent({
          server: a,
          nodeName: name,
          stateDir: path.join(dir, `agent-${name}`),
          rootfsDir: path.join(dir, "rootfs"),
          cgroupParent: `grove-replicas-${name}-${RUN_TAG}`,
          extraArgs: ["--server", b.grpcAddress, "--server", c.grpcAddress],
          stopContainersOnExit: true,
        }),
      );
    }
    const client = new GroveClient({ server: b.url, token: b.adminToken });
    await client.apply({
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "hello", namespace: "default" },
      spec: {
        rootfs: "busybox",
        command: ["/bin/sh", "-c", "echo hello from the node; exec sleep 100000"],
        instances: 2,
        stopGracePeriodSeconds: 1,
      },
    });
    await waitFor(
      "hello-0 and hello-1 to run",
      async () =>
        (await client.list("Instance", { namespace: "default" })).items.filter((i) => i.status?.state === "Running")
          .length === 2,
      90_000,
    );
  }, 240_000);

  afterAll(async () => {
    for (const a of agents) await a.stop(30_000);
    for (const s of servers) await s.stop();
    await etcd?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  it("serves logs, exec and stats through a replica that does not hold the node's stream", async () => {
    // The agents start on servers[0]; in a random order the kill -9 test below may have run first
    // and moved them to a survivor (servers[0] then stays dead): use whichever holds them.
    const holders = await Promise.all(NODES.map((n) => holderOf(etcd, n)));
    const holder = servers.find((s) => s.url === holders[0]) as ServerProcess;
    for (const h of holders) expect(h).toBe(holder.url);
    const alive = holder === servers[0] ? servers : servers.slice(1);
    const other = alive.find((s) => s !== holder) as ServerProcess;

    await waitFor("the log line through B", async () => (await runCli(["logs", "hello/0"], envOf(other))).stdout);
    expect(await runCli(["logs", "hello/0"], envOf(other))).toMatchObject({ code: 0, stdout: "hello from the node\n" });

    const exec = await runCli(
      ["exec", "hello/1", "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
      envOf(other),
    );
    expect(exec).toMatchObject({ code: 3, stdout: "out\n", stderr: "err\n" });

    const top = await runCli(["top", "instances", "--interval", "200"], envOf(other));
    expect(top.stderr).not.toContain("unavailable");
    for (const i of ["hello-0", "hello-1"])
      expect(top.stdout).toMatch(new RegExp(`default\\s+${i}\\s+it-replica-[ab]\\s+\\d+m`));
  }, 60_000);

  it("moves the agents of a replica killed -9 to another within seconds, their nodes staying Ready", async () => {
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const client = new GroveClient({ server: b.url, token: b.adminToken });
    const pids = new Map(
      (await client.list("Instance", { namespace: "default" })).items.map((i) => [i.metadata.name, i.status?.pid]),
    );
    for (const n of NODES) expect(await holderOf(etcd, n)).toBe(a.url);

    // Every moment a node is not Ready from here on, as another replica serves the nodes.
    const notReady: string[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        try {
          for (const n of (await client.list("Node")).items as Node[]) {
            if (NODES.includes(n.metadata.name) && !isReady(n)) {
              notReady.push(`${n.metadata.name}: ${JSON.stringify(n.status?.conditions)}`);
            }
          }
        } catch {
          // B answers throughout; a failed poll is not a NotReady.
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      const killed = performance.now();
      await a.kill9();
      await waitFor(
        "both agents registered with a surviving replica",
        async () => {
          for (const n of NODES) {
            const h = await holderOf(etcd, n);
            if (!h || h === a.url) return false;
          }
          return true;
        },
        10_000,
      );
      // Within seconds (the agents try the next address at once; margin for a busy 2-core machine).
      expect((performance.now() - killed) / 1000).toBeLessThan(5);
      // Past the leader's presence fallback (3 refreshes of 5 s): a node whose agent had not moved would be Unknown by now.
      await new Promise((r) => setTimeout(r, 3 * PRESENCE_REFRESH_MS + 3_000));
    } finally {
      watching = false;
      await watch;
    }
    expect(notReady).toEqual([]);
    for (const i of (await client.list("Instance", { namespace: "default" })).items) {
      expect(i.status?.state).toBe("Running");
      expect(i.status?.pid).toBe(pids.get(i.metadata.name));
    }
    // And logs still come through any replica left.
    expect((await runCli(["logs", "hello/0"], envOf(c))).stdout).toBe("hello from the node\n");
  }, 90_000);
});
