// Lists larger than one gRPC message (issue 5 follow-up: listing failed near
// 11 000 instances). 20 000 instance-sized objects, more than 4 MiB × 2 in
// all, in a real etcd: the Store reads them in pages at one revision, a write
// between pages does not show, a compaction mid-list is survived (list()) or
// reported (a continue token: 410 Gone); and through a real grove-server the
// HTTP API pages with ?limit=&continue=, the api client and `grove get`
// follow the tokens.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveError, type ErrorBody, type Instance, type List } from "@grove/api";
import {
  EmbeddedEtcd,
  LeaderElection,
  createStore,
  type EtcdStore,
  type KeyValue,
  type TxnOp,
} from "@grove/control-plane";
import { runCli, startServer, tempDir, type ServerProcess } from "./harness/processes";
import { RUN_TAG } from "./harness/run-id";

const N = 20_000;
const NS = "big";
const PREFIX = `/grove/instances/${NS}/`;
const GRPC_DEFAULT_MAX = 4 * 1024 * 1024;

const name = (i: number) => `web-${String(i).padStart(5, "0")}`;
const keyOf = (i: number) => `${PREFIX}${name(i)}`;

/** An Instance as the App controller and an agent leave it: env, labels, a placed and running status. */
function instance(i: number): Instance {
  const env: Record<string, string> = {};
  for (let e = 0; e < 5; e++) env[`SETTING_${e}`] = `value-${e}-${"x".repeat(24)}`;
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: {
      name: name(i),
      namespace: NS,
      uid: `3f2b8c1e-0000-4000-8000-${String(i).padStart(12, "0")}`,
      generation: 1,
      creationTimestamp: new Date(Date.UTC(2026, 10, 28, 12, 0, 0, i)).toISOString(),
      labels: { app: "web", tier: "frontend", "grove.dev/template-hash": "5d8c7f9b4a" },
    },
    spec: {
      app: "web",
      appUid: "9a1d7e52-1c3b-4f6e-9d2a-7b8c0e4f1a23",
      index: i,
      rootfs: "busybox",
      command: ["/bin/sh", "-c", "exec httpd -f -p 8080 -h /srv/www"],
      env,
      resources: { cpuMillis: 250, memoryBytes: 256 * 1024 * 1024, pids: 512 },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 10,
      restarts: 0,
    },
    status: {
      state: "Running",
      nodeName: `node-${String(i % 500).padStart(4, "0")}`,
      pid: 10_000 + i,
      scheduledAt: new Date(Date.UTC(2026, 10, 28, 12, 0, 1, i)).toISOString(),
      startedAt: new Date(Date.UTC(2026, 10, 28, 12, 0, 2, i)).toISOString(),
      ip: `10.88.${(i >> 8) & 255}.${i & 255}`,
      message: "started by the agent; health checks pass",
    },
  };
}

let dir: string;
let etcd: EmbeddedEtcd;
/** A store whose gRPC client keeps grpc-js' default 4 MiB receive limit: paging, not headroom, must do it. */
let store: EtcdStore;
const warnings: string[] = [];
const logger = { info() {}, error() {}, warn: (_obj: object, msg?: string) => void warnings.push(msg ?? "") };
let totalBytes = 0;
let written = "";

function etcdctl(...args: string[]): string {
  return execFileSync("etcdctl", [`--endpoints=${etcd.endpoints.join(",")}`, ...args], {
    env: { ...process.env, ETCDCTL_API: "3" },
    encoding: "utf8",
  });
}

/** A write outside the listed prefix, then compaction up to it: every older revision is gone. */
async function writeAndCompact(): Promise<void> {
  const res = await store.txn([], [{ type: "put", key: "/grove/test-compactor", value: { at: Date.now() } }]);
  etcdctl("compact", res.revision);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GroveError) return err.code;
    throw err;
  }
  return "resolved";
}

beforeAll(async () => {
  dir = tempDir(`large-list-${RUN_TAG}`);
  etcd = new EmbeddedEtcd({ dataDir: path.join(dir, "etcd"), port: 0, stopTimeoutMs: 5000 });
  await etcd.start();
  store = createStore(etcd.endpoints, { callTimeoutMs: 10_000, maxReceiveMessageBytes: GRPC_DEFAULT_MAX, logger });
  // etcd takes at most 128 operations per transaction (--max-txn-ops); 4 in flight.
  const batches: TxnOp<Instance>[][] = [];
  for (let i = 0; i < N; i += 125) {
    const ops: TxnOp<Instance>[] = [];
    for (let j = i; j < Math.min(N, i + 125); j++) {
      const value = instance(j);
      totalBytes += Buffer.byteLength(keyOf(j)) + Buffer.byteLength(JSON.stringify(value));
      ops.push({ type: "put", key: keyOf(j), value });
    }
    batches.push(ops);
  }
  for (let b = 0; b < batches.length; b += 4) {
    const results = await Promise.all(batches.slice(b, b + 4).map((ops) => store.txn([], ops)));
    written = results[results.length - 1]!.revision;
  }
}, 60_000);

