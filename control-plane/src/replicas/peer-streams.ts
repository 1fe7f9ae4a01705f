// logs / exec / stats through any replica: a replica without the node's
// agent stream opens the sub-stream on the replica that holds it, over one
// WebSocket per sub-stream (GET /internal/v1/nodes/{node}/streams, bearer
// authenticated like the API; hidden from the OpenAPI document).
//
// The frames carry the sub-stream as it is on the agent's Connect stream:
//   peer -> holder  text   {"open": SubStreamRequest}   first, once
//                   text   {"input": {stdin (base64), closeStdin, cols, rows}}
//                   text   {"credit": bytes}
//                   close                               = cancel
//   holder -> peer  binary [fd][data]                   output (fd 0, empty: the agent started)
//                   text   {"end": StreamEnd}           then close
//                   text   {"broken": {code, message}}  then close
// Credit goes back only when the client of the first replica took the bytes,
// so flow control runs end to end. The holder only ever opens its own agents'
// streams: a request is proxied at most once and cannot loop.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { Type } from "@sinclair/typebox";
import { GroveError, NAME_PATTERN, type ErrorCode } from "@grove/api";
import type { StreamEnd__Output } from "@grove/proto";
import type { SubStream, SubStreamHandlers, SubStreamRequest } from "../grpc/sub-streams";
import type { PeerTransport } from "./peer-transport";

export const PEER_STREAMS_PATH = "/internal/v1/nodes";

/** The replica's own agents' streams (the agent gateway). */
export interface LocalStreams {
  openStream(node: string, req: SubStreamRequest, handlers: SubStreamHandlers): Promise<SubStream>;
}

type PeerInput = { stdin?: string; closeStdin?: boolean; cols?: number; rows?: number };
type PeerMessage = { open?: SubStreamRequest; input?: PeerInput; credit?: number };
type HolderMessage = { end?: StreamEnd__Output; broken?: { code: ErrorCode; message: string } };

function outputFrame(fd: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([fd & 0xff]), data]);
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
}

/** The holder's side: serves sub-streams of this replica's agents to its peers. */
export function registerPeerStreamRoute(app: FastifyInstance, local: LocalStreams): void {
  app.get(
    `${PEER_STREAMS_PATH}/:node/streams`,
    {
      websocket: true,
      schema: { hide: true, params: Type.Object({ node: Type.String({ pattern: NAME_PATTERN, maxLength: 253 }) }) },
    },
    (socket: WebSocket, req: FastifyRequest) => {
      const { node } = req.params as { node: string };
      let sub: SubStream | undefined;
      let done = false;
      const send = (m: HolderMessage) => {
        if (done) return;
        done = true;
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(m), () => socket.close(1000));
      };
      const handlers: SubStreamHandlers = {
        onOutput: (fd, data) => {
          if (!done && socket.readyState === socket.OPEN) socket.send(outputFrame(fd, data));
        },
        onEnd: (end) => send({ end }),
        onBroken: (err) => send({ broken: { code: err.code, message: err.message } }),
      };
      const pending: PeerMessage[] = [];
      const apply = (m: PeerMessage) => {
        if (!sub) return void pending.push(m);
        if (m.input) {
          const { stdin, ...rest } = m.input;
          sub.input({ ...rest, ...(stdin !== undefined ? { stdin: Buffer.from(stdin, "base64") } : {}) });
        }
        if (typeof m.credit === "number") sub.credit(m.credit);
      };
      socket.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        if (isBinary || done) return;
        let m: PeerMessage;
        try {
          m = JSON.parse(toBuffer(data).toString()) as PeerMessage;
        } catch {
          return send({ broken: { code: "BadRequest", message: "peer stream: a frame is not JSON" } });
        }
        if (!m.open) return apply(m);
        if (sub || pending.length > 0) return;
        local.openStream(node, m.open, handlers).then(
          (s) => {
            sub = s;
            if (done) return s.cancel();
            for (const p of pending.splice(0)) apply(p);
          },
          (err: unknown) => {
            const e = err instanceof GroveError ? err : new GroveError("Internal", String(err));
            send({ broken: { code: e.code, message: e.message } });
          },
        );
      });
      socket.on("close", () => {
        done = true;
        sub?.cancel();
      });
    },
  );
}

/**
 * The first replica's side: opens a sub-stream of `node` on the replica
 * `holder` (its advertised URL) and hands its output to `handlers` as if the
 * agent were connected here. Rejects with NodeUnavailable when the holder
 * cannot be reached.
 */
export function openPeerStream(
  transport: PeerTransport,
  holder: string,
  node: string,
  req: SubStreamRequest,
  handlers: SubStreamHandlers,
): Promise<SubStream> {
  return new Promise<SubStream>((resolve, reject) => {
    let socket: WebSocket;
    try {
      socket = transport.openWebSocket(holder, `${PEER_STREAMS_PATH}/${encodeURIComponent(node)}/streams`);
    } catch (err) {
      return reject(new GroveError("NodeUnavailable", `node ${node}: ${(err as Error).message}`));
    }
    let opened = false;
    let ended = false;
    const unreachable = (detail: string) =>
      new GroveError(
        "NodeUnavailable",
        `the agent of node ${node} is connected to grove-server replica ${holder}, which cannot be reached: ${detail}`,
      );
    const finish = (f: () => void) => {
      if (ended) return;
      ended = true;
      f();
    };
    const send = (m: PeerMessage) => {
      if (!ended && socket.readyState === socket.OPEN) socket.send(JSON.stringify(m));
    };
    socket.on("open", () => {
      opened = true;
      socket.send(JSON.stringify({ open: req } satisfies PeerMessage));
      resolve({
        id: 0,
        input: (i) =>
          send({
            input: {
              ...(i.stdin !== undefined ? { stdin: i.stdin.toString("base64") } : {}),
              ...(i.closeStdin !== undefined ? { closeStdin: i.closeStdin } : {}),
              ...(i.cols !== undefined ? { cols: i.cols } : {}),
              ...(i.rows !== undefined ? { rows: i.rows } : {}),
            },
          }),
        credit: (bytes) => {
          if (bytes > 0) send({ credit: bytes });
        },
        cancel: () => finish(() => socket.close(1000)),
      });
    });
    socket.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (ended) return;
      const frame = toBuffer(data);
      if (isBinary) {
        if (frame.length > 0) handlers.onOutput(frame[0]!, frame.subarray(1));
        return;
      }
      let m: HolderMessage;
      try {
        m = JSON.parse(frame.toString()) as HolderMessage;
      } catch {
        return finish(() => handlers.onBroken(unreachable("it sent a frame that is not JSON")));
      }
      if (m.end) {
        const end = m.end;
        finish(() => handlers.onEnd(end));
      } else if (m.broken) {
        const b = m.broken;
        finish(() => handlers.onBroken(new GroveError(b.code, b.message)));
      }
    });
    socket.on("error", (err: Error) => {
      if (!opened) {
        ended = true;
        reject(unreachable(err.message));
      } else finish(() => handlers.onBroken(unreachable(err.message)));
    });
    socket.on("unexpected-response", (_req, res) => {
      if (!opened) {
        ended = true;
        reject(unreachable(`HTTP ${res.statusCode ?? "?"} on the peer stream`));
      }
      socket.terminate();
    });
    socket.on("close", (code: number) => {
      if (!opened) {
        if (!ended) {
          ended = true;
          reject(unreachable(`closed (${code}) before it opened`));
        }
        return;
      }
      finish(() => handlers.onBroken(unreachable(`the peer stream closed (${code}) before the sub-stream ended`)));
    });
  });
}
