// Shutdown that no client can hold up. Node's server.close() drops idle keep-alive connections,
// but it waits for every connection that has not sent a whole request yet (a browser's or
// undici's pre-opened socket, a client stopped half-way through its headers, a TLS handshake
// that never finishes): Node counts those as busy, and close() also stops the timer that would
// have timed them out. A replica being stopped would wait for such a client forever.
//
// So close() lets the requests in flight (and open WebSockets) finish, for drainMs at most, and
// then destroys every connection still open: those that carry nothing, or, after drainMs, those
// still busy. Watch and log streams are ended before this (server.ts, preClose); a request that
// comes in on a kept-alive connection meanwhile is answered 503 by Fastify (return503OnClosing).
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { FastifyInstance } from "fastify";

/** How long close() waits for requests in flight before it drops their connections. */
export const DEFAULT_SHUTDOWN_DRAIN_MS = 10_000;

/** Call after every other preClose hook is added: this one starts the drain, after the streams were ended. */
export function installGracefulClose(app: FastifyInstance, drainMs = DEFAULT_SHUTDOWN_DRAIN_MS): void {
  const server = app.server;
  // Every TCP connection (for HTTPS the socket under TLS, so handshakes in progress are here too).
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let closing = false;
  let deadline: NodeJS.Timeout | undefined;

  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  const settle = () => {
    if (closing && inFlight === 0) dropAll();
  };
  const finished = () => {
    inFlight--;
    settle();
  };

  server.on("connection", (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("request", (_req: unknown, res: ServerResponse) => {
    inFlight++;
    res.once("close", finished);
  });
  // An upgraded connection (grove exec) is busy until it closes: @fastify/websocket's own
  // preClose sends its close frame, and the drain gives the client time to answer it.
  const onUpgrade = (_req: unknown, socket: Duplex) => {
    inFlight++;
    socket.once("close", finished);
  };
  server.on("upgrade", onUpgrade);

  app.addHook("preClose", async () => {
    closing = true;
    // As @fastify/websocket does: no upgrade is taken any more.
    server.off("upgrade", onUpgrade);
    deadline = setTimeout(dropAll, drainMs);
    deadline.unref();
    settle();
  });
  app.addHook("onClose", async () => clearTimeout(deadline));
}
