// Issue 15, transport: every listener of grove-server speaks TLS, and nothing
// answers without credentials. Routes and gRPC methods are enumerated from the
// running server (its OpenAPI document and the service it serves); each is
// called without credentials, with a wrong token, and (gRPC) with a
// certificate from another CA, an expired one, one that is no node's, and in
// plaintext. None gets in, and nothing is written to the store: every write
// etcd makes meanwhile (a watch over the whole keyspace, checked against the
// revision count) is the replica's own presence beat, which it rewrites every
// 5 s in the background whatever the requests do (nodes/presence.ts; a loaded
// machine once stretched the 401 loop past one beat).
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { GroveClient } from "@grove/api";
import { createCa, createStore, issueKeyPair, NODE_ORGANIZATION } from "@grove/control-plane";
import {
  etcdClientTls,
  startAgent,
  startServer,
  tempDir,
  waitFor,
  waitNodeReady,
  type ServerProcess,
  type Started,
} from "./harness/processes";
import { agentServiceMethods, rawConnect, registerMessage, tlsCredentials } from "./harness/raw-agent";
import { RUN_TAG } from "./harness/run-id";

const run = promisify(execFile);
const CGROUP_PARENT = `grove-it-tls-${RUN_TAG}`;
/** The one background writer of a server without agents (REPLICA_PRESENCE_PREFIX, control-plane/src/nodes/presence.ts). */
const REPLICA_BEAT = /^\/grove\/replica-presence\/[^/]+$/;

