// The reconciler runs a running instance's checks (FakeRuntime: no network
// of its own, so the probes go to 127.0.0.1, where these tests listen): its
// readiness is reported, and a liveness failure stops it as FAILED with
// reason LivenessFailed; the checks stop with the instance.
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { HealthCheck__Output, InstanceStatus } from "@grove/proto";
import { FakeRuntime } from "../runtime/fake";
import { Reconciler } from "../reconcile/reconciler";
import { desired, spec, START_MS, waitFor } from "../reconcile/test-helpers";

function hc(over: Partial<HealthCheck__Output>): HealthCheck__Output {
  return {
    httpPort: 0,
    httpPath: "",
    httpStatusMin: 0,
    httpStatusMax: 0,
    tcpPort: 0,
    execCommand: [],
    initialDelaySeconds: 0,
    periodSeconds: 1,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: 1,
    ...over,
  };
}

describe("Reconciler health checks", () => {
  let server: http.Server;
  let port = 0;
  let status = 200;
  let reports: InstanceStatus[];
  let stateDir: string;
  let reconciler: Reconciler;
  let runtime: FakeRuntime;

  beforeAll(async () => {
    server = http.createServer((_req, res) => res.writeHead(status).end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((r) => server.close(r)));
  beforeEach(() => {
    status = 200;
    reports = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-health-"));
    runtime = new FakeRuntime({ clock: () => START_MS });
    reconciler = new Reconciler({
      runtime,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      onStatus: (s) => reports.push(s),
      resyncIntervalMs: 0,
    });
  });
  afterEach(async () => {
    await reconciler.shutdown();
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it("reports readiness as the readiness check flips", async () => {
    await reconciler.start();
    reconciler.setDesired(
      desired(spec("u1", { readinessCheck: hc({ httpPort: port, httpStatusMin: 200, httpStatusMax: 299 }) })),
    );
    await waitFor(() => reports.some((r) => r.ready === "READINESS_READY"), "ready");
    const firstReady = reports.findIndex((r) => r.ready === "READINESS_READY");
    expect(reports.slice(0, firstReady).some((r) => r.state === "RUNNING" && r.ready === "READINESS_NOT_READY")).toBe(
      true,
    );
    status = 503;
    await waitFor(() => reports.slice(firstReady).some((r) => r.ready === "READINESS_NOT_READY"), "unready", 5000);
    const last = reports[reports.length - 1]!;
    expect(last.state).toBe("RUNNING");
    expect(last.lastCheck).toMatchObject({ check: "readiness", kind: "http", ok: false, message: "HTTP 503" });
  });

  it("never reports a gated instance RUNNING without saying it is not ready yet", async () => {
    // A RUNNING report without readiness would count as ready (isReady) and list it as an endpoint.
    status = 503;
    await reconciler.start();
    reconciler.setDesired(
      desired(spec("u1", { readinessCheck: hc({ httpPort: port, httpStatusMin: 200, httpStatusMax: 299 }) })),
    );
    await waitFor(() => reports.some((r) => r.lastCheck?.ok === false), "a failed check");
    const running = reports.filter((r) => r.state === "RUNNING");
    expect(running.length).toBeGreaterThan(0);
    expect(running.every((r) => r.ready === "READINESS_NOT_READY")).toBe(true);
  });

  it("never reports an instance with a readiness or startup check RUNNING without saying it is not ready yet", async () => {
    await reconciler.start();
    reconciler.setDesired(
      desired(
        spec("u1", { readinessCheck: hc({ httpPort: port }) }),
        spec("u2", { startupCheck: hc({ httpPort: port }) }),
        spec("u3", { livenessCheck: hc({ httpPort: port }) }),
      ),
    );
    await waitFor(
      () => ["u1", "u2"].every((u) => reports.some((r) => r.uid === u && r.ready === "READINESS_READY")),
      "ready",
    );
    for (const u of ["u1", "u2"]) {
      const running = reports.filter((r) => r.uid === u && r.state === "RUNNING");
      // The first RUNNING report already carries the gate (the control plane would count it available otherwise).
      expect(running[0]!.ready).toBe("READINESS_NOT_READY");
    }
    // Without a startup or readiness check there is no gate: readiness is not reported.
    expect(reports.filter((r) => r.uid === "u3" && r.state === "RUNNING").every((r) => r.ready === undefined)).toBe(
      true,
    );
  });

  it("stops an instance whose liveness check fails, FAILED with reason LivenessFailed", async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1", { livenessCheck: hc({ tcpPort: deadPort, failureThreshold: 2 }) })));
    await waitFor(() => reports.some((r) => r.state === "FAILED"), "FAILED", 8000);
    const failed = reports.find((r) => r.state === "FAILED")!;
    expect(failed.reason).toBe("LivenessFailed");
    expect(failed.message).toMatch(/^liveness check failed 2 times: .*ECONNREFUSED/);
    expect(runtime.calls.some((c) => c.op === "stop" && c.id === "u1")).toBe(true);
    // Its checks stopped with it: no more reports.
    const n = reports.length;
    await new Promise((r) => setTimeout(r, 2500));
    expect(reports.length).toBe(n);
  });
});
