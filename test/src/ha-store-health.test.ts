// A replica cut off from etcd (iptables drops its connections to etcd's
// second client port; the test's own client uses the first and is not cut).
// etcd then answers nothing, as with no quorum: calls would hang until their
// 5 s deadline. One real etcd, one real grove-server, a hand-driven agent
// stream (harness/raw-agent.ts) registered as a node with it.
//
// - Known down: once the replica's probe has failed (two failures in a row),
//   every request answers 503 StoreUnavailable at once, with Retry-After,
//   instead of each waiting out the deadline.
// - Compacted while cut off: Apps change behind the replica's back, etcd
//   compacts that history away, then the cut ends. The replica relists (its
//   watches cannot resume from a compacted revision, and a stream through a
//   cut connection may have missed events), sends the node no desired set
//   while its cache is stale, and the first set after the cut already shows
//   the change: nothing stale is sent, nothing is missed.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import type { ControlMessage__Output } from "@grove/proto";
import { Keys, createStore, type EtcdStore } from "@grove/control-plane";
import { createJoinToken, startServer, tempDir, waitFor, type ServerProcess } from "./harness/processes";
import { EtcdCluster } from "./harness/etcd-cluster";
import { joinOverApi, rawConnect, registerMessage, tlsCredentials, type RawStream } from "./harness/raw-agent";
import { RUN_TAG } from "./harness/run-id";

// The cut rules carry the run id, so the leak check sees one left behind (leaks.js).
const TAGGED = ["-m", "comment", "--comment", `grove-test-${RUN_TAG}`];

const NODE = `grove-${RUN_TAG}-hs`;

let dir: string;
let etcd: EtcdCluster;
let store: EtcdStore;
let server: ServerProcess;
let client: GroveClient;
const cutRules: string[][] = [];

beforeAll(async () => {
  dir = tempDir("grove-it-store-health");
  etcd = await EtcdCluster.start(dir, 1, { cutPort: true });
  store = createStore(etcd.endpoints);
  fs.mkdirSync(path.join(dir, "server"));
  // The replica reaches etcd only through the port the test cuts.
  server = await startServer({ dataDir: path.join(dir, "server"), etcdEndpoints: [etcd.cutEndpoint] });
  client = new GroveClient({ server: server.url, token: server.adminToken, timeoutMs: 30_000 });
}, 120_000);

afterEach(() => restore());

afterAll(async () => {
  restore();
  await server?.stop();
  await store?.close();
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

function cut(): void {
  const port = String(etcd.cutPort);
  for (const rule of [
    ["INPUT", "-i", "lo", "-p", "tcp", "--dport", port, ...TAGGED, "-j", "DROP"],
    ["OUTPUT", "-o", "lo", "-p", "tcp", "--sport", port, ...TAGGED, "-j", "DROP"],
  ]) {
    execFileSync("iptables", ["-w", "-I", ...rule]);
    cutRules.push(rule);
  }
}

function restore(): void {
  for (const rule of cutRules.splice(0)) execFileSync("iptables", ["-w", "-D", ...rule]);
}

const auth = () => ({ authorization: `Bearer ${server.adminToken}` });

/** Waits until the replica knows etcd is down: /readyz answers 503 at once. */
async function waitKnownDown(timeoutMs: number): Promise<void> {
  await waitFor(
    "the replica to know etcd is down",
    async () => {
      const t = performance.now();
      const res = await fetch(`${server.url}/readyz`);
      return res.status === 503 && performance.now() - t < 1000;
    },
    timeoutMs,
  );
}

function app(name: string): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sleep", "3600"],
      instances: 1,
      resources: { cpu: "10m", memory: "16Mi" },
    },
  } as App;
}

test("etcd not answering: once known down, every request answers 503 StoreUnavailable at once with Retry-After", async () => {
  expect((await fetch(`${server.url}/v1/apps`, { headers: auth() })).status).toBe(200);
  cut();
  const cutAt = performance.now();
  // Two failed probes (2 s deadline each, one a second) or a failed call and a probe.
  await waitKnownDown(15_000);
  const detectMs = performance.now() - cutAt;
  for (const req of [
    () => fetch(`${server.url}/v1/apps`, { headers: auth() }),
    () =>
      fetch(`${server.url}/v1/namespaces/default/apps`, {
        method: "POST",
        headers: { ...auth(), "content-type": "application/json" },
        body: JSON.stringify(app("hs-during-cut")),
      }),
  ]) {
    const t = performance.now();
    const res = await req();
    const tookMs = performance.now() - t;
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe("StoreUnavailable");
    expect(body.message).toMatch(/known down for [\d.]+ s/);
    // Not the 5 s call deadline: answered from what the replica knows.
    expect(tookMs).toBeLessThan(1000);
  }
  process.stdout.write(`etcd cut off: known down after ${(detectMs / 1000).toFixed(2)} s, then 503 at once\n`);

  restore();
  await waitFor("the API to answer again", async () => (await fetch(`${server.url}/readyz`)).status === 200, 15_000);
  expect((await fetch(`${server.url}/v1/apps`, { headers: auth() })).status).toBe(200);
}, 60_000);

