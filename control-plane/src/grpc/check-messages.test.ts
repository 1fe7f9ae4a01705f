// Health checks through the agent protocol: an Instance's spec.checks reach
// its agent with port names resolved and defaults filled in; the agent's
// readiness and last result reach status.ready and status.lastCheck.
import type { Instance } from "@grove/api";
import type { InstanceStatus__Output } from "@grove/proto";
import { applyReport, desiredFor } from "./agent-messages";

function instance(status?: Instance["status"]): Instance {
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: { name: "web-0", namespace: "default", uid: "u1" },
    spec: {
      app: "web",
      appUid: "a1",
      index: 0,
      rootfs: "busybox",
      command: ["httpd"],
      resources: { cpuMillis: 100, memoryBytes: 2 ** 26, pids: 64 },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 1,
      restarts: 0,
      nodeName: "n1",
      ports: [{ name: "http", containerPort: 8080, protocol: "tcp" }],
      checks: {
        readiness: { http: { port: "http", path: "/ready", status: "200-299" }, periodSeconds: 2 },
        liveness: { exec: { command: ["true"] }, failureThreshold: 5 },
      },
    },
    ...(status ? { status } : {}),
  };
}

function report(over: Partial<InstanceStatus__Output>): InstanceStatus__Output {
  return {
    uid: "u1",
    namespace: "default",
    name: "web-0",
    state: "RUNNING",
    exitCode: 0,
    signal: 0,
    pid: 42,
    reason: "",
    message: "",
    startedAtMs: "1700000000000",
    finishedAtMs: "0",
    ip: "10.244.0.2",
    ports: [],
    pull: null,
    appliedResources: null,
    ready: "READINESS_NOT_REPORTED",
    lastCheck: null,
    ...over,
  } as InstanceStatus__Output;
}

describe("health checks in agent messages", () => {
  it("sends the checks with named ports resolved and defaults filled in", () => {
    const [spec] = desiredFor("n1", [instance()]);
    expect(spec!.readinessCheck).toMatchObject({
      httpPort: 8080,
      httpPath: "/ready",
      httpStatusMin: 200,
      httpStatusMax: 299,
      periodSeconds: 2,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
    expect(spec!.livenessCheck).toMatchObject({ execCommand: ["true"], failureThreshold: 5, httpPort: 0, tcpPort: 0 });
    expect(spec!.startupCheck).toBeUndefined();
  });

  it("records readiness and the last result, and a change of readiness alone is a change", () => {
    const running = instance({ state: "Running", reason: "Running", pid: 42, ip: "10.244.0.2", nodeName: "n1" });
    const unready = applyReport(
      running,
      report({
        ready: "READINESS_NOT_READY",
        lastCheck: { check: "readiness", kind: "http", ok: false, message: "HTTP 404", timeMs: "1700000001000" },
      }),
    );
    expect(unready).toMatchObject({
      ready: false,
      lastCheck: { check: "readiness", kind: "http", ok: false, message: "HTTP 404", time: "2023-11-14T22:13:21.000Z" },
    });
    const back = applyReport({ ...running, status: unready! }, report({ ready: "READINESS_READY" }));
    expect(back?.ready).toBe(true);
    // Without a readiness report the field is absent (isReady then goes by the state).
    expect(applyReport({ ...running, status: back! }, report({}))?.ready).toBeUndefined();
  });
});
