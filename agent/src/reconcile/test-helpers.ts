// Shared by the reconciler's unit tests: instance specs, the calls a
// FakeRuntime saw as short strings, and waiting for a condition.
import type { InstanceSpec__Output } from "@grove/proto";
import type { FakeCall, FakeRuntime } from "../runtime/fake";

/** When the FakeRuntime's clock says containers start, and when the tests end them. */
export const START_MS = 1_700_000_000_000;
export const EXIT_MS = 1_700_000_100_000;

export function spec(uid: string, overrides: Partial<InstanceSpec__Output> = {}): InstanceSpec__Output {
  return {
    uid,
    namespace: "default",
    name: `web-${uid}`,
    app: "web",
    rootfs: "busybox",
    command: ["/bin/sh", "-c", "sleep 1000"],
    env: { PORT: "8080" },
    workingDir: "/srv",
    resources: { cpuMillis: "250", memoryBytes: "67108864", pids: "64" },
    hostname: "",
    stopGraceSeconds: 7,
    ports: [],
    egress: [],
    image: "",
    imagePullSecret: "",
    entrypoint: [],
    security: null,
    stopAfterMs: "0",
    startupCheck: null,
    livenessCheck: null,
    readinessCheck: null,
    runtimeClass: "",
    ...overrides,
  };
}

export function desired(...specs: InstanceSpec__Output[]) {
  return { instances: specs, revision: "1", clusterId: "" };
}

/**
 * The runtime calls the reconciler made, as "start u1", "stop u1 7",
 * "remove u1", "update u1", "cleanupStale" (the kills stop() sends itself
 * and exec are left out).
 */
export function callsOf(runtime: FakeRuntime): string[] {
  return runtime.calls.flatMap((c: FakeCall) => {
    switch (c.op) {
      case "start":
      case "remove":
      case "update":
        return [`${c.op} ${c.id}`];
      case "stop":
        return [`stop ${c.id} ${c.graceSeconds}`];
      case "cleanupStale":
        return ["cleanupStale"];
      default:
        return [];
    }
  });
}

/**
 * Resolves once `condition` holds; rejects after `timeoutMs` naming what was
 * awaited. Checks after every turn of the event loop, so it sees a state
 * that lasts only until the next timer.
 */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Lets every callback already due run (exit watches, queue pumps): a few turns of the event loop, no timer. */
export async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Lets exit callbacks run, then waits for the reconciler's queue to drain. */
export async function settle(reconciler: { idle(): Promise<void> }): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await reconciler.idle();
}
