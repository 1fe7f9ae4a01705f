import * as grpc from "@grpc/grpc-js";
import {
  AGENT_TOKEN_METADATA,
  loadGroveProto,
  type AgentMessage__Output,
  type ControlMessage,
  type DesiredInstances__Output,
  type InstanceStatus,
  type NodeInfo,
} from "@grove/proto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Reconciler } from "../reconcile/reconciler";
import { FakeRuntime } from "../runtime";
import { SubStreamServer } from "../streams/sub-streams";
import { ControlPlaneConnection, type DesiredStateSink } from "./client";
import { DesiredStateGuard } from "./desired-state-guard";

type ServerStream = grpc.ServerDuplexStream<AgentMessage__Output, ControlMessage>;

/** One Connect stream as the test's control plane saw it. */
interface SeenStream {
  token: string | undefined;
  messages: AgentMessage__Output[];
  call: ServerStream;
  closed: boolean;
}

// A real grpc-js server on 127.0.0.1, port 0, playing the control plane.
class TestControlPlane {
  readonly streams: SeenStream[] = [];
  /** What to do when a stream's Register arrives. */
  onRegister: (s: SeenStream) => void = (s) =>
    s.call.write({ registered: { nodeName: "n1", heartbeatIntervalMs: 40 } });
  private readonly server = new grpc.Server();
  port = 0;

