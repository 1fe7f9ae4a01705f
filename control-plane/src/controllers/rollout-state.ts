// The rolling update's state kept in the App's status (status.rollout) and
// its Progressing condition. Pure: the App controller passes what it read
// and the time; tests drive every transition.
//
// A new rollout starts when the template hash changes: `from` is where a
// rollback returns to, the revision of the instances being replaced (the one
// before, when the last rollout completed; else where that one came from, so
// a template changed twice mid-rollout still returns to what ran before
// both). The progress clock restarts when the App changes again (a new
// generation: pause/resume, a new canary size) and on promotion; a rollback
// record stays until the template changes to something else.
import { AppProgressingReason, type AppCondition, type RolloutState } from "@grove/api";

export interface RolloutTarget {
  /** Revision number of the App's current template. */
  revision: number;
  templateHash: string;
  generation: number;
}

/**
 * The rollout state for the App's current template, given the one in its
 * status. `from` is the revision of the instances being replaced, asked only
 * when a rollout starts without one to inherit.
 */
export function nextRolloutState(
  prev: RolloutState | undefined,
  cur: RolloutTarget,
  from: () => number | undefined,
  now: number,
): RolloutState {
  const at = new Date(now).toISOString();
  if (!prev || prev.templateHash !== cur.templateHash) {
    const inherited = prev ? (prev.complete ? prev.revision : prev.from) : undefined;
    const source = inherited ?? from();
    return {
      revision: cur.revision,
      templateHash: cur.templateHash,
      generation: cur.generation,
      ...(source !== undefined && source !== cur.revision ? { from: source } : {}),
      progressedAt: at,
      updatedAvailable: 0,
      // A rollback's own rollout (back to `to`) keeps saying why it happened.
      ...(prev?.rolledBack && prev.rolledBack.to === cur.revision ? { rolledBack: prev.rolledBack } : {}),
    };
  }
  const next: RolloutState = { ...prev, revision: cur.revision };
  if (prev.generation !== cur.generation) {
    // The App changed again (not its template): a fresh deadline.
    next.generation = cur.generation;
    next.progressedAt = at;
    delete next.exceeded;
  }
  return next;
}

/** The state with more updated-and-available instances recorded as progress now. */
export function progressed(state: RolloutState, updatedAvailable: number, now: number): RolloutState {
  if (updatedAvailable <= state.updatedAvailable) return state;
  return { ...state, updatedAvailable, progressedAt: new Date(now).toISOString() };
}

export type Phase =
  | { kind: "complete" }
  | { kind: "updating" }
  | { kind: "paused" }
  | { kind: "canary"; canary: number }
  | { kind: "exceeded"; deadlineSeconds: number }
  | { kind: "rolledBack"; message: string };

/** The App's Progressing condition (lastTransitionTime kept while its status stays). */
export function progressingCondition(
  phase: Phase,
  counts: { updated: number; want: number },
  prev: AppCondition | undefined,
  now: number,
): AppCondition {
  const { updated, want } = counts;
  const [status, reason, message]: [AppCondition["status"], string, string] = (() => {
    switch (phase.kind) {
      case "complete":
        return ["True", AppProgressingReason.Complete, `all ${want} instances are of the current template`];
      case "updating":
        return ["True", AppProgressingReason.Updating, `${updated} of ${want} instances updated`];
      case "paused":
        return [
          "Unknown",
          AppProgressingReason.Paused,
          `paused with ${updated} of ${want} instances updated (grove rollout resume continues)`,
        ];
      case "canary":
        return [
          "True",
          AppProgressingReason.CanaryPaused,
          `canary: ${updated} of ${want} instances updated and available; waiting for grove rollout promote (or undo)`,
        ];
      case "exceeded":
        return [
          "False",
          AppProgressingReason.ProgressDeadlineExceeded,
          `no progress for ${phase.deadlineSeconds}s with ${updated} of ${want} instances updated; the rolling update stopped (apply again to retry)`,
        ];
      case "rolledBack":
        return ["False", AppProgressingReason.RolledBack, phase.message];
    }
  })();
  const since = prev && prev.status === status ? prev.lastTransitionTime : undefined;
  return {
    type: "Progressing",
    status,
    reason,
    message,
    lastTransitionTime: since ?? new Date(now).toISOString(),
  };
}
