// grove-server on a real three-member etcd: the store sends every call to
// another member when its own is down (per-call failover), so with one member
// killed every write still succeeds; with two killed (no quorum) the API
// answers 503 StoreUnavailable fast, with etcd's reason; with the members
// back, everything acknowledged before is there.
//
// About 40 s (three etcd members, killed and restarted): it runs in the chaos
// suite (`npm run test:chaos`, GROVE_CHAOS=1) and is skipped in `npm test`.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, GroveError, type App } from "@grove/api";
import { Keys, createStore } from "@grove/control-plane";
import { startServer, tempDir, type ServerProcess } from "./harness/processes";
import { EtcdCluster } from "./harness/etcd-cluster";

const chaosOnly = process.env.GROVE_CHAOS === "1" ? describe : describe.skip;

let dir: string;
let etcd: EtcdCluster;
let server: ServerProcess;
let client: GroveClient;

chaosOnly("three-member etcd", () => {
  beforeAll(async () => {
    dir = tempDir("grove-it-quorum");
    etcd = await EtcdCluster.start(dir, 3);
    fs.mkdirSync(path.join(dir, "server"));
    server = await startServer({ dataDir: path.join(dir, "server"), etcdEndpoints: etcd.endpoints });
    client = new GroveClient({ server: server.url, token: server.adminToken, timeoutMs: 30_000 });
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await etcd?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  function app(name: string): App {
    return {
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name, namespace: "default" },
      spec: { rootfs: "busybox", command: ["/bin/sleep", "3600"], instances: 0 },
    } as App;
  }

  test("one member killed: writes continue; two killed: 503 fast with a reason; restored: nothing acknowledged is lost", async () => {
    const acknowledged: string[] = [];
    const write = async (name: string) => {
      await client.apply(app(name));
      acknowledged.push(name);
    };
    for (let i = 0; i < 5; i++) await write(`q-all-${i}`);

    // One member down: every call that lands on it goes to another one at once.
    await etcd.kill(2);
    await etcd.waitHealthy();
    for (let i = 0; i < 30; i++) await write(`q-one-down-${i}`);
    expect((await client.list("App")).items.length).toBe(acknowledged.length);

    // Two down: no quorum. The API says so quickly, naming the store.
    await etcd.kill(1);
    const started = performance.now();
    const err = await client.apply(app("q-no-quorum")).then(
      () => undefined,
      (e: unknown) => e,
    );
    const tookMs = performance.now() - started;
    expect(err).toBeInstanceOf(GroveError);
    expect(err).toMatchObject({ code: "StoreUnavailable" });
    expect((err as Error).message).toMatch(/etcd|store/i);
    expect(tookMs).toBeLessThan(12_000);
    const read = await fetch(`${server.url}/v1/apps`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(read.status).toBe(503);
    expect(((await read.json()) as { code: string }).code).toBe("StoreUnavailable");
    process.stdout.write(`no quorum: the write failed with 503 after ${(tookMs / 1000).toFixed(2)} s\n`);
    // Known down now (store/store-health.ts): every further request answers at once, not at the call deadline.
    const again = performance.now();
    const fast = await fetch(`${server.url}/v1/apps`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(fast.status).toBe(503);
    expect(fast.headers.get("retry-after")).toBe("1");
    expect(performance.now() - again).toBeLessThan(1000);

    // Members back: everything acknowledged before is there.
    etcd.restart(1);
    etcd.restart(2);
    await etcd.waitHealthy(60_000);
    const store = createStore(etcd.endpoints);
    try {
      const names = (await store.list<App>(Keys.collection("apps", "default"))).items.map(
        (kv) => kv.value.metadata.name,
      );
      for (const name of acknowledged) expect(names).toContain(name);
    } finally {
      await store.close();
    }
    await write("q-restored");
  }, 180_000);
});