  async listen(port = 0): Promise<void> {
    const proto = loadGroveProto();
    this.server.addService(proto.grove.v1.AgentService.service, {
      Connect: (call: ServerStream) => {
        const token = call.metadata.get(AGENT_TOKEN_METADATA)[0];
        const seen: SeenStream = {
          token: token === undefined ? undefined : String(token),
          messages: [],
          call,
          closed: false,
        };
        this.streams.push(seen);
        call.on("data", (m: AgentMessage__Output) => {
          seen.messages.push(m);
          if (m.register && seen.messages.length === 1) this.onRegister(seen);
        });
        call.on("error", () => (seen.closed = true));
        call.on("end", () => {
          seen.closed = true;
          call.end();
        });
        call.on("cancelled", () => (seen.closed = true));
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
  }

  close(): Promise<void> {
    this.server.forceShutdown();
    return Promise.resolve();
  }
}

class RecordingSink implements DesiredStateSink {
  readonly received: DesiredInstances__Output[] = [];
  current: InstanceStatus[] = [];
  setDesired(desired: DesiredInstances__Output): void {
    this.received.push(desired);
  }
  statuses(): InstanceStatus[] {
    return this.current.map((s) => ({ ...s }));
  }
}

const node: NodeInfo = {
  name: "n1",
  capacity: { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30, pids: 4_194_304 },
  allocatable: { cpuMillis: 3900, memoryBytes: 8 * 2 ** 30 - 256 * 2 ** 20, pids: 4_194_304 },
  labels: { zone: "a" },
  addresses: ["10.0.0.5"],
  agentVersion: "0.1.0",
  os: "linux",
  kernel: "6.1.0",
  cgroupMode: "v2",
};

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("ControlPlaneConnection", () => {
  let server: TestControlPlane;
  let sink: RecordingSink;
  let connection: ControlPlaneConnection | undefined;

  beforeEach(async () => {
    server = new TestControlPlane();
    await server.listen();
    sink = new RecordingSink();
  });

  afterEach(async () => {
    connection?.stop();
    connection = undefined;
    await server.close();
  });

  function connect(): ControlPlaneConnection {
    connection = new ControlPlaneConnection({
      address: `127.0.0.1:${server.port}`,
      token: "s3cret",
      nodeInfo: () => node,
      reconciler: sink,
      reconnectInitialDelayMs: 20,
      reconnectMaxDelayMs: 100,
    });
    connection.start();
    return connection;
  }

  it("with several addresses, skips one that refuses and moves on when its replica goes away", async () => {
    // A port nothing listens on: a replica that is down.
    const dead = new TestControlPlane();
    await dead.listen();
    const deadPort = dead.port;
    await dead.close();
    const other = new TestControlPlane();
    await other.listen();
    try {
      connection = new ControlPlaneConnection({
        address: `127.0.0.1:${deadPort}`,
        addresses: [`127.0.0.1:${deadPort}`, `127.0.0.1:${server.port}`, `127.0.0.1:${other.port}`],
        token: "s3cret",
        nodeInfo: () => node,
        reconciler: sink,
        // A whole round of failures waits this long: the next address is tried well before.
        reconnectInitialDelayMs: 2_000,
        reconnectMaxDelayMs: 2_000,
      });
      const conn = connection;
      const started = performance.now();
      conn.start();
      await waitFor("registered with the second address", () => conn.registered && server.streams[0]);
      expect(conn.address).toBe(`127.0.0.1:${server.port}`);
      expect(performance.now() - started).toBeLessThan(1_500);

      // That replica goes away: the agent is on the third within the round, not after the backoff.
      const lost = performance.now();
      await server.close();
      await waitFor("registered with the third address", () => conn.registered && other.streams[0], 1_800);
      expect(conn.address).toBe(`127.0.0.1:${other.port}`);
      expect(performance.now() - lost).toBeLessThan(1_500);
      expect(other.streams[0]?.messages[0]?.msg).toBe("register");
    } finally {
      await other.close();
    }
  });

  it("sends Register first, with the token, node facts and the reconciler's statuses", async () => {
    sink.current = [{ uid: "u1", namespace: "default", name: "web-0", state: "RUNNING", pid: 42, startedAtMs: 1000 }];
    const conn = connect();
    const stream = await waitFor("a stream", () => server.streams[0]);
    await waitFor("a message", () => stream.messages.length > 0);

    expect(stream.token).toBe("s3cret");
    const first = stream.messages[0];
    expect(first?.msg).toBe("register");
    expect(first?.register?.node).toMatchObject({
      name: "n1",
      capacity: { cpuMillis: "4000", memoryBytes: String(8 * 2 ** 30), pids: "4194304" },
      labels: { zone: "a" },
      addresses: ["10.0.0.5"],
      kernel: "6.1.0",
      cgroupMode: "v2",
    });
    expect(first?.register?.instances).toEqual([
      expect.objectContaining({ uid: "u1", state: "RUNNING", pid: 42, startedAtMs: "1000" }),
    ]);
    await waitFor("registered", () => conn.registered);
  });

  it("serves sub-streams within the credit window while heartbeats go on, and cancels them when the stream ends", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-client-streams-"));
    try {
      fs.writeFileSync(path.join(dir, "u1.log"), "x".repeat(1024 * 1024));
      const streams = new SubStreamServer({
        runtime: new FakeRuntime(),
        logDir: dir,
        instances: () => [{ uid: "u1", namespace: "default", name: "web-0", state: "RUNNING" }],
        followPollMs: 20,
      });
      server.onRegister = (st) => {
        st.call.write({ registered: { nodeName: "n1", heartbeatIntervalMs: 30 } });
        st.call.write({
          streamOpen: {
            streamId: 1,
            kind: "LOGS",
            instanceUid: "u1",
            logs: { follow: true, tailLines: -1 },
            window: 65536,
          },
        });
      };
      connection = new ControlPlaneConnection({
        address: `127.0.0.1:${server.port}`,
        token: "s3cret",
        nodeInfo: () => node,
        reconciler: sink,
        streams,
      });
      connection.start();
      const stream = await waitFor("a stream", () => server.streams[0]);
      const bytes = () =>
        stream.messages.reduce((t, m) => t + (m.streamOutput?.streamId === 1 ? m.streamOutput.data.length : 0), 0);
      await waitFor("the window's worth", () => bytes() === 65536);
      const beats = stream.messages.filter((m) => m.heartbeat).length;
      await waitFor(
        "heartbeats while the sub-stream waits for credit",
        () => stream.messages.filter((m) => m.heartbeat).length >= beats + 3,
      );
      expect(bytes()).toBe(65536);
      for (const m of stream.messages) expect(m.streamOutput?.data.length ?? 0).toBeLessThanOrEqual(32 * 1024);
      stream.call.write({ streamCredit: { streamId: 1, bytes: 1024 * 1024 } });
      await waitFor("the rest of the log", () => bytes() === 1024 * 1024);
      expect(streams.openStreams).toBe(1);
      stream.call.end();
      await waitFor("the follow to be cancelled", () => streams.openStreams === 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("heartbeats at the interval Registered names and forwards status reports", async () => {
    const conn = connect();
    const stream = await waitFor("a stream", () => server.streams[0]);
    await waitFor("registered", () => conn.registered);
    conn.reportStatus({ uid: "u1", state: "EXITED", exitCode: 0, reason: "Completed" });
    await waitFor("two heartbeats", () => stream.messages.filter((m) => m.heartbeat).length >= 2);

    const status = stream.messages.find((m) => m.status)?.status;
    expect(status).toMatchObject({ uid: "u1", state: "EXITED", reason: "Completed" });
    expect(Number(stream.messages.find((m) => m.heartbeat)?.heartbeat?.sentAtMs)).toBeGreaterThan(0);
  });

  it("feeds every DesiredInstances to the reconciler", async () => {
    server.onRegister = (s) => {
      s.call.write({ registered: { nodeName: "n1", heartbeatIntervalMs: 1000 } });
      s.call.write({
        desired: { revision: 7, instances: [{ uid: "u1", name: "web-0", rootfs: "busybox", command: ["sleep", "1"] }] },
      });
      s.call.write({ desired: { revision: 8, instances: [] } });
    };
    connect();
    await waitFor("two desired sets", () => sink.received.length === 2);

    expect(sink.received[0]).toMatchObject({
      revision: "7",
      instances: [{ uid: "u1", name: "web-0", rootfs: "busybox", command: ["sleep", "1"] }],
    });
    expect(sink.received[1]).toEqual({ revision: "8", clusterId: "", instances: [], keepLogs: [] });
  });

  it("with a guard, refuses a set of another cluster or an older revision, keeps the last one and reports why", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-guard-"));
    try {
      const guard = new DesiredStateGuard({ stateDir: dir });
      const set = (clusterId: string, revision: number, uid: string) => ({
        desired: { clusterId, revision, instances: [{ uid, name: uid, rootfs: "busybox", command: ["sleep", "1"] }] },
      });
      server.onRegister = (s) => {
        s.call.write({ registered: { nodeName: "n1", heartbeatIntervalMs: 1000 } });
        s.call.write(set("c-1", 10, "a"));
        s.call.write(set("c-2", 50, "b")); // another cluster: refused
        s.call.write(set("c-1", 9, "c")); // older: refused
        s.call.write(set("c-1", 11, "d"));
      };
      connection = new ControlPlaneConnection({
        address: `127.0.0.1:${server.port}`,
        token: "s3cret",
        nodeInfo: () => node,
        reconciler: sink,
        guard,
      });
      connection.start();
      const stream = await waitFor("a stream", () => server.streams[0]);
      await waitFor("two applied sets", () => sink.received.length === 2);
      await waitFor("condition reports", () => stream.messages.filter((m) => m.condition).length >= 3);
      expect(sink.received.map((d) => d.instances[0]?.uid)).toEqual(["a", "d"]);
      // Register carried the condition as it was; then True on the first refusal, False once a set applied again.
      expect(stream.messages[0]?.register?.conditions).toEqual([
        expect.objectContaining({ type: "DesiredStateRefused", status: "False" }),
      ]);
      expect(stream.messages.filter((m) => m.condition).map((m) => [m.condition?.status, m.condition?.reason])).toEqual(
        [
          ["True", "OtherCluster"],
          ["True", "StaleRevision"],
          ["False", "Applied"],
        ],
      );
      expect(guard.state).toEqual({ clusterId: "c-1", revision: "11" });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("measures time without contact from the last heartbeat answer, on the monotonic clock", async () => {
    let now = 0;
    let ack = true;
    server.onRegister = (s) => {
      s.call.write({ registered: { nodeName: "n1", heartbeatIntervalMs: 30 } });
      s.call.on("data", (m: AgentMessage__Output) => {
        if (m.heartbeat && ack) s.call.write({ heartbeatAck: { sentAtMs: m.heartbeat.sentAtMs } });
      });
    };
    connection = new ControlPlaneConnection({
      address: `127.0.0.1:${server.port}`,
      token: "s3cret",
      nodeInfo: () => node,
      reconciler: sink,
      monotonicNow: () => now,
    });
    connection.start();
    const stream = await waitFor("a stream", () => server.streams[0]);
    await waitFor("an answered heartbeat", () => stream.messages.some((m) => m.heartbeat));
    await new Promise((r) => setTimeout(r, 100));
    expect(connection.withoutContactMs()).toBe(0);
    // The answers stop; the agent's clock moves on.
    ack = false;
    await new Promise((r) => setTimeout(r, 100));
    now += 5_000;
    // 5 s since the last answer, one 30 ms interval of which is the normal gap.
    expect(connection.withoutContactMs()).toBe(4_970);
  });

  it("counts time without contact from Registered when no heartbeat was answered yet (a cut right after registering)", async () => {
    let now = 0;
    server.onRegister = (s) => {
      s.call.write({ registered: { nodeName: "n1", heartbeatIntervalMs: 30 } });
      // Then nothing: the link went away before the first heartbeat's answer; the stream stays open.
    };
    connection = new ControlPlaneConnection({
      address: `127.0.0.1:${server.port}`,
      token: "s3cret",
      nodeInfo: () => node,
      reconciler: sink,
      monotonicNow: () => now,
    });
    connection.start();
    await waitFor("registered", () => connection!.registered);
    now += 5_000;
    // Before: 0 for as long as the stream stayed open, so spec.disconnect.stopAfter waited for its teardown.
    expect(connection.withoutContactMs()).toBe(4_970);
  });

  it("reconnects after the control plane ends the stream and registers again with current statuses", async () => {
    const conn = connect();
    const first = await waitFor("a stream", () => server.streams[0]);
    await waitFor("registered", () => conn.registered);
    expect(first.messages[0]?.register?.instances).toEqual([]);

    // The control plane goes away; a status produced meanwhile is not lost.
    first.call.end();
    await waitFor("the agent to notice", () => !conn.registered);
    conn.reportStatus({ uid: "u9", state: "FAILED", reason: "Error" });
    sink.current = [{ uid: "u9", state: "FAILED", reason: "Error", exitCode: 2 }];

    const second = await waitFor("a second stream", () => server.streams[1]);
    await waitFor("its Register", () => second.messages.length > 0);
    expect(second.messages[0]?.msg).toBe("register");
    expect(second.messages[0]?.register?.instances).toEqual([
      expect.objectContaining({ uid: "u9", state: "FAILED", reason: "Error", exitCode: 2 }),
    ]);
    expect(second.token).toBe("s3cret");
    await waitFor("registered again", () => conn.registered);
  });

  it("keeps retrying while the control plane is unreachable and registers once it is back", async () => {
    const port = server.port;
    await server.close();
    const conn = connect();
    await new Promise((r) => setTimeout(r, 300));
    expect(conn.registered).toBe(false);

    server = new TestControlPlane();
    await server.listen(port);
    await waitFor("registered", () => conn.registered);
    expect(server.streams.at(-1)?.messages[0]?.msg).toBe("register");
  });
});

describe("ControlPlaneConnection with the Reconciler and FakeRuntime", () => {
  let server: TestControlPlane;
  let stateDir: string;
  let runtime: FakeRuntime;
  let reconciler: Reconciler;
  let connection: ControlPlaneConnection;

  beforeEach(async () => {
    server = new TestControlPlane();
    await server.listen();
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-agent-e2e-"));
    runtime = new FakeRuntime();
    reconciler = new Reconciler({
      runtime,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      resyncIntervalMs: 0,
      onStatus: (s) => connection.reportStatus(s),
    });
    connection = new ControlPlaneConnection({
      address: `127.0.0.1:${server.port}`,
      token: "s3cret",
      nodeInfo: () => ({ ...node, cgroupMode: runtime.cgroupMode }),
      reconciler,
      reconnectInitialDelayMs: 20,
      reconnectMaxDelayMs: 100,
    });
    await reconciler.start();
  });

  afterEach(async () => {
    connection.stop();
    reconciler.close();
    await server.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  const statusesOn = (s: SeenStream) => s.messages.flatMap((m) => (m.status ? [m.status] : []));

  it("runs what the control plane sends, reports it, and re-registers a finished instance after a reconnect", async () => {
    server.onRegister = (s) => {
      s.call.write({ registered: { nodeName: "n1", heartbeatIntervalMs: 1000 } });
      s.call.write({
        desired: {
          revision: 3,
          instances: [
            {
              uid: "u1",
              namespace: "default",
              name: "web-0",
              rootfs: "busybox",
              command: ["/bin/httpd", "-f"],
              env: { PORT: "8080" },
              workingDir: "/",
              resources: { cpuMillis: 100, memoryBytes: 64 * 2 ** 20, pids: 32 },
              stopGraceSeconds: 1,
            },
          ],
        },
      });
    };
    connection.start();
    const first = await waitFor("a stream", () => server.streams[0]);
    await waitFor("RUNNING", () => statusesOn(first).some((st) => st.state === "RUNNING"));
    expect(statusesOn(first).map((st) => st.state)).toEqual(["STARTING", "RUNNING"]);
    expect(runtime.get("u1")?.spec).toMatchObject({ rootfs: "/var/lib/grove/rootfs/busybox", hostname: "web-0" });

    // The stream drops, then the container is OOM-killed while disconnected.
    first.call.end();
    await waitFor("disconnect", () => !connection.registered);
    runtime.oom("u1");

    const second = await waitFor("a second stream", () => server.streams[1]);
    await waitFor("its Register", () => second.messages[0]);
    expect(second.messages[0]?.register?.instances).toEqual([
      expect.objectContaining({ uid: "u1", state: "OOM_KILLED", reason: "OOMKilled", signal: 9 }),
    ]);
    // Still desired, never restarted.
    await reconciler.idle();
    expect(runtime.calls.filter((c) => c.op === "start")).toHaveLength(1);
  });
});