afterAll(async () => {
  await store?.close();
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function expectAllInOrder(items: { key?: string; metadata?: { name: string } }[]): void {
  expect(items).toHaveLength(N);
  for (let i = 0; i < N; i++) {
    const got = items[i]!.key ?? items[i]!.metadata!.name;
    if (got !== keyOf(i) && got !== name(i)) throw new Error(`item ${i} is ${got}, expected ${name(i)}`);
  }
}

test("the objects are more than 2 × gRPC's 4 MiB; list() reads all at one revision, in key order", async () => {
  expect(totalBytes).toBeGreaterThan(2 * GRPC_DEFAULT_MAX);
  // More than the 16 MiB grove-server's client accepts too: the server below only serves them because it pages.
  expect(totalBytes).toBeGreaterThan(16 * 1024 * 1024);
  warnings.length = 0;
  const list = await store.list<Instance>(PREFIX);
  expect(warnings).toEqual([]); // the default pages fit in 4 MiB on their own, no halving needed
  expectAllInOrder(list.items);
  expect(BigInt(list.revision)).toBeGreaterThanOrEqual(BigInt(written));
  expect(list.items.every((kv) => BigInt(kv.modRevision) <= BigInt(list.revision))).toBe(true);
  expect(list.items[N - 1]!.value).toEqual(instance(N - 1));
});

test("one range of everything is more than the client accepts: the store halves the page until it fits", async () => {
  const greedy = createStore(etcd.endpoints, {
    callTimeoutMs: 10_000,
    maxReceiveMessageBytes: GRPC_DEFAULT_MAX,
    listPageLimit: 6000, // about 7 MiB
    listPageBytes: 1024 * 1024 * 1024,
    logger,
  });
  try {
    warnings.length = 0;
    const list = await greedy.list<Instance>(PREFIX);
    expectAllInOrder(list.items);
    expect(warnings).toContain("list page larger than the gRPC message limit; halving the page");
  } finally {
    await greedy.close();
  }
  // An object larger than the limit on its own cannot be paged around: say where it is.
  const tiny = createStore(etcd.endpoints, { callTimeoutMs: 10_000, maxReceiveMessageBytes: 512, logger });
  try {
    await expect(tiny.list(PREFIX)).rejects.toMatchObject({
      code: "Internal",
      message: expect.stringContaining(`the first object at or after ${PREFIX} is larger on its own than`) as string,
    });
  } finally {
    await tiny.close();
  }
});

test("pages continue at the first page's revision: writes between pages neither show nor tear the list", async () => {
  const first = await store.listPage<Instance>(PREFIX, { limit: 1000 });
  expect(first.items).toHaveLength(1000);
  expect(first.remaining).toBe(N - 1000);
  // Between pages: a new key that sorts into a later page, an update and a delete of later keys.
  await store.create(`${PREFIX}${name(5000)}a`, instance(5000));
  const later = (await store.get<Instance>(keyOf(15_000)))!;
  await store.update(keyOf(15_000), { ...later.value, status: { state: "Failed" } }, later.modRevision);
  await store.delete(keyOf(19_999));
  const items: KeyValue<Instance>[] = [...first.items];
  let next = first.nextKey;
  while (next !== undefined) {
    const page = await store.listPage<Instance>(PREFIX, { limit: 1000, startKey: next, revision: first.revision });
    expect(page.revision).toBe(first.revision);
    items.push(...page.items);
    next = page.nextKey;
  }
  expectAllInOrder(items);
  expect(items[15_000]!.value.status?.state).toBe("Running");
  // The store has the writes.
  expect((await store.get<Instance>(keyOf(15_000)))!.value.status?.state).toBe("Failed");
  expect(await store.get(keyOf(19_999))).toBeUndefined();
  // Put the collection back as it was for the tests that follow.
  await store.delete(`${PREFIX}${name(5000)}a`);
  const failed = (await store.get<Instance>(keyOf(15_000)))!;
  await store.update(keyOf(15_000), instance(15_000), failed.modRevision);
  await store.create(keyOf(19_999), instance(19_999));
});

test("a compacted revision mid-list: a page at it is Gone, list() starts again and returns a whole snapshot", async () => {
  const first = await store.listPage<Instance>(PREFIX, { limit: 500 });
  await writeAndCompact();
  expect(await codeOf(store.listPage(PREFIX, { limit: 500, startKey: first.nextKey, revision: first.revision }))).toBe(
    "Gone",
  );

  // list() in small pages while a writer compacts every few milliseconds,
  // until the store reports that it started the list again.
  const small = createStore(etcd.endpoints, { callTimeoutMs: 10_000, listPageLimit: 100, logger });
  try {
    warnings.length = 0;
    const restarted = () => warnings.includes("list revision compacted between pages; listing again");
    let listing = true;
    const compactor = (async () => {
      while (listing && !restarted()) {
        await writeAndCompact();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const list = await small.list<Instance>(PREFIX).finally(() => (listing = false));
    await compactor;
    expect(restarted()).toBe(true);
    expectAllInOrder(list.items);
  } finally {
    await small.close();
  }
});

describe("through grove-server", () => {
  let server: ServerProcess;
  let standby: LeaderElection;

  beforeAll(async () => {
    // This test holds the controllers' lease, so the server stays a standby:
    // its App controller would otherwise delete instances that no App owns.
    standby = new LeaderElection(
      { endpoints: etcd.endpoints, identity: `large-list-test-${RUN_TAG}` },
      {
        onElected() {},
        onLost() {},
      },
    );
    await standby.start();
    expect(standby.isLeader).toBe(true);
    server = await startServer({ dataDir: path.join(dir, "server"), etcdEndpoints: etcd.endpoints });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await standby?.close();
  });

  async function get(url: string): Promise<{ status: number; body: List<Instance> & ErrorBody }> {
    const res = await fetch(server.url + url, { headers: { authorization: `Bearer ${server.adminToken}` } });
    const answer = { status: res.status, body: (await res.json()) as List<Instance> & ErrorBody };
    if (res.status >= 500) throw new Error(`${url}: ${res.status}; server log:\n${server.output.slice(-5).join("\n")}`);
    return answer;
  }

  test("the server's informers loaded them; the full list is still the default", async () => {
    const all = await get(`/v1/namespaces/${NS}/instances`);
    expect(all.status).toBe(200);
    expectAllInOrder(all.body.items);
    expect(all.body.metadata.continue).toBeUndefined();
  });

  test("?limit=&continue= pages at one revision; a write between pages is not in the snapshot", async () => {
    const first = await get(`/v1/namespaces/${NS}/instances?limit=3000`);
    expect(first.body.items).toHaveLength(3000);
    expect(first.body.metadata.remainingItemCount).toBe(N - 3000);
    await store.delete(keyOf(12_345));
    const items = [...first.body.items];
    let token = first.body.metadata.continue;
    let pages = 1;
    while (token !== undefined) {
      const page = await get(`/v1/namespaces/${NS}/instances?limit=3000&continue=${token}`);
      expect(page.status).toBe(200);
      expect(page.body.metadata.resourceVersion).toBe(first.body.metadata.resourceVersion);
      items.push(...page.body.items);
      token = page.body.metadata.continue;
      pages++;
    }
    expect(pages).toBe(7);
    expectAllInOrder(items);
    await store.create(keyOf(12_345), instance(12_345));
  });

  test("the api client (through `grove get`) follows continue tokens", async () => {
    const cli = await runCli(["get", "instances", "-n", NS, "--chunk-size", "3000"], {
      GROVE_SERVER: server.url,
      GROVE_TOKEN: server.adminToken,
      HOME: dir,
      GROVE_CONFIG: "",
    });
    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    const rows = cli.stdout.split("\n").filter((l) => l.startsWith("web-"));
    expect(rows).toHaveLength(N);
    expect(rows[N - 1]).toMatch(/^web-19999\s/);
  });

  test("a bad continue token is 400 naming continue; an expired one is 410 Gone", async () => {
    const bad = await get(`/v1/namespaces/${NS}/instances?limit=10&continue=not-a-token`);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/^invalid continue token/);
    const first = await get(`/v1/namespaces/${NS}/instances?limit=10`);
    await writeAndCompact();
    const gone = await get(`/v1/namespaces/${NS}/instances?limit=10&continue=${first.body.metadata.continue}`);
    expect(gone.status).toBe(410);
    expect(gone.body.code).toBe("Gone");
    expect(gone.body.message).toMatch(/continue token has expired.*compacted.*List again without continue/);
  });
});
