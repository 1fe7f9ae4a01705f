// ReplicaStreams and the peer stream route: a replica without the node's
// stream relays the sub-stream through the replica holding it (a real
// fastify server with the route, on 127.0.0.1), output, credit, input, end
// and errors included.
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { GroveError } from "@grove/api";
import type { ControlMessage } from "@grove/proto";
import { buildHttpServer } from "../http/server";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { SubStreamMux, type SubStreamHandlers, type SubStreamRequest } from "../grpc/sub-streams";
import { PeerTransport } from "./peer-transport";
import { ReplicaStreams, type StreamHolder } from "./replica-streams";

// As in logs-exec-stats-routes.test.ts: swagger-ui's ESM dependency, which jest does not transform.
jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "cluster-token";

/** The holder's agent: a SubStreamMux whose ControlMessages land in `sent`. */
class FakeHolder implements StreamHolder {
  readonly sent: ControlMessage[] = [];
  readonly mux = new SubStreamMux("n1", (m) => this.onControl(m));
  connected = true;
  onOpen: (id: number, req: SubStreamRequest) => void = () => undefined;

  private onControl(m: ControlMessage): void {
    this.sent.push(m);
    const open = m.streamOpen;
    if (open) setImmediate(() => this.onOpen(open.streamId ?? 0, open as SubStreamRequest));
  }

  holds(): boolean {
    return this.connected;
  }

  async holderOf(): Promise<string | undefined> {
    return undefined;
  }

  async openStream(node: string, req: SubStreamRequest, h: SubStreamHandlers) {
    if (!this.connected) throw new GroveError("NodeUnavailable", `the agent of node ${node} is not connected`);
    return this.mux.open(req, h);
  }

  output(id: number, fd: number, data: string): void {
    this.mux.route({ streamOutput: { streamId: id, fd, data: Buffer.from(data) } } as never);
  }

