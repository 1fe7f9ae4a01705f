import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { FastifyInstance } from "fastify";
import WebSocket from "ws";
import {
  API_VERSION,
  EXEC_SUBPROTOCOL,
  EXEC_TOKEN_PROTOCOL_PREFIX,
  ExecChannel,
  execFrame,
  GroveClient,
  GroveError,
  type Instance,
} from "@grove/api";
import type { ControlMessage } from "@grove/proto";
import { AuditLog, type AuditRecord } from "../auth/audit";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { SubStreamMux, type SubStreamHandlers, type SubStreamRequest } from "../grpc/sub-streams";
import type { AgentStreams } from "./logs-exec-stats-routes";
import { buildHttpServer } from "./server";

jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

// Building the server (swagger and all) takes seconds on a loaded machine, and a test here makes
// many round trips; the time bounds that matter are the close()s' own (closeTook), not jest's 5 s.
jest.setTimeout(30_000);

const TOKEN = "ops-token";

function instance(name: string, state: "Running" | "Pending", nodeName?: string): Instance {
  return {
    apiVersion: API_VERSION,
    kind: "Instance",
    metadata: { name, namespace: "default" },
    spec: {
      app: "hello",
      appUid: "u",
      index: 0,
      rootfs: "busybox",
      command: ["true"],
      resources: { cpuMillis: 100, memoryBytes: 1024, pids: 10 },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 10,
      restarts: 0,
      ...(nodeName ? { nodeName } : {}),
    },
    status: { state, ...(nodeName ? { nodeName } : {}) },
  };
}

/**
 * A stand-in for the agent end: a SubStreamMux whose ControlMessages land in
 * `sent`, and a script that answers each StreamOpen.
 */
class FakeAgent implements AgentStreams {
  readonly sent: ControlMessage[] = [];
  mux = new SubStreamMux("n1", (m) => this.onControl(m));
  connected = true;
  onOpen: (id: number, req: SubStreamRequest) => void = () => undefined;

  /** A new Connect stream. */
  reset(): void {
    this.mux = new SubStreamMux("n1", (m) => this.onControl(m));
  }

  private onControl(m: ControlMessage): void {
    this.sent.push(m);
    const open = m.streamOpen;
    if (open) setImmediate(() => this.onOpen(open.streamId ?? 0, open as SubStreamRequest));
  }

  output(id: number, fd: number, data: string): void {
    this.mux.route({ streamOutput: { streamId: id, fd, data: Buffer.from(data) } } as never);
  }

  end(id: number, end: Record<string, unknown> = {}): void {
    this.mux.route({
      streamEnd: { streamId: id, exitCode: 0, signal: 0, errorCode: "", error: "", stats: [], ...end },
    } as never);
  }

  async openStream(node: string, req: SubStreamRequest, h: SubStreamHandlers) {
    if (!this.connected) throw new GroveError("NodeUnavailable", `the agent of node ${node} is not connected`);
    return this.mux.open(req, h);
  }

  async stats(): Promise<never[]> {
    return [];
  }

  credits(id: number): number {
    return this.sent.reduce((t, m) => t + (m.streamCredit?.streamId === id ? (m.streamCredit.bytes ?? 0) : 0), 0);
  }
}

