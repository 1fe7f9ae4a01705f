// One sync's worth of a rolling update: record the template's revision,
// carry the rollout's state in the App's status, and then, in this order:
// done when every index has an available new-template instance; nothing
// while paused; back to the previous revision when the rollout is failing
// (rollback.ts); stopped at the progress deadline when it cannot roll back;
// waiting for promotion once a canary is available; else planRollout's next
// steps. The progress deadline is measured on the monotonic clock from the
// state's progressedAt, which survives a restart or a new leader.
import type { Logger } from "pino";
import {
  CONFIG_HASH_LABEL,
  templateHash,
  updateParams,
  withRevisionTemplate,
  type App,
  type Instance,
  type RollbackRecord,
  type RolloutState,
} from "@grove/api";
import type { Repository } from "../resources/repository";
import type { AppWrites, RolloutStatus } from "./app-writes";
import { rollbackRecord, rolloutFailure, type RolloutFailure } from "./rollback";
import { planRollout, rolledOut, type IndexSlot, type RolloutTracker } from "./rollout";
import { nextRolloutState, progressed, progressingCondition, type Phase } from "./rollout-state";
import type { RevisionStore } from "./revisions";

export interface RolloutDeps {
  tracker: RolloutTracker;
  writes: AppWrites;
  revisions: RevisionStore;
  repo: Repository;
  logger: Logger;
  retryAfter: (ms: number) => void;
  /** Told of every automatic rollback (the App's status already says it). */
  onRollback?: (app: App, record: RollbackRecord) => void;
}

/** The old-template instance of a slot, if it has one. */
function oldInstance(s: IndexSlot): Instance | undefined {
  if (!s.old) return undefined;
  return s.orig ?? s.head;
}

/** The revision most old instances run: where a rollout that starts now would return. */
async function revisionOfOld(deps: RolloutDeps, app: App, slots: IndexSlot[]): Promise<number | undefined> {
  const votes = new Map<string, number>();
  for (const s of slots) {
    const h = oldInstance(s)?.metadata.labels?.[CONFIG_HASH_LABEL];
    if (h !== undefined) votes.set(h, (votes.get(h) ?? 0) + 1);
  }
  const best = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (best === undefined) return undefined;
  const rev = await deps.revisions.byHash(app.metadata.namespace ?? "default", app.metadata.name, best);
  return rev?.revision;
}

/**
 * A rolling update's next steps; returns the App's progress for its status,
 * or undefined when it rolled the App back (that write carried the status).
 */
