// With its etcd gone, grove-server answers 503 with a clear message and the
// CLI exits non-zero saying the control plane's store is down.
import * as fs from "node:fs";
import * as path from "node:path";
import { EmbeddedEtcd } from "@grove/control-plane";
import { runCli, startServer, tempDir, type ServerProcess } from "./harness/processes";

describe("etcd unreachable", () => {
  let dir: string;
  let etcd: EmbeddedEtcd;
  let server: ServerProcess;

  beforeAll(async () => {
    dir = tempDir("grove-it-store");
    etcd = new EmbeddedEtcd({ dataDir: path.join(dir, "etcd"), port: 0 });
    await etcd.start();
    server = await startServer({ dataDir: path.join(dir, "server"), etcdEndpoints: etcd.endpoints });
  });

  afterAll(async () => {
    await server?.stop();
    await etcd?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("the API answers 503 StoreUnavailable and the CLI says the store is down", async () => {
    const auth = { authorization: `Bearer ${server.adminToken}` };
    const ok = await fetch(`${server.url}/v1/apps`, { headers: auth });
    expect(ok.status).toBe(200);

    await etcd.stop();
    const started = Date.now();
    const res = await fetch(`${server.url}/v1/apps`, { headers: auth });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe("StoreUnavailable");
    expect(body.message).toMatch(/store/i);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    const out = await runCli(["get", "apps"], {
      GROVE_SERVER: server.url,
      GROVE_TOKEN: server.adminToken,
      HOME: dir,
      GROVE_CONFIG: "",
    });
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/store is down|store .*unreachable/i);
  });
});
