// The App controller: turns `spec.instances: N` into N Instance objects and keeps that count. Handlers only
// enqueue the App's key; sync(key) reads the App and its instances from the informers and converges, idempotently.
//
// An instance that ended is replaced (same name and index, a new uid, spec.restarts + 1) when the App's restart
// policy says so, after a crash-loop backoff of min(1 s * 2^restarts, 60 s) counted from when it finished.
//
// The crash-loop backoff counts consecutive short runs (spec.crashLoops): an instance that ran
// for BACKOFF_RESET_MS before it ended restarts after the base delay again. The wait is timed
// with this controller's monotonic clock from when it saw the instance end, never a node's.
//
// Instances on a node that stopped answering are Unknown (node-lifecycle.ts).
// Each one gets a replacement at once (after the App's spec.disconnect.replaceAfter):
// a new instance with the same index under its own name, labelled with the uid it replaces (REPLACES_LABEL), so the
// original stays recorded while its node is away. When the node comes back,
// an original whose replacement (or a later one in the chain) is Running is
// superseded: it gets the terminal state Exited, reason Superseded, which
// takes it out of its node's desired set (the agent stops it); an original
// whose replacements are not running yet resumes and they are cancelled. An
// original that ended while away keeps the exit its agent reports. So per
// index exactly one instance, the head, is counted and restarted; the others
// wait for their node or are kept for a while to be seen, then deleted.
//
// A drain (the node's spec.drain, set by `grove drain`) uses the same
// replacements, make before break: each instance on the draining node gets a
// replacement elsewhere while it keeps running, at most spec.maxUnavailable
// of an App at a time, and is stopped (Exited, reason Drained) once its
// replacement runs, or when the drain's timeout passes first (DrainTimeout).
//
// When the App's template changes, its instances are replaced; but when only
// its resources changed and spec.updatePolicy.resources is InPlace (the
// default), a running instance is resized where it is: its spec gets the new
// resources (same uid, same node) and its agent updates the container's
// cgroup limits without a restart. The new size must fit on the instance's
// node (scheduling/resize.ts: the scheduler library's fit check over the
// snapshot's allocations); the write is guarded by the node's and the
// instance's revisions and rewrites the node's status.allocated, as a
// scheduler binding does, so a resize and a binding (or two resizes) cannot
// over-commit a node. A growth that does not fit replaces that instance
// instead, and the scheduler places the replacement.
//
// The rules this controller applies to instances (finished, should-replace, crash-loop backoff,
// template hashes, a new instance) are @grove/api's (instance-rules.ts), shared with the scheduler, `apply --plan`, grove-sim.
import type { Logger } from "pino";
import {
  BACKOFF_RESET_MS,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_MAX_UNAVAILABLE,
  InstanceReason,
  ROLLOUT_LABEL,
  isFinished,
  isReady,
  nextCrashLoops,
  nodeIsReady,
  parseDurationMs,
  replaceAfterMs,
  replacesUid,
  resourcesUpdatePolicy,
  restartBackoffMs,
  shouldReplace,
  templateChange,
  templateHash,
  updateParams,
  type App,
  type Instance,
  type Node,
} from "@grove/api";
import type { Repository } from "../resources/repository";
import { AppWrites } from "./app-writes";
import { Informer, objectKey } from "./informer";
import { monotonicNow, type MonotonicClock } from "./node-lifecycle";
import { WorkQueue } from "@grove/common";
import { syncInTrace } from "../observability/trace-handoffs";
import { RolloutTracker, rolloutOriginal, type IndexSlot } from "./rollout";
import { instancesByApp, instancesOnNode, type CacheIndex } from "./cache-index";
import { rollOut, type RolloutDeps } from "./rollout-step";
import { RevisionStore } from "./revisions";
import { APP_SYNC_CONCURRENCY, firstPassOrder } from "./resync-order";

/** How long a superseded original, or one that ended while its node was away, stays listed. */
export const RETIRED_RETENTION_MS = 10 * 60_000;

export interface Clock {
  /** Wall clock, for timestamps written into objects. */
  now(): number;
  /** Monotonic clock, for every wait (default performance.now()). */
  monotonic?: MonotonicClock;
}

