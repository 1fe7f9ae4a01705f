import * as http from "node:http";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { httpProbe, tcpProbe, type Probe } from "./probes";
import { InstanceHealth, withDefaults, type CheckRole, type RunnableCheck } from "./runner";

// Real servers on 127.0.0.1, port 0. Periods are fractions of a second here
// (the API takes whole seconds; the runner does not care).
let status = 200;
let hang = false;
const hits = { count: 0 };
let server: http.Server;
let port = 0;
const sockets = new Set<net.Socket>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    hits.count++;
    if (hang) return; // never answers: the probe's timeout must end it
    res.writeHead(status).end("ok");
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  status = 200;
  hang = false;
  hits.count = 0;
});

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error("condition not met in time");
    await sleep(10);
  }
}

function check(probe: Probe, t: Partial<RunnableCheck> = {}): RunnableCheck {
  return { kind: "http", probe, ...withDefaults({ periodSeconds: 0.05, timeoutSeconds: 1, ...t }) };
}

describe("probes", () => {
  it("http passes within the status range and fails outside it, on refusal and on timeout", async () => {
    expect(await httpProbe("127.0.0.1", port, "/", [200, 399])(1000)).toEqual({ ok: true, message: "HTTP 200" });
    status = 503;
    expect(await httpProbe("127.0.0.1", port, "/", [200, 399])(1000)).toEqual({ ok: false, message: "HTTP 503" });
    expect((await httpProbe("127.0.0.1", await closedPort(), "/", [200, 399])(1000)).message).toMatch(/ECONNREFUSED/);
    hang = true;
    const t0 = performance.now();
    expect(await httpProbe("127.0.0.1", port, "/", [200, 399])(200)).toEqual({
      ok: false,
      message: "timed out after 200 ms",
    });
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2000);
    // The timed-out probe closed its connection.
    await until(() => sockets.size === 0);
  });

  it("tcp passes when the port accepts and fails when it refuses", async () => {
    expect((await tcpProbe("127.0.0.1", port)(1000)).ok).toBe(true);
    const refused = await tcpProbe("127.0.0.1", await closedPort())(1000);
    expect(refused.ok).toBe(false);
    expect(refused.message).toMatch(/ECONNREFUSED/);
  });

  it("http and tcp connect the socket `open` makes (the instance's namespace in the agent), and close it", async () => {
    const made: net.Socket[] = [];
    let connected = 0;
    const open = () => {
      const s = new net.Socket();
      s.once("connect", () => connected++);
      made.push(s);
      return s;
    };
    expect(await httpProbe("127.0.0.1", port, "/", [200, 399], open)(1000)).toEqual({ ok: true, message: "HTTP 200" });
    expect((await tcpProbe("127.0.0.1", port, open)(1000)).ok).toBe(true);
    expect((await tcpProbe("127.0.0.1", await closedPort(), open)(1000)).message).toMatch(/ECONNREFUSED/);
    expect(made).toHaveLength(3);
    expect(connected).toBe(2); // the probes used these sockets, not connections of their own
    await until(() => made.every((s) => s.destroyed));
    // A socket that cannot be made (the namespace is gone) fails the probe with the reason.
    const gone = () => {
      throw new Error("open /proc/42/ns/net: No such file or directory");
    };
    expect(await tcpProbe("127.0.0.1", port, gone)(1000)).toEqual({
      ok: false,
      message: expect.stringMatching(/ns\/net/),
    });
    expect((await httpProbe("127.0.0.1", port, "/", [200, 399], gone)(1000)).ok).toBe(false);
  });
});

