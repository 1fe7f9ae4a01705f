// The backup and restore runbook (docs/operations.md), run for real:
// `grove-server backup FILE` of the embedded etcd, its data wiped,
// grove-server started on the empty store (a new cluster: the agent refuses
// its empty set and keeps its containers), then `grove-server restore FILE`:
// every App is back, the agent accepts the restored state, and the
// containers never stopped (same pids throughout).
//
// Three grove-server starts and two agent reconnects take minutes on a busy
// machine: this runs in `npm run test:chaos` (GROVE_CHAOS_SUITE=1), not in
// `npm test`.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { GroveClient, type App } from "@grove/api";
import {
  BIN,
  REPO_ROOT,
  isReady,
  startAgent,
  startServer,
  tempDir,
  waitFor,
  type ServerProcess,
  type Started,
} from "./harness/processes";
import { RUN_TAG } from "./harness/run-id";

const app = (name: string): App => ({
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name, namespace: "default" },
  spec: {
    rootfs: "busybox",
    command: ["/bin/sh", "-c", "exec sleep 100000"],
    instances: 1,
    stopGracePeriodSeconds: 1,
  },
});

/** A free loopback port whose successor (the embedded etcd's peer port) is free too. */
async function freePortPair(): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = net.createServer().once("error", reject);
      srv.listen(port, "127.0.0.1", () => {
        const a = srv.address();
        srv.close(() => resolve(typeof a === "object" && a ? a.port : 0));
      });
    });
  for (;;) {
    const port = await tryPort(0);
    if (port < 65535 && (await tryPort(port + 1).catch(() => 0))) return port;
  }
}

function groveServer(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN.server, ...args], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const chaosOnly = process.env.GROVE_CHAOS_SUITE === "1" ? it : it.skip;

describe("backup and restore", () => {
  let dir: string;
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  chaosOnly(
    "backup, wipe, restore: every App comes back and the agent's containers keep running meanwhile",
    async () => {
      dir = tempDir("grove-backup");
      execFileSync(path.join(REPO_ROOT, "deploy", "make-rootfs.sh"), [path.join(dir, "rootfs", "busybox")]);
      const dataDir = path.join(dir, "server");
      fs.mkdirSync(dataDir);
      const etcdPort = await freePortPair();
      const serverArgs = { dataDir, extraArgs: ["--etcd-port", String(etcdPort)] };
      let server: ServerProcess | undefined = await startServer(serverArgs);
      let agent: Started | undefined;
      try {
        agent = await startAgent({
          server,
          nodeName: "it-backup-node",
          stateDir: path.join(dir, "agent"),
          rootfsDir: path.join(dir, "rootfs"),
          cgroupParent: `grove-backup-${RUN_TAG}`,
        });
        let client = new GroveClient({ server: server.url, token: server.adminToken });
        for (const name of ["one", "two"]) await client.apply(app(name));
        const running = async () => {
          const items = (await client.list("Instance", { namespace: "default" })).items;
          return items.length === 2 && items.every((i) => i.status?.state === "Running" && i.status.pid) && items;
        };
        const before = new Map(
          (await waitFor("both instances running", running, 90_000)).map((i) => [i.metadata.name, i.status!.pid!]),
        );

        const file = path.join(dir, "grove.snapshot");
        const saved = groveServer(["backup", file, "--etcd-port", String(etcdPort), "--data-dir", server.dataDir]);
        expect(saved).toMatchObject({ code: 0 });
        expect(JSON.parse(saved.stdout)).toMatchObject({ file, totalKey: expect.any(Number) });
        // A second backup to the same file changes nothing and says why.
        expect(
          groveServer(["backup", file, "--etcd-port", String(etcdPort), "--data-dir", server.dataDir]),
        ).toMatchObject({
          code: 1,
          stderr: expect.stringContaining("exists"),
        });

        // The store is lost: grove-server comes up on an empty one (a new cluster with nothing in it).
        await server.stop();
        fs.rmSync(path.join(dataDir, "etcd"), { recursive: true, force: true });
        server = await startServer({ ...serverArgs, grpcListen: server.grpcAddress });
        await waitFor(
          "the agent to refuse the empty store's set",
          async () => agent!.output.some((l) => l.includes("desired set refused")),
          30_000,
        );
        for (const pid of before.values()) expect(alive(pid)).toBe(true);

        // Restore needs the member stopped and its data directory out of the way.
        const grpcAddress = server.grpcAddress;
        await server.stop();
        server = undefined;
        expect(groveServer(["restore", file, "--data-dir", dataDir, "--etcd-port", String(etcdPort)])).toMatchObject({
          code: 1,
          stderr: expect.stringContaining("not empty"),
        });
        fs.rmSync(path.join(dataDir, "etcd"), { recursive: true, force: true });
        const restored = groveServer(["restore", file, "--data-dir", dataDir, "--etcd-port", String(etcdPort)]);
        expect(restored).toMatchObject({ code: 0 });
        server = await startServer({ ...serverArgs, grpcListen: grpcAddress });
        client = new GroveClient({ server: server.url, token: server.adminToken });

        expect((await client.list("App", { namespace: "default" })).items.map((a) => a.metadata.name).sort()).toEqual([
          "one",
          "two",
        ]);
        await waitFor(
          "the node Ready on the restored store",
          async () => isReady(await client.get("Node", "it-backup-node")),
          30_000,
        );
        // The agent applies the restored state again (same cluster, not older than what it applied).
        await waitFor(
          "the agent to accept the restored store's set",
          async () =>
            (await client.get("Node", "it-backup-node")).status?.conditions?.find(
              (c) => c.type === "DesiredStateRefused",
            )?.status === "False",
          30_000,
        );
        const after = await waitFor("both instances running after the restore", running, 30_000);
        for (const i of after) expect(i.status?.pid).toBe(before.get(i.metadata.name));
        for (const pid of before.values()) expect(alive(pid)).toBe(true);
      } finally {
        await agent?.stop(30_000);
        await server?.stop();
      }
    },
    240_000,
  );
});