export interface AppControllerOptions {
  retiredRetentionMs?: number;
  backoffResetMs?: number;
  /** Told of every automatic rollback (rollout-step.ts). */
  onRollback?: RolloutDeps["onRollback"];
}

/** Reasons of an original this controller stopped (it is retired, not in charge of its index again). */
const RETIRED_REASONS: readonly string[] = [
  InstanceReason.Superseded,
  InstanceReason.Drained,
  InstanceReason.DrainTimeout,
  InstanceReason.RolledOut,
];

export class AppController {
  private readonly queue: WorkQueue;
  private readonly writes: AppWrites;
  private readonly monotonic: MonotonicClock;
  /** When (monotonic) we first saw an instance (by uid) ended, Unknown, or retired. */
  private readonly endedAt = new Map<string, number>();
  private readonly unknownAt = new Map<string, number>();
  private readonly retiredAt = new Map<string, number>();
  private readonly drainingAt = new Map<string, number>();
  private readonly retiredRetentionMs: number;
  private readonly backoffResetMs: number;
  private readonly rollout: RolloutTracker;
  private readonly revisions: RevisionStore;
  private readonly stepDeps: Omit<RolloutDeps, "retryAfter">;
  private readonly byApp: CacheIndex<Instance>;
  private readonly onNode: CacheIndex<Instance>;

  constructor(
    private readonly repo: Repository,
    private readonly apps: Informer<App>,
    private readonly instances: Informer<Instance>,
    /** The nodes, for the fit check of a resize in place and whether a suspect's node is back. */
    private readonly nodes: Informer<Node>,
    private readonly logger: Logger,
    private readonly clock: Clock = { now: () => Date.now() },
    opts: AppControllerOptions = {},
  ) {
    this.monotonic = clock.monotonic ?? monotonicNow;
    this.byApp = instancesByApp(instances);
    this.onNode = instancesOnNode(instances);
    this.rollout = new RolloutTracker(this.monotonic);
    this.revisions = new RevisionStore(repo.store, () => clock.now());
    this.writes = new AppWrites(repo, instances, nodes, logger, () => clock.now());
    const { rollout: tracker, writes, revisions } = this;
    this.stepDeps = {
      tracker,
      writes,
      revisions,
      repo,
      logger,
      ...(opts.onRollback ? { onRollback: opts.onRollback } : {}),
    };
    this.retiredRetentionMs = opts.retiredRetentionMs ?? RETIRED_RETENTION_MS;
    this.backoffResetMs = opts.backoffResetMs ?? BACKOFF_RESET_MS;
    const sync = syncInTrace("apps", (k) => this.sync(k));
    this.queue = new WorkQueue({ name: "app-controller", sync, logger, concurrency: APP_SYNC_CONCURRENCY });
    apps.on((ev) => this.queue.add(objectKey(ev.object)));
    instances.on((ev) => {
      if (ev.object.spec.task !== undefined) return; // a Task's attempt (task-controller.ts)
      const app = ev.object.spec.app;
      const ns = ev.object.metadata.namespace ?? "default";
      if (ev.type === "deleted") this.forget(ev.object.metadata.uid ?? "");
      this.queue.add(`${ns}/${app}`);
    });
    // A suspect's node coming back (or going) decides between it and its replacement;
    // a drain starting or ending moves instances or stops moving them.
    nodes.on((ev) => {
      const drainChanged =
        ev.type !== "updated" || (ev.old.spec.drain === undefined) !== (ev.object.spec.drain === undefined);
      if (ev.type === "updated" && nodeIsReady(ev.old) === nodeIsReady(ev.object) && !drainChanged) return;
      for (const i of this.onNode.of(ev.object.metadata.name)) {
        if (i.spec.task === undefined && (drainChanged || i.status?.state === "Unknown")) {
          this.queue.add(`${i.metadata.namespace ?? "default"}/${i.spec.app}`);
        }
      }
    });
  }

  private forget(uid: string): void {
    this.endedAt.delete(uid);
    this.unknownAt.delete(uid);
    this.retiredAt.delete(uid);
    this.drainingAt.delete(uid);
    this.rollout.forgetInstance(uid);
  }

