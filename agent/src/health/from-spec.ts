// An instance's checks as its InstanceSpec carries them, turned into probes
// the runner can run: http and tcp from inside the instance's network
// namespace to its 127.0.0.1 (a socket the runtime makes there, so a server
// that listens only on loopback passes, as it would for a client in the
// instance), exec through the runtime's exec path (the process `grove exec`
// would start, killed on timeout). A runtime that cannot make sockets in a
// container's namespace (the FakeRuntime of the unit tests) gets probes from
// the agent to the instance's IP (127.0.0.1 without one).
import * as fs from "node:fs";
import * as net from "node:net";
import type { HealthCheck__Output, InstanceSpec__Output } from "@grove/proto";
import type { ContainerRuntime } from "../runtime/types";
import { execProbe, httpProbe, tcpProbe, type OpenSocket, type Probe } from "./probes";
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

function runnable(
  c: HealthCheck__Output,
  host: string,
  open: OpenSocket | undefined,
  exec: ReturnType<typeof execInContainer>,
): RunnableCheck {
  let kind: RunnableCheck["kind"];
  let probe: Probe;
  if (c.httpPort > 0) {
    kind = "http";
    probe = httpProbe(host, c.httpPort, c.httpPath || "/", [c.httpStatusMin || 200, c.httpStatusMax || 399], open);
  } else if (c.tcpPort > 0) {
    kind = "tcp";
    probe = tcpProbe(host, c.tcpPort, open);
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

/**
 * The readiness a just-started (or adopted) instance is first reported with:
 * not ready while it has a startup or readiness check, so no report ever
 * shows it Running without the gate (the control plane would count it
 * available and a rolling update would stop its old instance); unset without.
 */
export function initialReadiness(spec: InstanceSpec__Output): { ready?: "READINESS_NOT_READY" } {
  return spec.startupCheck || spec.readinessCheck ? { ready: "READINESS_NOT_READY" } : {};
}

/** Node's socket over a new fd; the fd is closed if Node refuses it. */
function socketOf(fd: number): net.Socket {
  try {
    // manualStart: Node would otherwise start reading the fd at once, before
    // it is connected (ENOTCONN); it starts reading on connect instead. (An
    // option of net.Socket that Node's own tls and http2 use; not in its types.)
    return new net.Socket({ fd, manualStart: true } as net.SocketConstructorOpts);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** The runnable checks of an instance (empty when its spec has none). */
export function checksOf(
  spec: InstanceSpec__Output,
  ip: string | undefined,
  runtime: ContainerRuntime,
): Partial<Record<CheckRole, RunnableCheck>> {
  const inside = runtime.netnsSocket?.bind(runtime);
  const open: OpenSocket | undefined = inside && (() => socketOf(inside(spec.uid)));
  const host = inside ? "127.0.0.1" : ip || "127.0.0.1";
  const exec = execInContainer(runtime, spec.uid);
  const out: Partial<Record<CheckRole, RunnableCheck>> = {};
  if (spec.startupCheck) out.startup = runnable(spec.startupCheck, host, open, exec);
  if (spec.livenessCheck) out.liveness = runnable(spec.livenessCheck, host, open, exec);
  if (spec.readinessCheck) out.readiness = runnable(spec.readinessCheck, host, open, exec);
  return out;
}
