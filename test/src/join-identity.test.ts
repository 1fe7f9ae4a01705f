// Issue 15, joining and node identity (NodeRestriction). Join tokens are
// single-use, expire, and yield a certificate only for their node's name; a
// node's certificate is its identity on the agents' stream: agent A cannot
// register as B, report B's instances, claim reserved labels or absurd
// capacity, register twice on one stream, or see B's instances, and B's keys
// keep their revisions. Deleting a node revokes its certificate.
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { GroveClient, type App } from "@grove/api";
import { createJoinToken, waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { joinOverApi, rawConnect, registerMessage, tlsCredentials } from "./harness/raw-agent";
import type { KeyPair } from "@grove/control-plane";
import { RUN_TAG } from "./harness/run-id";

const CGROUP_PARENT = `grove-it-join-${RUN_TAG}`;

describe("join tokens and node identity", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agentB: Started;
  let client: GroveClient;

  /** Joins `node` with a fresh token bound to it: its key and certificate. */
  async function joinAs(node: string): Promise<KeyPair> {
    const joined = await joinOverApi(server.url, server.caPem, await createJoinToken(server, node), node);
    expect(joined.status).toBe(200);
    return joined.pair!;
  }

  beforeAll(async () => {
    m = await startMachine("grove-it-join");
    ({ dir, server } = m);
    client = m.client;
    agentB = await m.startAgent({
      nodeName: "node-b",
      stateDir: path.join(dir, "agent-b"),
      cgroupParent: CGROUP_PARENT,
    });
    await waitNodeReady(client, "node-b", 90_000);
    const app: App = {
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "b-app", namespace: "default" },
      spec: {
        rootfs: "busybox",
        command: ["/bin/sh", "-c", "while true; do sleep 5; done"],
        instances: 1,
        resources: { cpu: "100m", memory: "32Mi", pids: 32 },
        // The shell as PID 1 ignores SIGTERM: do not hold the agent's stop for the default grace.
        stopGracePeriodSeconds: 1,
      },
    } as App;
    await client.apply(app);
    await waitFor(
      "b-app-0 Running on node-b",
      async () => {
        const i = await client.get("Instance", "b-app-0", "default").catch(() => undefined);
        return i?.status?.state === "Running" && i.spec.nodeName === "node-b";
      },
      120_000,
    );
    // A shared machine: server, agent and container start may take minutes.
  }, 360_000);

  afterAll(async () => {
    await agentB?.stop();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a token joins once: the second use is refused; the certificate names the token's node", async () => {
    const token = await createJoinToken(server, "node-a");
    const first = await joinOverApi(server.url, server.caPem, token, "node-a");
    expect(first.status).toBe(200);
    const nodeA = first.pair!;
    const cert = new X509Certificate(nodeA.certPem);
    expect(cert.subject).toBe("CN=node-a\nO=grove:nodes");
    expect(cert.verify(new X509Certificate(server.caPem).publicKey)).toBe(true);
    const second = await joinOverApi(server.url, server.caPem, token, "node-a");
    expect(second.status).toBe(401);
  });

  it("a token is refused after its TTL, and for any other node name than its own", async () => {
    const short = await createJoinToken(server, "node-late", "1s");
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await joinOverApi(server.url, server.caPem, short, "node-late")).status).toBe(401);

    const bound = await createJoinToken(server, "node-c");
    expect((await joinOverApi(server.url, server.caPem, bound, "node-b")).status).toBe(401);
    // A token for no particular node cannot take over one that joined.
    const { token: any } = await client.createJoinToken({ ttl: "5m" });
    expect((await joinOverApi(server.url, server.caPem, any, "node-b")).status).toBe(409);
  });

  it("agent A cannot act for B, claim reserved labels or absurd capacity, or register twice", async () => {
    const nodeA = await joinAs("node-a");
    const creds = tlsCredentials(server.caPem, nodeA);
    const nodeBefore = (await client.get("Node", "node-b")).metadata.resourceVersion;
    const instBefore = await client.get("Instance", "b-app-0", "default");

    const refused = async (msg: ReturnType<typeof registerMessage>) => {
      const s = rawConnect(server.grpcAddress, creds);
      s.send(msg);
      const end = await s.ended;
      s.close();
      return { code: end.code, received: s.received.length };
    };
    expect(await refused(registerMessage("node-b"))).toEqual({ code: grpc.status.PERMISSION_DENIED, received: 0 });
    expect(await refused(registerMessage("node-a", { "grove.io/app": "b-app" }))).toEqual({
      code: grpc.status.PERMISSION_DENIED,
      received: 0,
    });
    const absurd = registerMessage("node-a");
    absurd.register!.node!.allocatable = { cpuMillis: "999999999999", memoryBytes: "1", pids: "1" };
    expect((await refused(absurd)).code).toBe(grpc.status.INVALID_ARGUMENT);

    // As itself: registered, sent a desired set without B's instances.
    const s = rawConnect(server.grpcAddress, creds);
    s.send(registerMessage("node-a"));
    await waitFor("node-a's desired set", async () => s.received.some((m) => m.desired));
    expect(s.received.find((m) => m.registered)?.registered?.nodeName).toBe("node-a");
    for (const m of s.received) expect(m.desired?.instances ?? []).toEqual([]);
    // Reports B's instance as failed: not recorded.
    s.send({
      status: {
        uid: instBefore.metadata.uid!,
        namespace: "default",
        name: "b-app-0",
        state: "FAILED",
        exitCode: 1,
        reason: "Error",
        message: "reported by node-a",
      },
    });
    // Registers again on the same stream, as B: refused, the stream ends.
    s.send(registerMessage("node-b"));
    const end = await s.ended;
    s.close();
    expect(end.code).toBe(grpc.status.FAILED_PRECONDITION);

    const instAfter = await client.get("Instance", "b-app-0", "default");
    expect(instAfter.status?.state).toBe("Running");
    expect(instAfter.metadata.resourceVersion).toBe(instBefore.metadata.resourceVersion);
    expect((await client.get("Node", "node-b")).metadata.resourceVersion).toBe(nodeBefore);
    expect((await client.get("Node", "node-a")).metadata.labels ?? {}).toEqual({});
  });

  it("deleting a node revokes its certificate", async () => {
    // A node of this test's own (no other test deletes or joins it), registered with its certificate.
    const nodeR = await joinAs("node-r");
    const s = rawConnect(server.grpcAddress, tlsCredentials(server.caPem, nodeR));
    s.send(registerMessage("node-r"));
    await waitFor("node-r's desired set", async () => s.received.some((m) => m.desired));
    s.close();
    expect(s.received.find((m) => m.registered)?.registered?.nodeName).toBe("node-r");
    await client.delete("Node", "node-r");
    const code = await waitFor(
      "node-r's certificate to be refused",
      async () => {
        const s = rawConnect(server.grpcAddress, tlsCredentials(server.caPem, nodeR));
        s.send(registerMessage("node-r"));
        const end = await s.ended;
        s.close();
        return end.code === grpc.status.UNAUTHENTICATED ? end.code : undefined;
      },
      15_000,
    );
    expect(code).toBe(grpc.status.UNAUTHENTICATED);
  });
});
