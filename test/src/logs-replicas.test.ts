// Two grove-server replicas on one etcd: a node's agent holds its Connect
// stream with one of them. `grove logs` / `grove top` through that replica
// work; through the other one they answer NodeUnavailable naming the replica
// that holds the stream (recorded with the node's heartbeats), instead of
// hanging or pretending the node is gone.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { EmbeddedEtcd } from "@grove/control-plane";
import { GroveClient } from "@grove/api";
import {
  REPO_ROOT,
  runCli,
  startAgent,
  startServer,
  tempDir,
  waitFor,
  type ServerProcess,
  type Started,
} from "./harness/processes";

const NODE = "it-replica-node";

describe("logs and top with two grove-server replicas", () => {
  let dir: string;
  let etcd: EmbeddedEtcd;
  const servers: ServerProcess[] = [];
  let agent: Started;

  const envOf = (s: ServerProcess) => ({ GROVE_SERVER: s.url, GROVE_TOKEN: s.adminToken, HOME: dir, GROVE_CONFIG: "" });

  beforeAll(async () => {
    dir = tempDir("grove-logs-replicas");
    execFileSync(path.join(REPO_ROOT, "deploy", "make-rootfs.sh"), [path.join(dir, "rootfs", "busybox")]);
    etcd = new EmbeddedEtcd({ dataDir: path.join(dir, "etcd"), port: 0, stopTimeoutMs: 5000 });
    await etcd.start();
    for (const n of ["s1", "s2"]) {
      fs.mkdirSync(path.join(dir, n));
      servers.push(await startServer({ dataDir: path.join(dir, n), etcdEndpoints: etcd.endpoints }));
    }
    agent = await startAgent({
      server: servers[0]!,
      nodeName: NODE,
      stateDir: path.join(dir, "agent"),
      rootfsDir: path.join(dir, "rootfs"),
      cgroupParent: `grove-replicas-${process.pid}`,
    });
    const client = new GroveClient({ server: servers[0]!.url, token: servers[0]!.adminToken });
    await client.apply({
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "hello", namespace: "default" },
      spec: {
        rootfs: "busybox",
        command: ["/bin/sh", "-c", "echo hello from the node; exec sleep 100000"],
        instances: 1,
        stopGracePeriodSeconds: 1,
      },
    });
    await waitFor(
      "hello-0 to run",
      async () => (await client.get("Instance", "hello-0", "default")).status?.state === "Running",
      90_000,
    );
  }, 180_000);

  afterAll(async () => {
    await agent?.stop(30_000);
    for (const s of servers) await s.stop();
    await etcd?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("the replica holding the stream serves; the other names it", async () => {
    const [holder, other] = servers as [ServerProcess, ServerProcess];
    await waitFor("the log line", async () => (await runCli(["logs", "hello/0"], envOf(holder))).stdout);
    expect((await runCli(["logs", "hello/0"], envOf(holder))).stdout).toBe("hello from the node\n");

    const refused = await runCli(["logs", "hello/0"], envOf(other));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`connected to another grove-server replica (${holder.url})`);
    expect(refused.stderr).toContain(`--server ${holder.url}`);

    const top = await runCli(["top", "instances", "--interval", "200"], envOf(other));
    expect(top.stderr).toContain(
      `(node ${NODE}: the agent of node ${NODE} is connected to another grove-server replica`,
    );
    const topHere = await runCli(["top", "instances", "--interval", "200"], envOf(holder));
    expect(topHere.stdout).toMatch(new RegExp(`default\\s+hello-0\\s+${NODE}\\s+\\d+m`));
  });
});