describe("InstanceHealth", () => {
  it("turns unready only after failureThreshold consecutive failures, ready after successThreshold passes", async () => {
    const ready: boolean[] = [];
    const results: boolean[] = [];
    const h = new InstanceHealth(
      { readiness: check(httpProbe("127.0.0.1", port, "/", [200, 399]), { failureThreshold: 3, successThreshold: 2 }) },
      { onReady: (r) => ready.push(r), onNotAlive: () => undefined, onResult: (r) => results.push(r.ok) },
    );
    h.start();
    try {
      expect(ready).toEqual([false]);
      await until(() => ready.length === 2);
      expect(ready).toEqual([false, true]);
      expect(results.slice(0, 2)).toEqual([true, true]); // two passes needed
      const before = results.length;
      status = 500;
      await until(() => ready.length === 3);
      expect(ready).toEqual([false, true, false]);
      const fails = results.slice(before);
      expect(fails.slice(-3)).toEqual([false, false, false]);
      expect(fails.filter((x) => !x).length).toBe(3); // not before the third failure
      status = 200;
      await until(() => ready.length === 4);
      expect(ready[3]).toBe(true);
    } finally {
      h.stop();
    }
  });

  it("runs nothing but the startup check until it passes", async () => {
    let startupOk = false;
    const probes: Record<CheckRole, number> = { startup: 0, liveness: 0, readiness: 0 };
    const counted = (role: CheckRole, ok: () => boolean): Probe => {
      return () => {
        probes[role]++;
        return Promise.resolve({ ok: ok(), message: role });
      };
    };
    const ready: boolean[] = [];
    const h = new InstanceHealth(
      {
        startup: check(
          counted("startup", () => startupOk),
          { failureThreshold: 1000 },
        ),
        liveness: check(counted("liveness", () => true)),
        readiness: check(counted("readiness", () => true)),
      },
      { onReady: (r) => ready.push(r), onNotAlive: () => undefined },
    );
    h.start();
    try {
      await until(() => probes.startup >= 5);
      expect(probes.liveness + probes.readiness).toBe(0);
      expect(ready).toEqual([false]);
      startupOk = true;
      await until(() => probes.liveness >= 2 && probes.readiness >= 2);
      expect(ready).toEqual([false, true]);
      const startups = probes.startup;
      await sleep(200);
      expect(probes.startup).toBe(startups); // done once passed
    } finally {
      h.stop();
    }
  });

  it("reports a liveness failure once after failureThreshold failures and stops probing", async () => {
    const notAlive: string[] = [];
    const h = new InstanceHealth(
      { liveness: check(tcpProbe("127.0.0.1", await closedPort()), { failureThreshold: 2, kind: "tcp" }) },
      { onReady: () => undefined, onNotAlive: (role, msg) => notAlive.push(`${role}: ${msg}`) },
    );
    h.start();
    await until(() => notAlive.length > 0);
    await sleep(200);
    expect(notAlive).toHaveLength(1);
    expect(notAlive[0]).toMatch(/^liveness: liveness check failed 2 times: .*ECONNREFUSED/);
    h.stop();
  });

  it("has at most one probe in flight, times periods on the monotonic clock, and stops on stop()", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const starts: number[] = [];
    const slow: Probe = async () => {
      starts.push(performance.now());
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(120); // longer than the period
      inFlight--;
      return { ok: true, message: "slow" };
    };
    const h = new InstanceHealth(
      { liveness: check(slow, { periodSeconds: 0.03 }) },
      {
        onReady: () => undefined,
        onNotAlive: () => undefined,
      },
    );
    h.start();
    await until(() => starts.length >= 4);
    h.stop();
    expect(maxInFlight).toBe(1);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(110);
    const n = starts.length;
    await sleep(300);
    expect(starts.length).toBe(n);
    expect(hits.count).toBe(0);
  });

  it("waits initialDelaySeconds before the first probe", async () => {
    const t0 = performance.now();
    let first = 0;
    const h = new InstanceHealth(
      {
        readiness: check(
          () => {
            first ||= performance.now();
            return Promise.resolve({ ok: true, message: "" });
          },
          { initialDelaySeconds: 0.3 },
        ),
      },
      { onReady: () => undefined, onNotAlive: () => undefined },
    );
    h.start();
    await until(() => first > 0);
    h.stop();
    expect(first - t0).toBeGreaterThanOrEqual(290);
  });
});