export async function rollOut(
  deps: RolloutDeps,
  key: string,
  app: App,
  slots: IndexSlot[],
  now: number,
): Promise<RolloutStatus | undefined> {
  const params = updateParams(app.spec);
  const want = app.spec.instances;
  const newOnes = slots.filter((s) => s.new && s.head).map((s) => ({ inst: s.head!, available: s.new!.available }));
  const updated = newOnes.length;
  const updatedAvailable = newOnes.filter((n) => n.available).length;
  const available = slots.filter((s) => s.old?.available || s.new?.available).length;
  const prevCondition = app.status?.conditions?.find((c) => c.type === "Progressing");
  const counts = { updated, want };
  const hash = templateHash(app);

  const prev = app.status?.rollout;
  const revision = await deps.revisions.record(app, prev?.from);
  const guess = prev?.templateHash !== hash ? await revisionOfOld(deps, app, slots) : undefined;
  let state = nextRolloutState(
    prev,
    { revision, templateHash: hash, generation: app.metadata.generation ?? 1 },
    () => guess,
    now,
  );
  state = progressed(state, updatedAvailable, now);
  const rollingBack = state.rolledBack !== undefined && state.rolledBack.to === revision;
  const status = (phase: Phase): RolloutStatus => ({
    revision: hash,
    updated,
    available,
    condition: progressingCondition(phase, counts, prevCondition, now),
    state,
  });
  const ongoing = (): Phase =>
    rollingBack ? { kind: "rolledBack", message: state.rolledBack!.message } : { kind: "updating" };

  if (rolledOut(slots) && updatedAvailable === want) {
    const { exceeded: _e, ...rest } = state;
    state = { ...rest, complete: true };
    return status(ongoing().kind === "rolledBack" ? ongoing() : { kind: "complete" });
  }
  if (params.paused && !state.complete) return status({ kind: "paused" });

  // A canary: the first `canary` indexes go to the new template, then it waits for promotion.
  // Only on the way to a newer revision: an undo or a rollback goes straight back.
  const forward = state.from !== undefined && state.revision > state.from;
  const canary =
    params.canary !== undefined && forward && !rollingBack && !state.promoted && !state.complete
      ? params.canary
      : undefined;
  const canaryWaiting = canary !== undefined && updatedAvailable >= canary;
  const deadlineMs = params.progressDeadlineSeconds * 1000;
  const elapsed = deps.tracker.sinceProgress(key, state, now);
  // An index being sorted out (a retired instance deleted, a suspect replaced) has no instance
  // to judge this time: judge the rollout on the next sync, which follows at once.
  const settling = slots.some((s) => !s.head);
  const exceeded = state.exceeded === true || (!canaryWaiting && !state.complete && !settling && elapsed >= deadlineMs);
  if (!exceeded && !canaryWaiting && !state.complete) deps.retryAfter(Math.ceil(Math.max(1, deadlineMs - elapsed)));

  if (params.autoRollback && state.from !== undefined && !state.complete && !rollingBack && !settling) {
    const failure = rolloutFailure(newOnes, { exceeded, seconds: params.progressDeadlineSeconds });
    if (failure && (await rollBack(deps, key, app, state, failure, status({ kind: "updating" }), now))) {
      return undefined;
    }
  }
  if (exceeded) {
    if (!state.exceeded) {
      deps.logger.warn({ app: key, revision, updated, want }, "rolling update made no progress in time; stopped");
    }
    state = { ...state, exceeded: true };
    return status({ kind: "exceeded", deadlineSeconds: params.progressDeadlineSeconds });
  }
  if (params.strategy !== "Rolling" || rolledOut(slots)) return status(ongoing());

  const bySlot = new Map(slots.map((s) => [s.index, s]));
  for (const a of planRollout(slots, want, { ...params, ...(canary !== undefined ? { maxUpdated: canary } : {}) })) {
    const s = bySlot.get(a.index);
    if (!s?.head) continue;
    if (a.kind === "surge") await deps.writes.createSurge(app, s.head, now);
    else if (a.kind === "retire" && s.orig) await deps.writes.retire(s.orig, s.head);
    else if (a.kind === "replace") await deps.writes.replace(s.head, app, s.head.spec.restarts, now);
  }
  // A canary that is available waits (its old instances are still retired, above).
  return status(canaryWaiting ? { kind: "canary", canary } : ongoing());
}

/**
 * Returns the App to the revision its rollout came from: its template from
 * that revision (instances, resources and update settings stay), with the
 * rollback recorded in its status, in one write. False when that revision is
 * no longer kept (the rollout then stops at its deadline instead).
 */
async function rollBack(
  deps: RolloutDeps,
  key: string,
  app: App,
  state: RolloutState,
  failure: RolloutFailure,
  current: RolloutStatus,
  now: number,
): Promise<boolean> {
  const to = state.from!;
  const target = await deps.revisions.get(app.metadata.namespace ?? "default", app.metadata.name, to);
  if (!target) {
    deps.logger.warn({ app: key, from: state.revision, to }, "cannot roll back: that revision is no longer kept");
    return false;
  }
  const record = rollbackRecord(failure, state.revision, to, now);
  const next = structuredClone(app);
  next.spec = withRevisionTemplate(app.spec, target.template);
  next.status = {
    ...(app.status ?? {}),
    rollout: { ...state, rolledBack: record },
    conditions: [
      progressingCondition(
        { kind: "rolledBack", message: record.message },
        { updated: current.updated, want: app.spec.instances },
        app.status?.conditions?.find((c) => c.type === "Progressing"),
        now,
      ),
    ],
  };
  await deps.repo.update(next); // a Conflict (the App changed meanwhile) requeues: decided again on the new App
  deps.logger.warn({ app: key, from: record.from, to: record.to, reason: record.reason }, record.message);
  deps.onRollback?.(app, record);
  return true;
}
