// An instance's checks as its InstanceSpec carries them, turned into probes
// the runner can run: http and tcp to the instance's IP (the agent reaches it
// on the node's bridge, as kubelet probes pod IPs from the host; 127.0.0.1
// when the instance has no network of its own), exec through the runtime's
// exec path (the process `grove exec` would start, killed on timeout).
import type { HealthCheck__Output, InstanceSpec__Output } from "@grove/proto";
import type { ContainerRuntime } from "../runtime/types";
import { execProbe, httpProbe, tcpProbe, type Probe } from "./probes";
import { withDefaults, type CheckRole, type RunnableCheck } from "./runner";

/** Runs argv in container `id`; resolves to its exit code, kills it after timeoutMs. */
export function execInContainer(runtime: ContainerRuntime, id: string) {
  return async (argv: string[], timeoutMs: number): Promise<number> => {
    if (!runtime.exec) throw new Error("this runtime cannot exec");
    const proc = await runtime.exec(id, { command: argv });
    proc.stdin.end();
    proc.stdout.resume();
    proc.stderr?.resume();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill("SIGKILL");
    }, timeoutMs);
    try {
      const { exitCode } = await proc.exited;
      if (timedOut) throw new Error(`timed out after ${timeoutMs} ms`);
      return exitCode;
    } finally {
      clearTimeout(timer);
    }
  };
}

function runnable(c: HealthCheck__Output, host: string, exec: ReturnType<typeof execInContainer>): RunnableCheck {
  let kind: RunnableCheck["kind"];
  let probe: Probe;
  if (c.httpPort > 0) {
    kind = "http";
    probe = httpProbe(host, c.httpPort, c.httpPath || "/", [c.httpStatusMin || 200, c.httpStatusMax || 399]);
  } else if (c.tcpPort > 0) {
    kind = "tcp";
    probe = tcpProbe(host, c.tcpPort);
  } else {
    kind = "exec";
    probe = execProbe(exec, c.execCommand);
  }
  // Zeros are proto3's "unset": the defaults apply.
  const timing = withDefaults({
    initialDelaySeconds: c.initialDelaySeconds,
    ...(c.periodSeconds > 0 ? { periodSeconds: c.periodSeconds } : {}),
    ...(c.timeoutSeconds > 0 ? { timeoutSeconds: c.timeoutSeconds } : {}),
    ...(c.successThreshold > 0 ? { successThreshold: c.successThreshold } : {}),
    ...(c.failureThreshold > 0 ? { failureThreshold: c.failureThreshold } : {}),
  });
  return { kind, probe, ...timing };
}

/** The runnable checks of an instance (empty when its spec has none). */
export function checksOf(
  spec: InstanceSpec__Output,
  ip: string | undefined,
  runtime: ContainerRuntime,
): Partial<Record<CheckRole, RunnableCheck>> {
  const host = ip || "127.0.0.1";
  const exec = execInContainer(runtime, spec.uid);
  const out: Partial<Record<CheckRole, RunnableCheck>> = {};
  if (spec.startupCheck) out.startup = runnable(spec.startupCheck, host, exec);
  if (spec.livenessCheck) out.liveness = runnable(spec.livenessCheck, host, exec);
  if (spec.readinessCheck) out.readiness = runnable(spec.readinessCheck, host, exec);
  return out;
}
