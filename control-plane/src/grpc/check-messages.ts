// Health checks between the API and the agent protocol: an Instance's
// spec.checks to the three HealthCheck messages its agent runs (port names
// resolved, defaults filled in), and the agent's ready/last_check back to
// status.ready and status.lastCheck.
import {
  CHECK_DEFAULTS,
  resolveCheckPort,
  statusRange,
  type CheckResult as ApiCheckResult,
  type HealthCheck as ApiHealthCheck,
  type Instance,
} from "@grove/api";
import type { CheckResult__Output, HealthCheck, Readiness__Output } from "@grove/proto";

function checkOf(c: ApiHealthCheck | undefined, ports: Instance["spec"]["ports"]): HealthCheck | undefined {
  if (!c) return undefined;
  const [lo, hi] = statusRange(c.http?.status);
  return {
    httpPort: c.http ? (resolveCheckPort(c.http.port, ports) ?? 0) : 0,
    httpPath: c.http ? (c.http.path ?? "/") : "",
    httpStatusMin: c.http ? lo : 0,
    httpStatusMax: c.http ? hi : 0,
    tcpPort: c.tcp ? (resolveCheckPort(c.tcp.port, ports) ?? 0) : 0,
    execCommand: c.exec?.command ?? [],
    initialDelaySeconds: c.initialDelaySeconds ?? CHECK_DEFAULTS.initialDelaySeconds,
    periodSeconds: c.periodSeconds ?? CHECK_DEFAULTS.periodSeconds,
    timeoutSeconds: c.timeoutSeconds ?? CHECK_DEFAULTS.timeoutSeconds,
    successThreshold: c.successThreshold ?? CHECK_DEFAULTS.successThreshold,
    failureThreshold: c.failureThreshold ?? CHECK_DEFAULTS.failureThreshold,
  };
}

/** The InstanceSpec fields of an Instance's checks (none when it has none). */
export function checksFor(inst: Instance): {
  startupCheck?: HealthCheck;
  livenessCheck?: HealthCheck;
  readinessCheck?: HealthCheck;
} {
  const c = inst.spec.checks;
  if (!c) return {};
  const out: { startupCheck?: HealthCheck; livenessCheck?: HealthCheck; readinessCheck?: HealthCheck } = {};
  const s = checkOf(c.startup, inst.spec.ports);
  const l = checkOf(c.liveness, inst.spec.ports);
  const r = checkOf(c.readiness, inst.spec.ports);
  if (s) out.startupCheck = s;
  if (l) out.livenessCheck = l;
  if (r) out.readinessCheck = r;
  return out;
}

/** status.ready from a report: undefined when the agent reports none (no startup or readiness check). */
export function readyOf(ready: Readiness__Output | undefined): boolean | undefined {
  if (ready === "READINESS_READY") return true;
  if (ready === "READINESS_NOT_READY") return false;
  return undefined;
}

export function lastCheckOf(r: CheckResult__Output | null | undefined): ApiCheckResult | undefined {
  if (!r || !r.check) return undefined;
  const ms = Number(r.timeMs);
  return {
    check: r.check,
    kind: r.kind,
    ok: r.ok,
    ...(r.message ? { message: r.message } : {}),
    time: new Date(ms > 0 ? ms : Date.now()).toISOString(),
  };
}