  end(id: number, end: Record<string, unknown> = {}): void {
    this.mux.route({
      streamEnd: { streamId: id, exitCode: 0, signal: 0, errorCode: "", error: "", stats: [], ...end },
    } as never);
  }
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Handlers that record what the first replica's route would see. */
function recorder() {
  const got = {
    out: [] as string[],
    end: undefined as undefined | { exitCode: number },
    broken: undefined as GroveError | undefined,
  };
  const handlers: SubStreamHandlers = {
    onOutput: (fd, data) => got.out.push(`${fd}:${data.toString()}`),
    onEnd: (end) => (got.end = end),
    onBroken: (err) => (got.broken = err),
  };
  return { got, handlers };
}

describe("ReplicaStreams through the holding replica", () => {
  let holderServer: FastifyInstance;
  let holderUrl: string;
  let holder: FakeHolder;
  let streams: ReplicaStreams;
  /** The first replica holds no stream; the presence key names `holderAt`. */
  let holderAt: string | undefined;

  // One server for the file (building one takes seconds); each test gets a fresh agent behind it.
  beforeAll(async () => {
    const store = new MemoryStore();
    holderServer = await buildHttpServer({
      repo: new Repository(store),
      store,
      adminToken: TOKEN,
      peerStreams: { openStream: (node, req, h) => holder.openStream(node, req, h) },
    });
    await holderServer.listen({ host: "127.0.0.1", port: 0 });
    const addr = holderServer.server.address();
    holderUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  });

  beforeEach(() => {
    holder = new FakeHolder();
    holderAt = holderUrl;
    const here: StreamHolder = {
      holds: () => false,
      holderOf: async () => holderAt,
      openStream: async (node) => {
        throw new GroveError("NodeUnavailable", `the agent of node ${node} is not connected`);
      },
    };
    streams = new ReplicaStreams(
      here,
      new PeerTransport({ token: TOKEN, self: "http://first" }),
      pino({ level: "silent" }),
    );
  });

  afterAll(async () => {
    const closing = holderServer.close();
    holderServer.server.closeAllConnections();
    await closing;
  });

  it("relays output and end, and passes credit, stdin and resize on to the holder's agent", async () => {
    let id = 0;
    holder.onOpen = (i) => {
      id = i;
      holder.output(i, 0, "");
      holder.output(i, 1, "out\n");
      holder.output(i, 2, "err\n");
    };
    const { got, handlers } = recorder();
    const sub = await streams.openStream(
      "n1",
      { kind: "EXEC", instanceUid: "u1", exec: { command: ["sh"] } as never },
      handlers,
    );
    await waitFor(() => got.out.length === 3, "three output chunks");
    expect(got.out).toEqual(["0:", "1:out\n", "2:err\n"]);
    expect(holder.sent[0]?.streamOpen).toMatchObject({ kind: "EXEC", instanceUid: "u1", exec: { command: ["sh"] } });

    sub.credit(4);
    sub.input({ stdin: Buffer.from("echo hi\n") });
    sub.input({ cols: 80, rows: 24 });
    sub.input({ closeStdin: true });
    await waitFor(() => holder.sent.length >= 5, "credit and input at the holder");
    expect(holder.sent.slice(1)).toEqual([
      { streamCredit: { streamId: id, bytes: 4 } },
      { streamInput: { streamId: id, stdin: Buffer.from("echo hi\n") } },
      { streamInput: { streamId: id, cols: 80, rows: 24 } },
      { streamInput: { streamId: id, closeStdin: true } },
    ]);

    holder.end(id, { exitCode: 3 });
    await waitFor(() => got.end !== undefined, "the end");
    expect(got.end).toMatchObject({ exitCode: 3 });
    expect(got.broken).toBeUndefined();
  });

  it("asks stats of the holder's agent", async () => {
    holder.onOpen = (i) =>
      holder.end(i, { stats: [{ uid: "u1", namespace: "default", name: "web-0", cpuUsageNs: "5", memoryBytes: "7" }] });
    expect(await streams.stats("n1", "u1")).toEqual([expect.objectContaining({ uid: "u1", cpuUsageNs: "5" })]);
    expect(holder.sent[0]?.streamOpen).toMatchObject({ kind: "STATS", instanceUid: "u1" });
  });

  it("cancelling on this replica cancels at the holder", async () => {
    let id = 0;
    holder.onOpen = (i) => {
      id = i;
      holder.output(i, 0, "");
    };
    const { got, handlers } = recorder();
    const sub = await streams.openStream("n1", { kind: "LOGS", instanceUid: "u1" }, handlers);
    await waitFor(() => got.out.length === 1, "the start");
    sub.cancel();
    await waitFor(() => holder.sent.some((m) => m.streamCancel?.streamId === id), "the cancel at the holder");
  });

  it("breaks with the holder's NodeUnavailable when the agent left it", async () => {
    holder.connected = false;
    const { got, handlers } = recorder();
    await streams.openStream("n1", { kind: "LOGS", instanceUid: "u1" }, handlers);
    await waitFor(() => got.broken !== undefined, "the break");
    expect(got.broken).toMatchObject({ code: "NodeUnavailable", message: "the agent of node n1 is not connected" });
  });

  it("answers NodeUnavailable naming the holder when it cannot be reached or refuses the token", async () => {
    const { handlers } = recorder();
    holderAt = "http://127.0.0.1:1";
    await expect(streams.openStream("n1", { kind: "LOGS", instanceUid: "u1" }, handlers)).rejects.toMatchObject({
      code: "NodeUnavailable",
      message: expect.stringContaining("connected to grove-server replica http://127.0.0.1:1, which cannot be reached"),
    });
    holderAt = holderUrl;
    const wrong = new ReplicaStreams(
      { holds: () => false, holderOf: async () => holderUrl, openStream: async () => Promise.reject(new Error("no")) },
      new PeerTransport({ token: "not-the-token", self: "http://first" }),
      pino({ level: "silent" }),
    );
    await expect(wrong.openStream("n1", { kind: "LOGS", instanceUid: "u1" }, handlers)).rejects.toMatchObject({
      code: "NodeUnavailable",
      message: expect.stringContaining("HTTP 401"),
    });
    expect(holder.sent).toEqual([]);
  });

  it("uses the local stream when this replica holds it, and says so when no replica does", async () => {
    const local = new FakeHolder();
    local.onOpen = (i) => local.end(i);
    const here = new ReplicaStreams(local, new PeerTransport({ token: TOKEN, self: "x" }), pino({ level: "silent" }));
    const { got, handlers } = recorder();
    await here.openStream("n1", { kind: "LOGS", instanceUid: "u1" }, handlers);
    await waitFor(() => got.end !== undefined, "the local end");
    holderAt = undefined;
    await expect(streams.openStream("n1", { kind: "LOGS", instanceUid: "u1" }, handlers)).rejects.toMatchObject({
      code: "NodeUnavailable",
      message: "the agent of node n1 is not connected",
    });
  });
});