  /** The drain of the node an instance is bound to, if that node is draining. */
  private drainOf(inst: Instance): { node: string; timeoutMs: number } | undefined {
    const node = inst.spec.nodeName ? this.nodes.get(inst.spec.nodeName) : undefined;
    const drain = node?.spec.drain;
    if (!node || !drain) return undefined;
    return {
      node: node.metadata.name,
      timeoutMs: drain.timeout !== undefined ? parseDurationMs(drain.timeout) : DEFAULT_DRAIN_TIMEOUT_MS,
    };
  }

  /** Monotonic time since `uid` was first seen in a state (recording now when first). */
  private since(map: Map<string, number>, uid: string): number {
    const now = this.monotonic();
    const first = map.get(uid);
    if (first === undefined) {
      map.set(uid, now);
      return 0;
    }
    return now - first;
  }

  /** Enqueues every known App (after the informers synced), those with work waiting first (resync-order.ts). */
  resyncAll(): void {
    for (const k of firstPassOrder(this.apps.list(), this.instances.list())) this.queue.add(k);
    // Revisions of Apps deleted while no leader ran: their sync deletes them.
    this.revisions.appKeys().then(
      (keys) => keys.forEach((k) => this.queue.add(k)),
      (err: unknown) => this.logger.warn({ err }, "listing App revisions failed"),
    );
  }