test("compacted while cut off: the replica relists, sends no set from its stale cache, and misses nothing", async () => {
  const token = await createJoinToken(server, NODE);
  const joined = await joinOverApi(server.url, server.caPem, token, NODE);
  expect(joined.status).toBe(200);
  // Like an agent: registers, heartbeats, and connects again when its stream ends.
  const streams: RawStream[] = [];
  let stopped = false;
  const connect = () => {
    const s = rawConnect(server.grpcAddress, tlsCredentials(server.caPem, joined.pair), 120_000);
    streams.push(s);
    s.send(registerMessage(NODE));
    void s.ended.then(() => {
      if (!stopped) setTimeout(connect, 200);
    });
  };
  connect();
  const beat = setInterval(() => streams.at(-1)!.send({ heartbeat: { sentAtMs: Date.now() } }), 500);
  const sets = () =>
    streams
      .flatMap((st) => st.received)
      .filter((m): m is ControlMessage__Output & { desired: NonNullable<ControlMessage__Output["desired"]> } =>
        Boolean(m.desired),
      );
  const last = () => sets().at(-1)?.desired.instances ?? [];
  try {
    await client.apply(app("hs-keep"));
    await client.apply(app("hs-gone"));
    await waitFor("both Apps' instances in the node's set", async () => last().length === 2, 30_000);
    const gone = last().find((i) => i.app === "hs-gone")!;

    cut();
    await waitKnownDown(15_000);
    const setsAtCut = sets().length;
    // Behind the replica's back: one App deleted with its instance, one created; then the history compacted.
    const goneKv = await store.get<Instance>(Keys.object("instances", "default", gone.name));
    await store.txn(
      [],
      [
        { type: "delete", key: Keys.object("apps", "default", "hs-gone") },
        { type: "delete", key: goneKv!.key },
      ],
    );
    const appKv = await store.get<App>(Keys.object("apps", "default", "hs-keep"));
    const created: App = {
      ...appKv!.value,
      metadata: { ...appKv!.value.metadata, name: "hs-new", uid: `${appKv!.value.metadata.uid}-new` },
    };
    await store.create(Keys.object("apps", "default", "hs-new"), created);
    const rev = (await store.txn([], [])).revision;
    execFileSync("etcdctl", [`--endpoints=${etcd.endpoints[0]}`, "compact", rev], {
      env: { ...process.env, ETCDCTL_API: "3" },
    });

    restore();
    // The new App's instance, placed by the replica (leader again) from its relisted caches, reaches the node.
    await waitFor(
      "a set with hs-new's instance and without hs-gone's",
      async () => last().some((i) => i.app === "hs-new") && !last().some((i) => i.uid === gone.uid),
      30_000,
    );
    const after = sets().slice(setsAtCut);
    // No set from the stale cache: every one sent since the cut lacks the deleted instance.
    expect(after.length).toBeGreaterThan(0);
    for (const s of after) expect(s.desired.instances.map((i) => i.uid)).not.toContain(gone.uid);
    expect(after[0]!.desired.instances.some((i) => i.app === "hs-keep")).toBe(true);
    // It knew: caches stale while cut off, relisted after, fresh again.
    const logs = server.output.join("\n");
    expect(logs).toMatch(/informer cache is stale/);
    expect(logs).toMatch(/informer relisted/);
    expect(logs).toMatch(/informer cache is fresh again/);
  } catch (err) {
    process.stdout.write(
      server.output.slice(-80).join("\n") +
        "\n" +
        JSON.stringify(sets().map((s) => s.desired.instances.map((i) => i.name))) +
        "\n",
    );
    throw err;
  } finally {
    stopped = true;
    clearInterval(beat);
    for (const st of streams) st.close();
  }
}, 90_000);
