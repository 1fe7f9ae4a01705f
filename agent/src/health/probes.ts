// One probe of each kind: an http GET or a tcp connect, or a command run
// through the exec path. No process per http/tcp probe: both are sockets of
// the agent's own event loop. With `open` (from-spec.ts) the socket is made
// inside the instance's network namespace (the addon's netnsSocket: a thread
// enters it just to make the socket) and the probe goes to the instance's own
// 127.0.0.1, which nothing outside it can reach; without, it connects from
// the agent's namespace.
import * as http from "node:http";
import * as net from "node:net";

export interface ProbeOutcome {
  ok: boolean;
  message: string;
}

/** Runs one probe; must settle within about timeoutMs and leave no socket open. */
export type Probe = (timeoutMs: number) => Promise<ProbeOutcome>;

/** Makes a new unconnected socket for one probe (in the instance's network namespace); throws when it cannot. */
export type OpenSocket = () => net.Socket;

/** An unconnected socket from `open`, or the error that kept it from being made. */
function socketFrom(open: OpenSocket | undefined): net.Socket | Error | undefined {
  if (!open) return undefined;
  try {
    return open();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** GET http://host:port/path; passes when the status is within [lo, hi]. */
export function httpProbe(
  host: string,
  port: number,
  path: string,
  [lo, hi]: [number, number],
  open?: OpenSocket,
): Probe {
  return (timeoutMs) =>
    new Promise((resolve) => {
      const sock = socketFrom(open);
      if (sock instanceof Error) return resolve({ ok: false, message: sock.message });
      let settled = false;
      const done = (o: ProbeOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        sock?.destroy();
        resolve(o);
      };
      // A fresh connection each time, closed after, like kubelet (no keep-alive pool to leak):
      // agent: false, or our own socket (createConnection is only used without an agent).
      const req = http.get(
        {
          host,
          port,
          path,
          headers: { "user-agent": "grove-health" },
          ...(sock ? { createConnection: () => sock.connect({ host, port }) } : { agent: false }),
        },
        (res) => {
          const code = res.statusCode ?? 0;
          res.resume();
          done({ ok: code >= lo && code <= hi, message: `HTTP ${code}` });
        },
      );
      req.on("error", (err) => done({ ok: false, message: err.message }));
      const timer = setTimeout(() => done({ ok: false, message: `timed out after ${timeoutMs} ms` }), timeoutMs);
    });
}

/** Connects to host:port; passes when the connection is accepted. */
export function tcpProbe(host: string, port: number, open?: OpenSocket): Probe {
  return (timeoutMs) =>
    new Promise((resolve) => {
      const made = socketFrom(open);
      if (made instanceof Error) return resolve({ ok: false, message: made.message });
      let settled = false;
      const sock = made ? made.connect({ host, port }) : net.connect({ host, port });
      const done = (o: ProbeOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        resolve(o);
      };
      sock.once("connect", () => done({ ok: true, message: `connected to ${host}:${port}` }));
      sock.once("error", (err) => done({ ok: false, message: err.message }));
      const timer = setTimeout(() => done({ ok: false, message: `timed out after ${timeoutMs} ms` }), timeoutMs);
    });
}

/** Runs argv in the instance (through the agent's exec path); passes on exit code 0. */
export function execProbe(run: (argv: string[], timeoutMs: number) => Promise<number>, argv: string[]): Probe {
  return async (timeoutMs) => {
    try {
      const code = await run(argv, timeoutMs);
      return { ok: code === 0, message: `exit code ${code}` };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  };
}