  stop(): void {
    this.queue.shutdown();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  async sync(key: string): Promise<void> {
    const [ns, name] = key.split("/") as [string, string];
    const app = this.apps.get(key);
    // A Task's attempts carry the Task's name in spec.app; they are the Task controller's (not indexed here).
    const owned = this.byApp.of(key);

    if (!app) {
      // The App is gone: its instances go too (agents stop them when they
      // leave their desired set).
      for (const inst of owned) await this.writes.deleteIgnoringMissing(inst);
      await this.revisions.deleteAll(ns, name);
      this.rollout.forgetApp(key);
      return;
    }
    // Instances left over from an earlier App of the same name.
    const mine: Instance[] = [];
    for (const inst of owned) {
      if (inst.spec.appUid !== app.metadata.uid) await this.writes.deleteIgnoringMissing(inst);
      else mine.push(inst);
    }

    const want = app.spec.instances;
    const now = this.clock.now();
    const byIndex = new Map<number, Instance[]>();
    for (const inst of mine) {
      if (inst.spec.index >= want) {
        await this.writes.deleteIgnoringMissing(inst); // scaled down
        continue;
      }
      byIndex.set(inst.spec.index, [...(byIndex.get(inst.spec.index) ?? []), inst]);
    }

    // Instances being moved off draining nodes: those with a replacement that does not run yet.
    const successorOf = new Set(mine.flatMap((i) => replacesUid(i) ?? []));
    const budget = {
      moving: mine.filter(
        (i) =>
          successorOf.has(i.metadata.uid ?? "") &&
          !isFinished(i) &&
          i.status?.state !== "Unknown" &&
          this.drainOf(i) !== undefined,
      ).length,
      max: app.spec.maxUnavailable ?? DEFAULT_MAX_UNAVAILABLE,
    };
    const params = updateParams(app.spec);
    const rolling = params.strategy === "Rolling";
    const slots: IndexSlot[] = [];
    // Missing indexes are created together, in a few transactions (app-writes.ts).
    const missing = Array.from({ length: want }, (_, index) => index).filter((index) => !byIndex.has(index));
    await this.writes.createMissing(app, missing, now);
    const hash = templateHash(app); // once per sync, not a sha256 per instance
    for (let index = 0; index < want; index++) {
      const group = byIndex.get(index);
      if (!group) {
        slots.push({ index, new: { available: false } });
        continue;
      }
      const inst = await this.settleIndex(key, app, group, now, budget);
      // An index being sorted out counts as not available: the rollout waits for it.
      if (!inst) {
        slots.push({ index, new: { available: false } });
        continue;
      }
      // The old-template instance a rolling update's surge `inst` stands next to.
      const orig = rolloutOriginal(inst, group);
      if (orig && templateChange(orig, app, hash) === "none") {
        // The template went back to the original's: the surge is not needed.
        await this.writes.deleteIgnoringMissing(inst);
        continue;
      }
      if (orig && !rolling) {
        await this.writes.retire(orig, inst); // Recreate now: the old one goes at once
        continue;
      }
      const change = templateChange(inst, app, hash);
      if (change === "resources" && resourcesUpdatePolicy(app) === "InPlace" && !isFinished(inst)) {
        // Only the resources changed: resize where it runs, if it fits there.
        const refused = await this.writes.resizeInPlace(inst, app);
        if (refused === undefined) continue;
        await this.writes.replace(inst, app, inst.spec.restarts, now, refused);
        continue;
      }
      if (change !== "none") {
        if (!rolling || orig || isFinished(inst)) {
          // Recreate (or a surge made from a template that changed again, or an ended
          // instance): replace the instance with the new one at once.
          await this.writes.replace(inst, app, inst.spec.restarts, now);
          continue;
        }
        slots.push({ index, old: { available: isReady(inst) }, head: inst });
        continue;
      }
      const minReadyMs = params.minReadySeconds * 1000;
      const slot: IndexSlot = {
        index,
        new: { available: this.availableNow(key, inst, minReadyMs) },
        head: inst,
        ...(orig ? { old: { available: isReady(orig) }, orig } : {}),
      };
      slots.push(slot);
      if (shouldReplace(inst)) {
        const uid = inst.metadata.uid ?? "";
        const delay = restartBackoffMs(inst) - this.since(this.endedAt, uid);
        if (delay > 0) {
          this.queue.addAfter(key, Math.ceil(delay));
          continue;
        }
        await this.writes.replace(
          inst,
          app,
          inst.spec.restarts + 1,
          now,
          undefined,
          nextCrashLoops(inst, this.backoffResetMs),
        );
      }
    }

    const retryAfter = (ms: number) => this.queue.addAfter(key, ms);
    const progress = await rollOut({ ...this.stepDeps, retryAfter }, key, app, slots, now);
    // Undefined: it rolled the App back, and that write carried the status.
    if (progress) await this.writes.updateAppStatus(app, this.byApp.of(key), progress);
  }

  /** Whether an instance is available (ready for minReadyMs), looking again when it will be. */
  private availableNow(key: string, inst: Instance, minReadyMs: number): boolean {
    return this.rollout.available(inst.metadata.uid ?? "", isReady(inst), minReadyMs, (ms) =>
      this.queue.addAfter(key, Math.ceil(ms)),
    );
  }

  /**
   * Sorts out the instances of one index: suspects on lost nodes get a
   * replacement, originals whose node came back are superseded or resume,
   * retired ones are deleted after their retention. Returns the head (the
   * one instance of the index nothing replaces) when the usual decisions
   * (template change, restart) should be made on it, else undefined.
   */
  private async settleIndex(
    key: string,
    app: App,
    group: Instance[],
    now: number,
    budget: { moving: number; max: number },
  ): Promise<Instance | undefined> {
    const successors = (uid: string) => group.filter((i) => replacesUid(i) === uid);
    const descendants = (uid: string): Instance[] => {
      const out: Instance[] = [];
      const todo = [uid];
      while (todo.length > 0) {
        for (const s of successors(todo.pop()!)) {
          if (out.includes(s)) continue;
          out.push(s);
          todo.push(s.metadata.uid ?? "");
        }
      }
      return out;
    };
    let acted = false;
    const heads: Instance[] = [];
    for (const inst of group) {
      const uid = inst.metadata.uid ?? "";
      if (successors(uid).length === 0) {
        heads.push(inst);
        continue;
      }
      const state = inst.status?.state;
      if (isFinished(inst)) {
        // It ended while its node was away (its agent reported the exit on return) and no
        // replacement has run yet: as an original that is back, it is in charge again. Its
        // replacements are cancelled and it is restarted in place per its restart policy.
        const retiredHere = RETIRED_REASONS.includes(inst.status?.reason ?? "");
        const neverRan = (d: Instance) =>
          d.status?.state !== "Running" &&
          !d.status?.startedAt &&
          !isFinished(d) &&
          d.spec.restarts === inst.spec.restarts;
        const later = descendants(uid);
        if (!retiredHere && later.every(neverRan)) {
          for (const d of later) {
            this.logger.info(
              { instance: objectKey(d), uid: d.metadata.uid, original: objectKey(inst), originalUid: uid },
              "original ended while its node was away and its replacement has not run: cancelling the replacement",
            );
            await this.writes.deleteIgnoringMissing(d);
          }
          acted = true;
          continue;
        }
        // Superseded, or ended while away after its replacement ran: kept to be seen.
        const left = this.retiredRetentionMs - this.since(this.retiredAt, uid);
        if (left <= 0) {
          await this.writes.deleteIgnoringMissing(inst);
          acted = true;
        } else this.queue.addAfter(key, Math.ceil(left));
        continue;
      }
      if (state === "Unknown") {
        // Recorded until its node returns; a node that was deleted will not.
        if (inst.spec.nodeName && !this.nodes.get(inst.spec.nodeName)) {
          this.logger.info(
            { instance: objectKey(inst), uid, node: inst.spec.nodeName },
            "deleting an instance whose node was deleted; it has a replacement",
          );
          await this.writes.deleteIgnoringMissing(inst);
          acted = true;
        }
        continue;
      }
      // A rolling update's old instance: sync stops it once its surge is available.
      const drainOf = this.drainOf(inst);
      if (!drainOf && successors(uid).some((d) => d.metadata.labels?.[ROLLOUT_LABEL] !== undefined)) continue;
      // Its node is back and its agent reported it, or it is being moved off a draining node.
      const later = descendants(uid);
      const running = later.find((d) => d.status?.state === "Running");
      const drain = drainOf;
      if (running) {
        await this.writes.supersede(inst, running, drain?.node);
      } else if (drain) {
        // Make before break: it keeps running until its replacement does, or the drain's timeout.
        const left = drain.timeoutMs - this.since(this.drainingAt, uid);
        if (left > 0) {
          this.queue.addAfter(key, Math.ceil(left));
          continue;
        }
        await this.writes.supersede(inst, undefined, drain.node);
      } else {
        for (const d of later) {
          this.logger.info(
            { instance: objectKey(d), uid: d.metadata.uid, original: objectKey(inst), originalUid: uid },
            "original instance is back before its replacement ran: cancelling the replacement",
          );
          await this.writes.deleteIgnoringMissing(d);
        }
      }
      acted = true;
    }
    if (acted) return undefined; // decide on the head once the informers show the result

    if (heads.length > 1) {
      // Two instances of one index that do not replace each other: keep one, a Running one if any.
      const rank = (i: Instance) => (i.status?.state === "Running" ? 0 : isFinished(i) ? 2 : 1);
      const [keep, ...extra] = [...heads].sort((a, b) => rank(a) - rank(b));
      for (const d of extra) await this.writes.deleteIgnoringMissing(d);
      return keep;
    }
    const head = heads[0];
    const drain = head && !isFinished(head) && head.status?.state !== "Unknown" ? this.drainOf(head) : undefined;
    if (head && drain) {
      // Moving it off a draining node: a replacement first, within the App's budget.
      if (budget.moving >= budget.max) return undefined; // the next move starts when one finishes
      budget.moving++;
      this.since(this.drainingAt, head.metadata.uid ?? "");
      await this.writes.createReplacement(
        app,
        head,
        now,
        `moves ${head.metadata.name} off node ${drain.node}, which is draining`,
      );
      return undefined;
    }
    if (!head || head.status?.state !== "Unknown") return head;

    // A suspect: place a replacement unless its node is already back (its agent is about to report).
    const node = head.spec.nodeName ? this.nodes.get(head.spec.nodeName) : undefined;
    if (node && nodeIsReady(node)) return undefined;
    const uid = head.metadata.uid ?? "";
    const wait = replaceAfterMs(app) - this.since(this.unknownAt, uid);
    if (wait > 0) {
      this.queue.addAfter(key, Math.ceil(wait));
      return undefined;
    }
    await this.writes.createReplacement(
      app,
      head,
      now,
      `replaces ${head.metadata.name} (${uid}) on node ${head.spec.nodeName ?? "?"}, which stopped answering`,
    );
    return undefined;
  }
}
