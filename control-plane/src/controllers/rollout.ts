// Rolling updates (spec.update.strategy Rolling): which instances to start
// and which to stop when an App's template changed, so that at least
// instances - maxUnavailable stay available and at most instances + maxSurge
// run. planRollout is pure (unit- and property-tested); RolloutTracker keeps
// the controller's clocks: since when a new instance is ready (minReadySeconds)
// and since when the rollout last progressed (progressDeadlineSeconds), both
// on the monotonic clock. The steps of one sync are rollout-step.ts's; the
// rollout's state in the App's status rollout-state.ts's; rollbacks
// rollback.ts's.
//
// Per index, an old-template instance stays in charge until a new-template
// one started next to it (a surge, labelled ROLLOUT_LABEL and REPLACES_LABEL
// with the old one's uid) is available; then the old one is stopped (Exited,
// reason RolledOut). An old one that is not available anyway (crashed, not
// yet running) is replaced in place at once, as Recreate does: stopping it
// costs no availability.
import {
  ROLLOUT_LABEL,
  isFinished,
  replacesUid,
  type Instance,
  type RolloutState,
  type UpdateParams,
} from "@grove/api";
import type { MonotonicClock } from "./node-lifecycle";

/** An index as the rollout sees it, with the instances behind it. */
export interface IndexSlot extends RolloutSlot {
  /** The instance in charge of the index (what nothing replaces). */
  head?: Instance;
  /** The old-template instance a surge `head` stands next to. */
  orig?: Instance;
}

/** The live old-template instance that `head`, a rolling update's surge, stands next to. */
export function rolloutOriginal(head: Instance, group: Instance[]): Instance | undefined {
  if (head.metadata.labels?.[ROLLOUT_LABEL] === undefined) return undefined;
  const uid = replacesUid(head);
  const orig = group.find((i) => i.metadata.uid === uid);
  return orig && !isFinished(orig) && orig.status?.state !== "Unknown" ? orig : undefined;
}

/** One index of the App as the rollout sees it. */
export interface RolloutSlot {
  index: number;
  /** The old-template instance still running for this index, if any. */
  old?: { available: boolean };
  /** The new-template instance for this index, if any. */
  new?: { available: boolean };
}

export type RolloutAction =
  /** Start a new-template instance next to the old one. */
  | { kind: "surge"; index: number }
  /** Stop the old instance: its new-template one is available. */
  | { kind: "retire"; index: number }
  /** Replace the old instance by a new-template one under the same name (it stops first). */
  | { kind: "replace"; index: number };

/**
 * What a rolling update does next, given every index of the App. With
 * `maxUpdated` (a canary not yet promoted) no more than that many indexes
 * get a new-template instance.
 */
export function planRollout(
  slots: readonly RolloutSlot[],
  replicas: number,
  p: Pick<UpdateParams, "maxSurge" | "maxUnavailable"> & { maxUpdated?: number },
): RolloutAction[] {
  const floor = replicas - p.maxUnavailable;
  const ceiling = replicas + p.maxSurge;
  let updated = slots.filter((s) => s.new).length;
  const mayUpdate = () => updated < (p.maxUpdated ?? Infinity);
  let total = 0;
  let available = 0;
  for (const s of slots) {
    for (const m of [s.old, s.new]) {
      if (!m) continue;
      total++;
      if (m.available) available++;
    }
  }
  const actions: RolloutAction[] = [];
  // Old ones whose replacement is available stop first: that frees room for the next surges.
  for (const s of slots) {
    if (!s.old || !s.new?.available) continue;
    const cost = s.old.available ? 1 : 0;
    if (available - cost < floor) continue;
    actions.push({ kind: "retire", index: s.index });
    available -= cost;
    total--;
  }
  // Old ones that are not available are replaced in place: it costs nothing.
  for (const s of slots) {
    if (s.old && !s.new && !s.old.available && mayUpdate()) {
      actions.push({ kind: "replace", index: s.index });
      updated++;
    }
  }
  for (const s of slots) {
    if (!s.old || s.new || !s.old.available || !mayUpdate()) continue;
    if (total < ceiling) {
      actions.push({ kind: "surge", index: s.index });
      total++;
      updated++;
    } else if (available - 1 >= floor) {
      actions.push({ kind: "replace", index: s.index });
      available--;
      updated++;
    }
  }
  return actions;
}

/** Whether every index has only a new-template instance. */
export function rolledOut(slots: readonly RolloutSlot[]): boolean {
  return slots.every((s) => !s.old);
}

/** The App controller's rollout clocks, per instance uid and per App. */
export class RolloutTracker {
  private readonly readyAt = new Map<string, number>();
  /** Per App: the persisted progressedAt this process knows, and its monotonic time. */
  private readonly progress = new Map<string, { id: string; monoAt: number }>();

  constructor(private readonly monotonic: MonotonicClock) {}

  forgetInstance(uid: string): void {
    this.readyAt.delete(uid);
  }

  /**
   * Whether an instance is available: ready (as isReady says) for minReadyMs.
   * When it is ready but not long enough, `retryAfter` gets the wait.
   */
  available(uid: string, ready: boolean, minReadyMs: number, retryAfter: (ms: number) => void): boolean {
    if (!ready) {
      this.readyAt.delete(uid);
      return false;
    }
    const now = this.monotonic();
    const first = this.readyAt.get(uid) ?? now;
    this.readyAt.set(uid, first);
    const left = minReadyMs - (now - first);
    if (left > 0) retryAfter(left);
    return left <= 0;
  }

  /**
   * Milliseconds since the rollout of `app` last progressed: since the
   * state's progressedAt, measured on this process's monotonic clock from
   * when it first saw that value (a value written by another process, an
   * earlier leader, counts the wall-clock time that passed since then once).
   */
  sinceProgress(
    app: string,
    state: Pick<RolloutState, "progressedAt" | "templateHash" | "generation" | "promoted">,
    wallNow: number,
  ): number {
    const now = this.monotonic();
    // Two rollouts (or a start and a promotion) may fall in the same millisecond: tell them apart.
    const id = `${state.templateHash}/${state.generation}/${state.promoted === true}/${state.progressedAt}`;
    const known = this.progress.get(app);
    if (!known || known.id !== id) {
      const before = Math.max(0, wallNow - Date.parse(state.progressedAt)) || 0;
      this.progress.set(app, { id, monoAt: now - before });
      return before;
    }
    return now - known.monoAt;
  }

  /** The App was deleted: forget its clock. */
  forgetApp(app: string): void {
    this.progress.delete(app);
  }
}
