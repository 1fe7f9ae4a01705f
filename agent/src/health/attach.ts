// Starts a running instance's health checks and turns their results into
// status reports: ready/not ready, the result of a check whose outcome
// flipped (first result included), and a liveness failure handed to the reconciler, which stops the
// instance with reason LivenessFailed.
import type { InstanceStatus } from "@grove/proto";
import type { ContainerRuntime } from "../runtime/types";
import type { TrackedInstance } from "../reconcile/types";
import { checksOf } from "./from-spec";
import { InstanceHealth } from "./runner";

export interface HealthHooks {
  report(status: InstanceStatus): void;
  notAlive(message: string): void;
}

export function startHealth(tracked: TrackedInstance, runtime: ContainerRuntime, hooks: HealthHooks): void {
  tracked.health?.stop(); // tracked again (adopted): one set of checks per instance
  const lastOk = new Map<string, boolean>();
  const checks = checksOf(tracked.spec, tracked.status.ip || undefined, runtime);
  const health = new InstanceHealth(checks, {
    onReady: (ready) => hooks.report({ ...tracked.status, ready: ready ? "READINESS_READY" : "READINESS_NOT_READY" }),
    onNotAlive: (_role, message) => hooks.notAlive(message),
    onResult: (r) => {
      // Only a check's flip is news: every probe's result would flood the stream.
      if (lastOk.get(r.check) === r.ok) return;
      lastOk.set(r.check, r.ok);
      hooks.report({
        ...tracked.status,
        lastCheck: { check: r.check, kind: r.kind, ok: r.ok, message: r.message, timeMs: Date.parse(r.time) },
      });
    },
  });
  if (health.empty) return;
  tracked.health = health;
  health.start();
}
