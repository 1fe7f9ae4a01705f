import { pino } from "pino";
import type { ControlMessage } from "@grove/proto";
import type { Instance } from "@grove/api";
import { Informer } from "../controllers/informer";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { NodeRegistration } from "../nodes/registration";
import { AgentGateway } from "./agent-gateway";
import { endError, SubStreamMux, SUB_STREAM_WINDOW_BYTES } from "./sub-streams";

const noop = { onOutput: () => undefined, onEnd: () => undefined, onBroken: () => undefined };

describe("SubStreamMux", () => {
  it("numbers sub-streams, grants a window, routes output and ends, and breaks them all when the stream ends", () => {
    const sent: ControlMessage[] = [];
    const mux = new SubStreamMux("n1", (m) => sent.push(m));
    const got: string[] = [];
    const a = mux.open(
      { kind: "LOGS", instanceUid: "u1", logs: { follow: true, tailLines: 3 } },
      {
        onOutput: (fd, d) => got.push(`a${fd}:${d.toString()}`),
        onEnd: (e) => got.push(`a end ${e.exitCode}`),
        onBroken: (e) => got.push(`a broken ${e.code}`),
      },
    );
    const b = mux.open(
      { kind: "EXEC", instanceUid: "u1", exec: { command: ["sh"] } },
      { ...noop, onBroken: (e) => got.push(`b broken ${e.code}: ${e.message}`) },
    );
    expect([a.id, b.id]).toEqual([1, 2]);
    expect(sent[0]?.streamOpen).toMatchObject({ streamId: 1, kind: "LOGS", window: SUB_STREAM_WINDOW_BYTES });
    expect(mux.route({ streamOutput: { streamId: 1, fd: 1, data: Buffer.from("x") } } as never)).toBe(true);
    expect(mux.route({ heartbeat: { sentAtMs: "1" } } as never)).toBe(false);
    a.credit(1);
    b.input({ stdin: Buffer.from("ls\n") });
    mux.route({ streamEnd: { streamId: 1, exitCode: 0, signal: 0, errorCode: "", error: "", stats: [] } } as never);
    a.credit(5); // ended: dropped
    mux.closeAll();
    b.cancel(); // broken: dropped
    expect(got).toEqual(["a1:x", "a end 0", "b broken NodeUnavailable: the agent of node n1 disconnected"]);
    expect(sent.slice(2)).toEqual([
      { streamCredit: { streamId: 1, bytes: 1 } },
      { streamInput: { streamId: 2, stdin: Buffer.from("ls\n") } },
    ]);
    expect(() => mux.open({ kind: "STATS", instanceUid: "" }, noop)).toThrow(/disconnected/);
  });

  it("maps the agent's error codes", () => {
    const end = (errorCode: string) => ({
      streamId: 1,
      exitCode: 0,
      signal: 0,
      errorCode,
      error: "why",
      stats: [],
      metrics: "",
    });
    expect(endError(end(""), "x")).toBeUndefined();
    expect(endError(end("NotFound"), "logs")?.code).toBe("NotFound");
    expect(endError(end("Conflict"), "logs")?.code).toBe("Conflict");
    expect(endError(end("NotSupported"), "logs")?.code).toBe("BadRequest");
    expect(endError(end("Internal"), "logs")?.message).toBe("logs: the agent failed: why");
  });
});

describe("AgentGateway.openStream without the node's stream", () => {
  it("names the replica that holds it, or says the agent is not connected", async () => {
    const store = new MemoryStore();
    const instances = new Informer<Instance>(store, Keys.collection("instances"));
    const logger = pino({ level: "silent" });
    const nodes = new NodeRegistration(store, new Repository(store), instances, logger);
    const gw = new AgentGateway(nodes, instances, "agent-token", logger);
    gw.setServerId("http://10.0.0.1:7480");
    await expect(gw.openStream("n1", { kind: "STATS", instanceUid: "" }, noop)).rejects.toThrow(
      "the agent of node n1 is not connected",
    );
    const beat = (ageMs: number, server: string) =>
      store.txn(
        [],
        [
          {
            type: "put",
            key: Keys.heartbeat("n1"),
            value: { time: new Date(Date.now() - ageMs).toISOString(), server },
          },
        ],
      );
    await beat(1000, "http://10.0.0.2:7480");
    await expect(gw.openStream("n1", { kind: "STATS", instanceUid: "" }, noop)).rejects.toMatchObject({
      code: "NodeUnavailable",
      message: expect.stringMatching(/another grove-server replica \(http:\/\/10\.0\.0\.2:7480\).*--server/),
    });
    // A lost node's presence key is deleted (by its replica or the leader's fallback).
    await store.delete(Keys.heartbeat("n1"));
    await expect(gw.stats("n1", "")).rejects.toThrow("the agent of node n1 is not connected");
    await gw.close();
  });
});
