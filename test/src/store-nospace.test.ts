// The etcd-out-of-space runbook (docs/operations.md), run for real: a
// member with an 8 MiB quota whose history is filled through etcdctl raises
// NOSPACE; writes then answer 503 StoreOutOfSpace saying so, reads and
// deletes work; compact, defragment and disarm (the runbook's commands)
// bring writes back.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { EmbeddedEtcd } from "@grove/control-plane";
import { GroveClient, type App } from "@grove/api";
import { startServer, tempDir, waitFor, type ServerProcess } from "./harness/processes";

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

describe("etcd out of space", () => {
  it("etcd out of space: 503 StoreOutOfSpace on writes, reads and deletes work, the runbook brings writes back", async () => {
    const nospaceDir = tempDir("grove-nospace");
    const etcd = new EmbeddedEtcd({
      dataDir: path.join(nospaceDir, "etcd"),
      port: 0,
      stopTimeoutMs: 5000,
      quotaBackendBytes: 8 * 1024 * 1024,
    });
    let server: ServerProcess | undefined;
    const etcdctl = (...args: string[]) =>
      execFileSync("etcdctl", ["--endpoints", etcd.endpoints.join(","), ...args], { encoding: "utf8" });
    try {
      await etcd.start();
      fs.mkdirSync(path.join(nospaceDir, "server"));
      server = await startServer({ dataDir: path.join(nospaceDir, "server"), etcdEndpoints: etcd.endpoints });
      const client = new GroveClient({ server: server.url, token: server.adminToken });
      await client.apply(app("keep"));

      // History fills the backend (as unbounded status writes would): one key rewritten with ~1 MiB values.
      const big = Buffer.alloc(1_000_000, "x");
      await waitFor(
        "etcd's NOSPACE alarm",
        async () => {
          spawnSync("etcdctl", ["--endpoints", etcd.endpoints.join(","), "put", "/flood"], { input: big });
          return etcdctl("alarm", "list").includes("NOSPACE");
        },
        60_000,
      );

      const res = await fetch(`${server.url}/v1/namespaces/default/apps/more`, {
        method: "PUT",
        headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
        body: JSON.stringify(app("more")),
      });
      expect(res.status).toBe(503);
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code).toBe("StoreOutOfSpace");
      expect(body.message).toMatch(/out of space.*reads and deletes still work/);

      expect((await client.get("App", "keep", "default")).metadata.name).toBe("keep");
      expect((await client.list("App", { namespace: "default" })).items.map((a) => a.metadata.name)).toEqual(["keep"]);
      await client.delete("App", "keep", "default");
      await expect(client.get("App", "keep", "default")).rejects.toMatchObject({ code: "NotFound" });

      // The runbook: compact at the current revision, defragment every member, disarm.
      const status = JSON.parse(etcdctl("endpoint", "status", "--write-out", "json")) as Array<{
        Status: { header: { revision: number } };
      }>;
      etcdctl("compact", String(status[0]!.Status.header.revision));
      etcdctl("defrag");
      etcdctl("alarm", "disarm");
      expect(etcdctl("alarm", "list").trim()).toBe("");
      await waitFor("writes to work again", async () => (await client.apply(app("more"))) !== undefined, 30_000);
      expect((await client.get("App", "more", "default")).metadata.name).toBe("more");
    } finally {
      await server?.stop();
      await etcd.stop();
      fs.rmSync(nospaceDir, { recursive: true, force: true });
    }
  }, 180_000);
});
