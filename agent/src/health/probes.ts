// One probe of each kind: an http GET or a tcp connect to the instance's
// address (the agent reaches instance IPs on its node's bridge, as kubelet
// probes pod IPs from the host), or a command run through the exec path. No
// process per http/tcp probe: both are sockets of the agent's own event loop.
import * as http from "node:http";
import * as net from "node:net";

export interface ProbeOutcome {
  ok: boolean;
  message: string;
}

/** Runs one probe; must settle within about timeoutMs and leave no socket open. */
export type Probe = (timeoutMs: number) => Promise<ProbeOutcome>;

/** GET http://host:port/path; passes when the status is within [lo, hi]. */
export function httpProbe(host: string, port: number, path: string, [lo, hi]: [number, number]): Probe {
  return (timeoutMs) =>
    new Promise((resolve) => {
      let settled = false;
      const done = (o: ProbeOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(o);
      };
      // agent: false: a fresh connection each time, closed after, like kubelet (no keep-alive pool to leak).
      const req = http.get({ host, port, path, agent: false, headers: { "user-agent": "grove-health" } }, (res) => {
        const code = res.statusCode ?? 0;
        res.resume();
        done({ ok: code >= lo && code <= hi, message: `HTTP ${code}` });
      });
      req.on("error", (err) => done({ ok: false, message: err.message }));
      const timer = setTimeout(() => done({ ok: false, message: `timed out after ${timeoutMs} ms` }), timeoutMs);
    });
}

/** Connects to host:port; passes when the connection is accepted. */
export function tcpProbe(host: string, port: number): Probe {
  return (timeoutMs) =>
    new Promise((resolve) => {
      let settled = false;
      const sock = net.connect({ host, port });
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