describe("TLS on every listener; nothing answers without credentials", () => {
  let dir: string;
  let server: ServerProcess;
  let etcdUrl: string;
  let pki: string;

  /** etcdctl as grove-server (its client certificate), or as anyone else (`asServer` false). */
  const etcdctl = (args: string[], asServer = true) =>
    run("etcdctl", [
      `--endpoints=${etcdUrl}`,
      `--cacert=${path.join(pki, "ca.crt")}`,
      ...(asServer
        ? [`--cert=${path.join(pki, "etcd-client.crt")}`, `--key=${path.join(pki, "etcd-client.key")}`]
        : []),
      "--command-timeout=5s",
      ...args,
    ]);
  const revision = async () =>
    String(
      (
        JSON.parse((await etcdctl(["endpoint", "status", "-w", "json"])).stdout) as {
          Status: { header: { revision: number } };
        }[]
      )[0]!.Status.header.revision,
    );

  /**
   * Records every write to the store from now on (a watch on every key under
   * "/", from the current revision) until `writes()`, which returns the keys
   * written other than the replica's own beat. It also checks the watch saw
   * every revision etcd counted (so no write outside "/" can hide).
   */
  async function storeWrites(): Promise<{ writes(): Promise<string[]> }> {
    const store = createStore([etcdUrl], { tls: etcdClientTls(server) });
    const start = BigInt((await store.list("/grove/cluster")).revision);
    const revisions = new Set<string>();
    const keys: string[] = [];
    const watch = await store.watch<unknown>("/", (start + 1n).toString(), {
      onEvent: (ev) => {
        revisions.add(ev.modRevision);
        keys.push(`${ev.type} ${ev.key}`);
      },
    });
    return {
      writes: async () => {
        try {
          const end = BigInt(await revision());
          // Up to `end`: the replica's beat may land after etcd was asked and reach the watch too.
          const seenUpToEnd = () => [...revisions].filter((r) => BigInt(r) <= end).length;
          await waitFor(
            `the watch to see revisions ${start + 1n}..${end}`,
            async () => seenUpToEnd() >= Number(end - start),
            10_000,
          );
          expect(seenUpToEnd()).toBe(Number(end - start));
          return keys.filter((k) => !REPLICA_BEAT.test(k.split(" ")[1]!));
        } finally {
          await watch.close();
          await store.close();
        }
      },
    };
  }

  beforeAll(async () => {
    dir = tempDir("grove-it-tls");
    server = await startServer({ dataDir: path.join(dir, "server") });
    pki = path.join(server.dataDir, "pki");
    const up = server.output.find((l) => l.includes('"embedded etcd is up"')) ?? "";
    etcdUrl = /"endpoints":\["([^"]+)"\]/.exec(up)?.[1] ?? "";
    expect(etcdUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // The server's own start-up writes done: elected, it publishes the leader record (leader/leader-record.ts).
    await waitFor(
      "the leader record",
      async () => (await etcdctl(["get", "/grove/leader", "--print-value-only"])).stdout.trim() !== "",
      30_000,
    );
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("made a CA at first start whose key only root reads, and serves HTTPS with it", async () => {
    expect(fs.statSync(path.join(pki, "ca.key")).mode & 0o777).toBe(0o600);
    expect(fs.statSync(pki).mode & 0o777).toBe(0o700);
    expect(server.url).toMatch(/^https:\/\//);
    expect(server.caHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The harness trusts the CA, so a plain fetch verifies the chain.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it("every route of the API answers 401 without a token and with a wrong one, and writes nothing", async () => {
    const openapi = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    // /version is public (front ends read it before signing in): checked below to say nothing but versions.
    const publicPaths = new Set(["/healthz", "/readyz", "/v1/join", "/version"]);
    const recording = await storeWrites();
    const calls: string[] = [];
    for (const [template, methods] of Object.entries(openapi.paths)) {
      if (publicPaths.has(template)) continue;
      const url = server.url + template.replace(/\{[^}]+\}/g, (m) => (m === "{namespace}" ? "default" : "x"));
      for (const method of Object.keys(methods).map((m) => m.toUpperCase())) {
        for (const authorization of [undefined, "Bearer not-the-token", "Basic YWRtaW46YWRtaW4="]) {
          const res = await fetch(url, {
            method,
            headers: {
              ...(authorization ? { authorization } : {}),
              ...(method === "GET" || method === "DELETE" ? {} : { "content-type": "application/json" }),
            },
            ...(method === "GET" || method === "DELETE" ? {} : { body: "{}" }),
          });
          expect({ call: `${method} ${template} ${authorization ?? "(none)"}`, status: res.status }).toEqual({
            call: `${method} ${template} ${authorization ?? "(none)"}`,
            status: 401,
          });
          calls.push(`${method} ${template}`);
        }
      }
    }
    // The enumeration reached the routes that matter (not an empty document).
    for (const must of ["POST /v1/join-tokens", "PUT /v1/namespaces/{namespace}/apps/{name}", "GET /v1/nodes"]) {
      expect(calls).toContain(must);
    }
    // The join endpoint is public, but a made-up token gets nothing.
    const join = await fetch(`${server.url}/v1/join`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: "abcdef.0123456789abcdef0123456789abcdef", nodeName: "x", csr: "-" }),
    });
    expect(join.status).toBe(401);
    // Liveness carries no data; /version only the versions.
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: "ok" });
    const version = (await (await fetch(`${server.url}/version`)).json()) as Record<string, unknown>;
    expect(Object.keys(version).sort()).toEqual(["apiVersion", "node", "version"]);
    expect(await recording.writes()).toEqual([]);
  });

  it("every gRPC method refuses a client without a node certificate of the cluster CA", async () => {
    const caPem = server.caPem;
    const other = createCa("another-ca");
    const badCredentials: Record<string, grpc.ChannelCredentials> = {
      plaintext: grpc.credentials.createInsecure(),
      "no client certificate": tlsCredentials(caPem),
      "a node certificate of another CA": tlsCredentials(
        caPem,
        issueKeyPair(other, {
          commonName: "n1",
          organization: NODE_ORGANIZATION,
          usage: "client",
          validForMs: 3_600_000,
        }),
      ),
      "an expired node certificate of the cluster CA": tlsCredentials(
        caPem,
        issueKeyPair(
          { certPem: caPem, keyPem: fs.readFileSync(path.join(pki, "ca.key"), "utf8") },
          { commonName: "n1", organization: NODE_ORGANIZATION, usage: "client", validForMs: -30_000 },
        ),
      ),
      // Signed by the cluster CA, but grove-server's own (etcd) certificate: not a node's.
      "a certificate that is no node's": tlsCredentials(caPem, {
        certPem: fs.readFileSync(path.join(pki, "etcd-client.crt"), "utf8"),
        keyPem: fs.readFileSync(path.join(pki, "etcd-client.key"), "utf8"),
      }),
    };
    const recording = await storeWrites();
    const methods = agentServiceMethods();
    expect(methods).toEqual(["Connect"]);
    for (const method of methods) {
      for (const [what, creds] of Object.entries(badCredentials)) {
        const stream = rawConnect(server.grpcAddress, creds);
        stream.send(registerMessage("intruder"));
        const end = await stream.ended;
        stream.close();
        expect({ method, what, code: end.code }).toEqual({
          method,
          what,
          code: what === "a certificate that is no node's" ? grpc.status.UNAUTHENTICATED : grpc.status.UNAVAILABLE,
        });
        expect(stream.received).toEqual([]);
      }
    }
    const client = new GroveClient({ server: server.url, token: server.adminToken });
    expect((await client.list("Node")).items).toEqual([]);
    expect(await recording.writes()).toEqual([]);
  });

  it("plaintext to the API and to etcd fails; etcdctl without grove-server's client certificate fails", async () => {
    const httpUrl = server.url.replace(/^https:/, "http:");
    await expect(fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
    const plainEtcd = await fetch(`${etcdUrl.replace(/^https:/, "http:")}/health`, {
      signal: AbortSignal.timeout(5_000),
    }).then(
      async (r) => `${r.status} ${await r.text()}`,
      (err: unknown) => String(err),
    );
    expect(plainEtcd).not.toMatch(/"health":"true"/);
    // Without a client certificate, even trusting the CA: refused.
    await expect(etcdctl(["get", "/grove/", "--prefix", "--keys-only"], false)).rejects.toThrow();
    // The positive control: grove-server's certificate reads the store.
    expect((await etcdctl(["get", "/grove/", "--prefix", "--keys-only"])).stdout).toContain("/grove/");
  });

  it("an agent given the wrong CA hash refuses the server and spends no token; the right hash joins", async () => {
    // A server of its own: the node this test registers, and what the server writes after the
    // agent stops, must not reach the server the other tests check for no writes (in any order).
    const own = await startServer({ dataDir: path.join(dir, "server-pinned") });
    let agent: Started | undefined;
    try {
      fs.mkdirSync(path.join(dir, "rootfs"), { recursive: true });
      const opts = {
        server: own,
        nodeName: "pinned",
        stateDir: path.join(dir, "agent"),
        rootfsDir: path.join(dir, "rootfs"),
        cgroupParent: CGROUP_PARENT,
      };
      const wrong = `sha256:${"0".repeat(64)}`;
      await expect(startAgent({ ...opts, extraArgs: ["--ca-hash", wrong] })).rejects.toThrow(
        new RegExp(`does not present a CA with hash ${wrong}`),
      );
      expect(fs.existsSync(path.join(dir, "agent", "pki", "node.crt"))).toBe(false);
      agent = await startAgent(opts);
      await waitNodeReady(new GroveClient({ server: own.url, token: own.adminToken }), "pinned");
      expect(fs.statSync(path.join(dir, "agent", "pki", "node.key")).mode & 0o777).toBe(0o600);
    } finally {
      await agent?.stop();
      await own.stop();
    }
  });
});
