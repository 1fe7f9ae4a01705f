import { appCheckProblems, resolveCheckPort, statusRange } from "./checks";
import { templateHash, instanceTemplate } from "./instance-rules";
import { validateDocument } from "./manifest";
import type { App } from "./schemas";

function appDoc(spec: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "web" },
    spec: { rootfs: "busybox", command: ["httpd"], instances: 1, ...spec },
  };
}
const ports = [{ name: "http", containerPort: 8080 }];

describe("App health checks", () => {
  it("accepts http, tcp and exec checks with their timings", () => {
    const doc = appDoc({
      ports,
      checks: {
        startup: { tcp: { port: 8080 }, periodSeconds: 1, failureThreshold: 30 },
        liveness: { exec: { command: ["true"] }, timeoutSeconds: 2, initialDelaySeconds: 0 },
        readiness: { http: { path: "/healthz", port: "http", status: "200-299" }, successThreshold: 2 },
      },
    });
    expect(validateDocument(doc)).toEqual([]);
  });

  it("refuses a port name the App does not have, naming the field", () => {
    expect(validateDocument(appDoc({ ports, checks: { readiness: { http: { port: "admin" } } } }))).toEqual([
      { pointer: "/spec/checks/readiness/http/port", message: 'no port named "admin" (the App\'s ports are http)' },
    ]);
    expect(appCheckProblems({ checks: { liveness: { tcp: { port: "http" } } } })).toEqual([
      { pointer: "/spec/checks/liveness/tcp/port", message: 'no port named "http" (the App has no ports)' },
    ]);
  });

  it("refuses zero thresholds and periods, negative times, and checks of no kind or of two", () => {
    const problems = validateDocument(
      appDoc({
        ports,
        checks: {
          startup: { tcp: { port: 8080 }, failureThreshold: 0, successThreshold: 0 },
          liveness: { tcp: { port: 8080 }, initialDelaySeconds: -1, timeoutSeconds: -5, periodSeconds: 0 },
          readiness: { periodSeconds: 1 },
        },
      }),
    );
    expect(problems.map((p) => p.pointer).sort()).toEqual(
      [
        "/spec/checks/startup/failureThreshold",
        "/spec/checks/startup/successThreshold",
        "/spec/checks/liveness/initialDelaySeconds",
        "/spec/checks/liveness/timeoutSeconds",
        "/spec/checks/liveness/periodSeconds",
        "/spec/checks/readiness",
      ].sort(),
    );
    expect(problems.find((p) => p.pointer === "/spec/checks/readiness")?.message).toBe("needs one of http, tcp, exec");
    expect(appCheckProblems({ checks: { readiness: { tcp: { port: 1 }, exec: { command: ["x"] } } } })).toEqual([
      { pointer: "/spec/checks/readiness", message: "has tcp and exec: give exactly one of http, tcp, exec" },
    ]);
  });

  it("refuses a descending status range and reads ranges", () => {
    expect(appCheckProblems({ checks: { readiness: { http: { port: 80, status: "399-200" } } } })).toEqual([
      { pointer: "/spec/checks/readiness/http/status", message: '"399-200" is not ascending' },
    ]);
    expect(statusRange(undefined)).toEqual([200, 399]);
    expect(statusRange("204")).toEqual([204, 204]);
    expect(resolveCheckPort("http", ports)).toBe(8080);
    expect(resolveCheckPort(9000, ports)).toBe(9000);
    expect(resolveCheckPort("nope", ports)).toBeUndefined();
  });

  it("copies the checks into the instance template, so a change of checks changes the template hash", () => {
    const base = appDoc({ ports }) as unknown as App;
    const withChecks = appDoc({ ports, checks: { readiness: { tcp: { port: "http" } } } }) as unknown as App;
    const changed = appDoc({
      ports,
      checks: { readiness: { tcp: { port: "http" }, periodSeconds: 2 } },
    }) as unknown as App;
    expect(instanceTemplate(withChecks).checks).toEqual({ readiness: { tcp: { port: "http" } } });
    expect(instanceTemplate(base).checks).toBeUndefined();
    const hashes = new Set([templateHash(base), templateHash(withChecks), templateHash(changed)]);
    expect(hashes.size).toBe(3);
  });
});
