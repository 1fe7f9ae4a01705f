// Automatic rollback of a rolling update: when it is failing, and the one
// sentence that says why. A rollout fails when one of its new-template
// instances crashes (ends on its own, not stopped by Grove) before the
// rollout completed, or when its new instances are not available by the
// progress deadline (never ready: a readiness check that never passes, a
// start that never ends, no node to run on). The App then returns to the
// revision its old instances run (status.rollout.from).
//
// rollbackRecord is the one place that words a rollback (reason and
// message), for the App's condition and for whoever else reports it.
import { InstanceReason, isFinished, type Instance, type RollbackRecord } from "@grove/api";

/** Why a rollout is rolled back (RollbackRecord.reason). */
export const RollbackReason = {
  /** A new instance crashed before the rollout completed. */
  InstanceFailed: "InstanceFailed",
  /** New instances were not available within spec.update.progressDeadlineSeconds. */
  ProgressDeadlineExceeded: "ProgressDeadlineExceeded",
} as const;
export type RollbackReason = (typeof RollbackReason)[keyof typeof RollbackReason];

export interface RolloutFailure {
  reason: RollbackReason;
  /** What failed, naming the instance: "instance web-0-1a2b3 exited with code 3". */
  cause: string;
}

/** Ends that are not the instance's own doing: Grove or its node stopped it. */
const NOT_A_CRASH: readonly string[] = [
  InstanceReason.RolledOut,
  InstanceReason.Superseded,
  InstanceReason.Drained,
  InstanceReason.DrainTimeout,
  InstanceReason.Preempted,
  InstanceReason.Lost,
  InstanceReason.Stopped,
  InstanceReason.StoppedDisconnected,
];

/** Whether a finished instance crashed: failed, OOM-killed, or exited non-zero, on its own. */
export function crashed(inst: Instance): boolean {
  const st = inst.status;
  if (!st || !isFinished(inst) || NOT_A_CRASH.includes(st.reason ?? "")) return false;
  if (st.state === "Exited") return (st.exitCode ?? 0) !== 0 || st.signal !== undefined;
  return true;
}

/** How an instance ended, in words: "exited with code 3", "failed its liveness check: ...". */
export function describeEnd(inst: Instance): string {
  const st = inst.status ?? { state: "Pending" as const };
  if (st.state === "OOMKilled") return "was OOM-killed";
  if (st.reason === InstanceReason.LivenessFailed) return `failed its liveness check (${st.message ?? "no message"})`;
  if (st.signal !== undefined) return `was killed by signal ${st.signal}`;
  if (st.exitCode !== undefined) return `exited with code ${st.exitCode}`;
  return `failed: ${st.reason ?? st.state}${st.message ? ` (${st.message})` : ""}`;
}

/** Why an instance is not available yet, in words, with its last check when it has one. */
export function describeUnavailable(inst: Instance): string {
  const st = inst.status;
  if (!st) return "has no status yet";
  if (st.state === "Running") {
    const c = st.lastCheck;
    const last = c
      ? `; last ${c.check} check (${c.kind}): ${c.ok ? "passed" : "failed"}: ${c.message ?? ""}`.trimEnd()
      : "";
    return st.ready === false ? `never became ready${last}` : `was not ready long enough${last}`;
  }
  return `is still ${st.state}${st.reason ? ` (${st.reason}${st.message ? `: ${st.message}` : ""})` : ""}`;
}

/**
 * Whether the rollout is failing, given its new-template instances (one per
 * index that has one) and whether its progress deadline passed.
 */
export function rolloutFailure(
  newInstances: readonly { inst: Instance; available: boolean }[],
  deadline: { exceeded: boolean; seconds: number },
): RolloutFailure | undefined {
  const dead = newInstances.find((n) => crashed(n.inst));
  if (dead) {
    return {
      reason: RollbackReason.InstanceFailed,
      cause: `instance ${dead.inst.metadata.name} ${describeEnd(dead.inst)}`,
    };
  }
  if (!deadline.exceeded) return undefined;
  const stuck = newInstances.find((n) => !n.available);
  return {
    reason: RollbackReason.ProgressDeadlineExceeded,
    cause: stuck
      ? `instance ${stuck.inst.metadata.name} ${describeUnavailable(stuck.inst)} within the progress deadline of ${deadline.seconds}s`
      : `no new instance became available within the progress deadline of ${deadline.seconds}s`,
  };
}

/** The record of a rollback from revision `from` to `to`: the App's condition message and the event's. */
export function rollbackRecord(failure: RolloutFailure, from: number, to: number, now: number): RollbackRecord {
  return {
    from,
    to,
    reason: failure.reason,
    message: `rolled back from revision ${from} to revision ${to}: ${failure.cause}`,
    at: new Date(now).toISOString(),
  };
}