/**
 * Waits for something the server does asynchronously (a frame reaching the
 * fake agent): polls, fails after `timeoutMs` naming what it waited for.
 */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("logs and exec routes", () => {
  let server: FastifyInstance;
  let base: string;
  let agent: FakeAgent;
  let client: GroveClient;

  beforeEach(async () => {
    const store = new MemoryStore();
    const repo = new Repository(store);
    await repo.create(instance("hello-0", "Running", "n1"));
    await repo.create(instance("hello-1", "Pending"));
    agent = new FakeAgent();
    server = await buildHttpServer({ repo, store, adminToken: TOKEN, agents: agent });
    await server.listen({ host: "127.0.0.1", port: 0 });
    const addr = server.server.address();
    base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
    client = new GroveClient({ server: base, token: TOKEN });
  });

  afterEach(async () => {
    // undici (fetch) may keep a fresh socket open after an abort; it would hold close().
    const closing = server.close();
    server.server.closeAllConnections();
    await closing;
  });

  async function read(stream: AsyncIterable<Uint8Array>): Promise<string> {
    let s = "";
    for await (const c of stream) s += Buffer.from(c).toString();
    return s;
  }

  it("streams a log, passing tail and follow on, and grants credit for what the client took", async () => {
    let openId = 0;
    agent.onOpen = (id) => {
      openId = id;
      agent.output(id, 0, "");
      agent.output(id, 1, "a\n");
      agent.output(id, 1, "b\n");
    };
    const stream = await client.logs("hello-0", "default", { tail: 2, follow: true });
    let got = "";
    for await (const c of stream) {
      got += Buffer.from(c).toString();
      if (got === "a\nb\n") break;
    }
    expect(agent.sent[0]?.streamOpen).toMatchObject({ kind: "LOGS", logs: { follow: true, tailLines: 2 } });
    expect(agent.credits(openId)).toBe(4);

    agent.onOpen = (id) => {
      agent.output(id, 0, "");
      agent.output(id, 1, "whole\n");
      agent.end(id);
    };
    expect(await read(await client.logs("hello-0", "default"))).toBe("whole\n");
  });

  it("answers the agent's errors before the first byte with a status", async () => {
    agent.onOpen = (id) => agent.end(id, { errorCode: "NotFound", error: "instance u is not on this node" });
    await expect(client.logs("hello-0", "default")).rejects.toMatchObject({ code: "NotFound" });
    await expect(client.logs("nope-0", "default")).rejects.toMatchObject({ code: "NotFound" });
    await expect(client.logs("hello-1", "default")).rejects.toThrow(/not placed on a node yet/);
    agent.connected = false;
    await expect(client.logs("hello-0", "default")).rejects.toMatchObject({ code: "NodeUnavailable" });
    const anon = await fetch(`${base}/v1/namespaces/default/instances/hello-0/logs`);
    expect(anon.status).toBe(401);
  });

  it("breaks the response when the agent goes away mid-stream", async () => {
    agent.onOpen = (id) => {
      agent.output(id, 0, "");
      agent.output(id, 1, "first\n");
    };
    // The client has the response (status and headers) once logs() resolves:
    // the agent goes away only then, mid-stream.
    const stream = await client.logs("hello-0", "default", { follow: true });
    agent.mux.closeAll();
    await expect(read(stream)).rejects.toThrow(/broke/);
  });

  it("cancels the sub-stream when the client goes", async () => {
    let openId = 0;
    agent.onOpen = (id) => {
      openId = id;
      agent.output(id, 0, "");
    };
    const stream = await client.logs("hello-0", "default", { follow: true });
    stream.close();
    await waitFor(() => agent.sent.some((m) => m.streamCancel?.streamId === openId), "the StreamCancel");
  });

  it("cancels the sub-stream when the client goes before the agent answered", async () => {
    let openId = 0;
    agent.onOpen = (id) => (openId = id);
    const controller = new AbortController();
    const pending = fetch(`${base}/v1/namespaces/default/instances/hello-0/logs?follow=1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: controller.signal,
    }).catch(() => undefined);
    await waitFor(() => openId !== 0, "the StreamOpen to reach the agent");
    controller.abort();
    await pending;
    await waitFor(() => agent.sent.some((m) => m.streamCancel?.streamId === openId), "the StreamCancel");
  });

  it("exec: frames stdin/resize to the agent, output and the exit status back; refuses non-running instances", async () => {
    agent.onOpen = (id) => agent.output(id, 0, "");
    const session = await client.exec("hello-0", "default", {
      command: ["sh", "-c", "x"],
      tty: true,
      cols: 80,
      rows: 24,
    });
    const out: string[] = [];
    session.onStdout((d) => out.push(d.toString()));
    await waitFor(() => agent.sent.some((m) => m.streamOpen), "the exec's StreamOpen");
    const open = agent.sent.find((m) => m.streamOpen)!.streamOpen!;
    expect(open).toMatchObject({ kind: "EXEC", exec: { command: ["sh", "-c", "x"], tty: true, cols: 80, rows: 24 } });
    session.write("hi");
    session.resize(100, 30);
    session.closeStdin();
    const id = open.streamId!;
    await waitFor(() => agent.sent.filter((m) => m.streamInput).length >= 3, "three StreamInput frames");
    const inputs = agent.sent.filter((m) => m.streamInput).map((m) => m.streamInput);
    expect(inputs).toEqual([
      { streamId: id, stdin: Buffer.from("hi") },
      { streamId: id, cols: 100, rows: 30 },
      { streamId: id, closeStdin: true },
    ]);
    agent.output(id, 1, "out");
    agent.end(id, { exitCode: 3 });
    expect(await session.exited).toEqual({ exitCode: 3, signal: 0 });
    expect(out.join("")).toBe("out");

    await expect(client.exec("hello-1", "default", { command: ["true"] })).rejects.toMatchObject({ code: "Conflict" });
    await expect(client.exec("nope-0", "default", { command: ["true"] })).rejects.toMatchObject({ code: "NotFound" });
    // A NUL cannot reach execve: refused before the upgrade, nothing asked of the agent.
    const opened = agent.sent.filter((m) => m.streamOpen).length;
    await expect(client.exec("hello-0", "default", { command: ["echo", "a\u0000b"] })).rejects.toMatchObject({
      code: "ValidationFailed",
    });
    expect(agent.sent.filter((m) => m.streamOpen).length).toBe(opened);
    const noToken = new WebSocket(
      `${base.replace("http", "ws")}/v1/namespaces/default/instances/hello-0/exec?command=true`,
    );
    const status = await new Promise<number>((resolve) => {
      noToken.on("unexpected-response", (req, res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      noToken.on("open", () => resolve(101));
      noToken.on("error", () => undefined);
    });
    expect(status).toBe(401);
    // An agent that goes away ends the session with NodeUnavailable.
    const second = await client.exec("hello-0", "default", { command: ["sleep", "9"] });
    await waitFor(() => agent.sent.filter((m) => m.streamOpen).length === 2, "the second exec's StreamOpen");
    agent.mux.closeAll();
    await expect(second.exited).rejects.toMatchObject({ code: "NodeUnavailable" });
    expect(execFrame(ExecChannel.Resize, "{}")[0]).toBe(3);
  });
});

describe("the audit of an exec session", () => {
  it("names the client's address, though the record is written once its socket has closed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-exec-audit-"));
    const audit = new AuditLog({ file: path.join(dir, "audit.log") });
    const store = new MemoryStore();
    const repo = new Repository(store);
    await repo.create(instance("hello-0", "Running", "n1"));
    const agent = new FakeAgent();
    agent.onOpen = (id) => agent.output(id, 0, "");
    const server = await buildHttpServer({ repo, store, adminToken: TOKEN, agents: agent, audit });
    try {
      await server.listen({ host: "::1", port: 0 });
      const port = (server.server.address() as { port: number }).port;
      const client = new GroveClient({ server: `http://[::1]:${port}`, token: TOKEN });
      const session = await client.exec("hello-0", "default", { command: ["true"] });
      await waitFor(() => agent.sent.some((m) => m.streamOpen), "the exec's StreamOpen");
      agent.end(agent.sent.find((m) => m.streamOpen)!.streamOpen!.streamId!);
      await session.exited;
      const records = () =>
        fs
          .readFileSync(path.join(dir, "audit.log"), "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as AuditRecord);
      await waitFor(() => records().some((r) => r.code === 101), "the exec's audit record");
      expect(records().find((r) => r.code === 101)).toMatchObject({ verb: "exec", source: "::1" });
    } finally {
      const closing = server.close();
      server.server.closeAllConnections();
      await closing;
      audit.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Shutdown with an exec session open (http/graceful-close.ts): the session's WebSocket is work in
// flight, so close() waits for it to end, for shutdownDrainMs at most, and then drops it.
describe("closing the server with an exec session open", () => {
  let server: FastifyInstance | undefined;
  let agent: FakeAgent;
  let port = 0;

  async function start(shutdownDrainMs?: number): Promise<void> {
    const store = new MemoryStore();
    const repo = new Repository(store);
    await repo.create(instance("hello-0", "Running", "n1"));
    agent = new FakeAgent();
    agent.onOpen = (id) => agent.output(id, 0, "");
    server = await buildHttpServer({ repo, store, adminToken: TOKEN, agents: agent, shutdownDrainMs });
    await server.listen({ host: "127.0.0.1", port: 0 });
    port = (server.server.address() as { port: number }).port;
  }

  afterEach(async () => {
    if (!server) return;
    const closing = server.close();
    server.server.closeAllConnections();
    await closing;
    server = undefined;
  });

  /** How long server.close() took; a close that waits past ms fails here. */
  async function closeTook(ms: number): Promise<number> {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`server.close() did not finish within ${ms} ms`)), ms);
    });
    try {
      await Promise.race([server!.close(), late]);
    } finally {
      clearTimeout(timer);
    }
    server = undefined;
    return performance.now() - t0;
  }

  it("ends a session whose client answers the close at once, well before the drain time", async () => {
    await start();
    const client = new GroveClient({ server: `http://127.0.0.1:${port}`, token: TOKEN });
    const session = await client.exec("hello-0", "default", { command: ["sleep", "9"] });
    await waitFor(() => agent.sent.some((m) => m.streamOpen), "the exec's StreamOpen");
    const id = agent.sent.find((m) => m.streamOpen)!.streamOpen!.streamId!;
    const ended = session.exited.then(
      () => "exited",
      () => "ended",
    );
    // The default drain is 10 s; a client that answers the close frame is not waited for that long.
    expect(await closeTook(5_000)).toBeLessThan(5_000);
    expect(await ended).toBe("ended");
    // The agent was told to end the stream: nothing stays open on the node.
    await waitFor(() => agent.sent.some((m) => m.streamCancel?.streamId === id), "the StreamCancel to the agent");
  });

  it("waits for a client that never answers the close frame for the drain time, then drops it", async () => {
    await start(300);
    const protocol = `${EXEC_TOKEN_PROTOCOL_PREFIX}${Buffer.from(TOKEN).toString("base64url")}`;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/namespaces/default/instances/hello-0/exec?command=sh`, [
      EXEC_SUBPROTOCOL,
      protocol,
    ]);
    ws.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => reject(new Error(`exec answered ${res.statusCode}`)));
    });
    await waitFor(() => agent.sent.some((m) => m.streamOpen), "the exec's StreamOpen");
    // The client stops reading: it never sees the server's close frame, so never answers it.
    ws.pause();
    const socketClosed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
    const took = await closeTook(5_000);
    // Red if the upgraded connection were not counted as in flight (dropped at once), or if close()
    // waited for ws's own close timeout (30 s) instead of the drain.
    expect(took).toBeGreaterThanOrEqual(250);
    ws.resume();
    await socketClosed;
  });
});
