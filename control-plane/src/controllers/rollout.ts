// Rolling updates (spec.update.strategy Rolling): which instances to start
// and which to stop when an App's template changed, so that at least
// instances - maxUnavailable stay available and at most instances + maxSurge
// run. planRollout is pure (unit- and property-tested); RolloutTracker keeps
// the controller's clocks: since when a new instance is ready (minReadySeconds)
// and since when the rollout last progressed (progressDeadlineSeconds), both
// on the monotonic clock.
//
// Per index, an old-template instance stays in charge until a new-template
// one started next to it (a surge, labelled ROLLOUT_LABEL and REPLACES_LABEL
// with the old one's uid) is available; then the old one is stopped (Exited,
// reason RolledOut). An old one that is not available anyway (crashed, not
// yet running) is replaced in place at once, as Recreate does: stopping it
// costs no availability.
import type { Logger } from "pino";
import {
  AppProgressingReason,
  ROLLOUT_LABEL,
  isFinished,
  replacesUid,
  templateHash,
  updateParams,
  type App,
  type AppCondition,
  type Instance,
  type UpdateParams,
} from "@grove/api";
import type { AppWrites, RolloutStatus } from "./app-writes";
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

/** What a rolling update does next, given every index of the App. */
export function planRollout(
  slots: readonly RolloutSlot[],
  replicas: number,
  p: Pick<UpdateParams, "maxSurge" | "maxUnavailable">,
): RolloutAction[] {
  const floor = replicas - p.maxUnavailable;
  const ceiling = replicas + p.maxSurge;
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
    if (s.old && !s.new && !s.old.available) actions.push({ kind: "replace", index: s.index });
  }
  for (const s of slots) {
    if (!s.old || s.new || !s.old.available) continue;
    if (total < ceiling) {
      actions.push({ kind: "surge", index: s.index });
      total++;
    } else if (available - 1 >= floor) {
      actions.push({ kind: "replace", index: s.index });
      available--;
    }
  }
  return actions;
}

/** Whether every index has only a new-template instance. */
export function rolledOut(slots: readonly RolloutSlot[]): boolean {
  return slots.every((s) => !s.old);
}

interface Progress {
  revision: string;
  /** Monotonic time of the last progress (start, or one more updated instance available). */
  since: number;
  best: number;
  exceeded: boolean;
}

/** The App controller's rollout clocks, per instance uid and per App. */
export class RolloutTracker {
  private readonly readyAt = new Map<string, number>();
  private readonly progress = new Map<string, Progress>();

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
   * Whether the App's rollout to `revision` ran out of time: no more updated
   * instances became available within deadlineMs. `updatedAvailable` is the
   * count now; `retryAfter` gets when to look again.
   */
  deadlineExceeded(
    app: string,
    revision: string,
    updatedAvailable: number,
    deadlineMs: number,
    retryAfter: (ms: number) => void,
  ): boolean {
    const now = this.monotonic();
    let p = this.progress.get(app);
    if (!p || p.revision !== revision) {
      p = { revision, since: now, best: updatedAvailable, exceeded: false };
      this.progress.set(app, p);
    }
    if (updatedAvailable > p.best) {
      p.best = updatedAvailable;
      p.since = now;
    }
    if (p.exceeded) return true;
    const left = deadlineMs - (now - p.since);
    if (left <= 0) p.exceeded = true;
    else retryAfter(left);
    return p.exceeded;
  }

  /** The rollout of `app` finished: the next one starts its clock afresh. */
  done(app: string): void {
    this.progress.delete(app);
  }
}

/** The App's Progressing condition (lastTransitionTime kept while its status stays). */
export function progressingCondition(
  state: "complete" | "updating" | "exceeded",
  counts: { updated: number; want: number },
  deadlineSeconds: number,
  prev: AppCondition | undefined,
  now: number,
): AppCondition {
  const [status, reason, message]: [AppCondition["status"], string, string] =
    state === "complete"
      ? ["True", AppProgressingReason.Complete, `all ${counts.want} instances are of the current template`]
      : state === "updating"
        ? ["True", AppProgressingReason.Updating, `${counts.updated} of ${counts.want} instances updated`]
        : [
            "False",
            AppProgressingReason.ProgressDeadlineExceeded,
            `no progress for ${deadlineSeconds}s with ${counts.updated} of ${counts.want} instances updated; the rolling update stopped (apply again to retry)`,
          ];
  const since = prev && prev.status === status ? prev.lastTransitionTime : undefined;
  return {
    type: "Progressing",
    status,
    reason,
    message,
    lastTransitionTime: since ?? new Date(now).toISOString(),
  };
}

/**
 * A rolling update's next steps (planRollout), unless its progress deadline
 * passed; returns the App's progress for its status.
 */
export async function rollOut(
  deps: { tracker: RolloutTracker; writes: AppWrites; logger: Logger; retryAfter: (ms: number) => void },
  key: string,
  app: App,
  slots: IndexSlot[],
  now: number,
): Promise<RolloutStatus> {
  const params = updateParams(app.spec);
  const want = app.spec.instances;
  const updated = slots.filter((s) => s.new && s.head).length;
  const updatedAvailable = slots.filter((s) => s.new?.available && s.head).length;
  const available = slots.filter((s) => s.old?.available || s.new?.available).length;
  const prev = app.status?.conditions?.find((c) => c.type === "Progressing");
  const counts = { updated, want };
  const status = (state: "complete" | "updating" | "exceeded"): RolloutStatus => ({
    revision: templateHash(app),
    updated,
    available,
    condition: progressingCondition(state, counts, params.progressDeadlineSeconds, prev, now),
  });
  if (rolledOut(slots) && updatedAvailable === want) {
    deps.tracker.done(key);
    return status("complete");
  }
  const revision = `${templateHash(app)}/${app.metadata.generation ?? 1}`;
  const exceeded = deps.tracker.deadlineExceeded(
    key,
    revision,
    updatedAvailable,
    params.progressDeadlineSeconds * 1000,
    (ms) => deps.retryAfter(Math.ceil(ms)),
  );
  if (exceeded) {
    if (prev?.reason !== AppProgressingReason.ProgressDeadlineExceeded) {
      deps.logger.warn({ app: key, revision, updated, want }, "rolling update made no progress in time; stopped");
    }
    return status("exceeded");
  }
  if (params.strategy !== "Rolling" || rolledOut(slots)) return status("updating");
  const bySlot = new Map(slots.map((s) => [s.index, s]));
  for (const a of planRollout(slots, want, params)) {
    const s = bySlot.get(a.index);
    if (!s?.head) continue;
    if (a.kind === "surge") await deps.writes.createSurge(app, s.head, now);
    else if (a.kind === "retire" && s.orig) await deps.writes.retire(s.orig, s.head);
    else if (a.kind === "replace") await deps.writes.replace(s.head, app, s.head.spec.restarts, now);
  }
  return status("updating");
}
