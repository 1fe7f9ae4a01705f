// The App controller: turns `spec.instances: N` into N Instance objects and
// keeps that count. Handlers only enqueue the App's key; sync(key) reads the
// App and its instances from the informers and converges, idempotently.
//
// An instance that ended is replaced (same name and index, a new uid,
// spec.restarts + 1) when the App's restart policy says so, after a crash-loop
// backoff of min(1 s * 2^restarts, 60 s) counted from when it finished.
//
// The crash-loop backoff counts consecutive short runs (spec.crashLoops):
// an instance that ran for BACKOFF_RESET_MS before it ended restarts after
// the base delay again. The wait is timed with this controller's monotonic
// clock from when it saw the instance end, never by comparing its clock with
// a node's.
//
// Instances on a node that stopped answering are Unknown (node-lifecycle.ts).
// Each one gets a replacement at once (after the App's
// spec.disconnect.replaceAfter): a new instance with the same index under
// its own name, labelled with the uid it replaces (REPLACES_LABEL), so the
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
// node (the scheduler library's fit filters over allocations()); the write is
// guarded by the node's and the instance's revisions and rewrites the node's
// status.allocated, as a scheduler binding does, so a resize and a binding
// (or two resizes) cannot over-commit a node. A growth that does not fit
// replaces that instance instead, and the scheduler places the replacement.
import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import {
  API_VERSION,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_MAX_UNAVAILABLE,
  DEFAULT_REPLACE_AFTER_MS,
  DEFAULT_RESOURCES_UPDATE_POLICY,
  REPLACES_LABEL,
  DEFAULT_RESTART_POLICY,
  DEFAULT_STOP_GRACE_SECONDS,
  GroveError,
  TERMINAL_STATES,
  parseDurationMs,
  formatBytes,
  formatCpu,
  normalizeResources,
  type App,
  type Instance,
  type InstanceSpec,
  type InstanceStatus,
  type Node,
  type Resources,
} from "@grove/api";
import type { Repository } from "../resources/repository";
import { Keys } from "../store/store";
import {
  addResources,
  cpuFit,
  diskFit,
  memoryFit,
  pidsFit,
  subtractResources,
  zeroResources,
  type Filter,
  type NodeView,
  type PlacementRequest,
} from "../scheduler";
import { Informer, objectKey } from "./informer";
import { allocations, caughtUp } from "./placement-commit";
import { monotonicNow, nodeIsReady, type MonotonicClock } from "./node-lifecycle";
import { WorkQueue } from "./work-queue";

export const APP_LABEL = "grove.io/app";
/** Hash of the App's whole instance template: an instance without the current one is outdated. */
export const TEMPLATE_HASH_LABEL = "grove.io/template-hash";
/** Hash of the template without its resources: equal while only resources changed (resize in place). */
export const CONFIG_HASH_LABEL = "grove.io/config-hash";
export { REPLACES_LABEL };
const MAX_BACKOFF_MS = 60_000;
/** An instance that ran this long before it ended restarts without crash-loop backoff. */
export const BACKOFF_RESET_MS = 10 * 60_000;
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
}

/** The part of an instance's spec that comes from its App. */
export function instanceTemplate(app: App): Omit<InstanceSpec, "index" | "restarts" | "nodeName"> {
  const s = app.spec;
  return {
    app: app.metadata.name,
    appUid: app.metadata.uid ?? "",
    rootfs: s.rootfs ?? "",
    command: [...(s.command ?? [])],
    env: { ...(s.env ?? {}) },
    // With an image an unset working directory means the image's own.
    ...(s.workingDir !== undefined || !s.image ? { workingDir: s.workingDir ?? "/" } : {}),
    resources: normalizeResources(s.resources),
    restartPolicy: s.restartPolicy ?? DEFAULT_RESTART_POLICY,
    stopGracePeriodSeconds: s.stopGracePeriodSeconds ?? DEFAULT_STOP_GRACE_SECONDS,
    // Only when given, so that Apps without them keep their template hash.
    ...(s.ports?.length ? { ports: s.ports.map((p) => ({ ...p, protocol: p.protocol ?? "tcp" })) } : {}),
    ...(s.egress?.length ? { egress: s.egress.map((r) => ({ ...r })) } : {}),
    ...(s.security !== undefined ? { security: structuredClone(s.security) } : {}),
    ...(s.image ? { image: s.image } : {}),
    ...(s.imagePullSecret ? { imagePullSecret: s.imagePullSecret } : {}),
    ...(s.entrypoint?.length ? { entrypoint: [...s.entrypoint] } : {}),
    ...(s.placement ? { placement: structuredClone(s.placement) } : {}),
    ...(s.priority !== undefined ? { priority: s.priority } : {}),
    // The agent enforces stopAfter, so the instance carries it (replaceAfter stays on the App).
    ...(s.disconnect?.stopAfter !== undefined ? { disconnect: { stopAfter: s.disconnect.stopAfter } } : {}),
  };
}

function hashOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 10);
}

/** Hash of the whole template (unchanged from before resizes existed, so upgrades replace nothing). */
export function templateHash(app: App): string {
  const { appUid: _uid, ...rest } = instanceTemplate(app);
  return hashOf(rest);
}

/** Hash of the template without resources: what a resize in place must leave alone. */
export function configHash(app: App): string {
  const { appUid: _uid, resources: _res, ...rest } = instanceTemplate(app);
  return hashOf(rest);
}

/** The template labels of an App's instances. */
export function templateLabels(app: App): Record<string, string> {
  return { [TEMPLATE_HASH_LABEL]: templateHash(app), [CONFIG_HASH_LABEL]: configHash(app) };
}

/**
 * What changed between an instance and its App's template: nothing, only
 * resources, or more. An instance from before the config hash existed
 * counts as "other" when anything changed.
 */
export function templateChange(inst: Instance, app: App): "none" | "resources" | "other" {
  const labels = inst.metadata.labels ?? {};
  if (labels[TEMPLATE_HASH_LABEL] === templateHash(app)) return "none";
  const config = labels[CONFIG_HASH_LABEL];
  return config !== undefined && config === configHash(app) ? "resources" : "other";
}

/** The App's policy for resource-only changes. */
export function resourcesUpdatePolicy(app: App): "InPlace" | "Replace" {
  return app.spec.updatePolicy?.resources ?? DEFAULT_RESOURCES_UPDATE_POLICY;
}

/** "cpu 500m, memory 128Mi, pids 64". */
export function formatLimits(r: Resources): string {
  return `cpu ${formatCpu(r.cpuMillis)}, memory ${formatBytes(r.memoryBytes)}, pids ${r.pids}`;
}

/** Whether two sizes differ in what the agent enforces (cpu, memory, pids; disk is only scheduled). */
export function limitsDiffer(a: Resources, b: Resources): boolean {
  return a.cpuMillis !== b.cpuMillis || a.memoryBytes !== b.memoryBytes || a.pids !== b.pids;
}

const RESIZE_FILTERS: readonly Filter[] = [cpuFit, memoryFit, pidsFit, diskFit];

/**
 * Whether a bound instance can grow (or shrink) from `from` to `to` on its
 * node, given what the node has allocated (`allocated` includes `from`). A
 * dimension that does not grow always fits, even on an over-committed node;
 * the others go through the scheduler library's fit filters. On success,
 * the node's allocation afterwards.
 */
export function resizeFits(
  node: Node,
  allocated: Resources,
  from: Resources,
  to: Resources,
): { fits: true; allocated: Resources } | { fits: false; reason: string } {
  const others = subtractResources(allocated, from);
  const allocatable = node.status?.allocatable ?? zeroResources();
  // Dimensions that do not grow are left out of the check (0 on both sides).
  const grows = (k: "cpuMillis" | "memoryBytes" | "pids" | "diskBytes") => (to[k] ?? 0) > (from[k] ?? 0);
  const view: NodeView = {
    name: node.metadata.name,
    ready: true,
    unschedulable: false,
    allocatable,
    allocated: {
      cpuMillis: grows("cpuMillis") ? others.cpuMillis : 0,
      memoryBytes: grows("memoryBytes") ? others.memoryBytes : 0,
      pids: grows("pids") ? others.pids : 0,
      ...(others.diskBytes !== undefined ? { diskBytes: grows("diskBytes") ? others.diskBytes : 0 } : {}),
    },
    labels: node.metadata.labels ?? {},
  };
  const req: PlacementRequest = {
    id: "resize",
    app: "resize",
    namespace: "resize",
    resources: {
      cpuMillis: grows("cpuMillis") ? to.cpuMillis : 0,
      memoryBytes: grows("memoryBytes") ? to.memoryBytes : 0,
      pids: grows("pids") ? to.pids : 0,
      ...(to.diskBytes !== undefined ? { diskBytes: grows("diskBytes") ? to.diskBytes : 0 } : {}),
    },
  };
  const reasons: string[] = [];
  for (const f of RESIZE_FILTERS) {
    if (f.applies && !f.applies(req)) continue;
    const v = f.check(req, view);
    if (!v.fit) reasons.push(v.reason ? `${v.reason.subject}: ${v.reason.message}` : f.name);
  }
  if (reasons.length > 0) return { fits: false, reason: reasons.join(", ") };
  return { fits: true, allocated: addResources(others, to) };
}

/**
 * An instance's status as a resize in place from `from` to `to` begins: a
 * running one is Resizing until its agent reports the new limits applied.
 * When the container already has `to` (the App went back to the size a
 * refused or unfinished resize started from) its agent has nothing to do
 * and says nothing, so a Resizing or ResizeFailed left from before is cleared here.
 */
export function resizeStatus(status: InstanceStatus, from: Resources, to: Resources): InstanceStatus {
  if (status.state !== "Running" && status.state !== "Starting") return status;
  const applied = status.appliedResources ?? from;
  if (limitsDiffer(applied, to)) {
    return {
      ...status,
      reason: "Resizing",
      message: `resizing in place from ${formatLimits(applied)} to ${formatLimits(to)}`,
    };
  }
  if (status.reason !== "Resizing" && status.reason !== "ResizeFailed") return status;
  const { message: _m, ...rest } = status;
  return { ...rest, reason: status.state };
}

/** Strips the server-filled resourceVersion before an object is written. */
function stored<T extends { metadata: { resourceVersion?: string } }>(obj: T): T {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return { ...obj, metadata } as T;
}

export function isTerminal(inst: Instance): boolean {
  return inst.status !== undefined && TERMINAL_STATES.includes(inst.status.state);
}

/** Whether an ended instance should be replaced under its restart policy. */
export function shouldReplace(inst: Instance): boolean {
  const st = inst.status;
  if (!st || !TERMINAL_STATES.includes(st.state)) return false;
  switch (inst.spec.restartPolicy) {
    case "Always":
      return true;
    case "OnFailure":
      return !(st.state === "Exited" && (st.exitCode ?? 0) === 0);
    case "Never":
      return false;
  }
}

/** Consecutive short runs of this index (the backoff exponent); from before crashLoops existed: restarts. */
export function crashLoops(inst: Instance): number {
  return inst.spec.crashLoops ?? inst.spec.restarts;
}

/** Crash-loop backoff before replacing an ended instance: min(1 s * 2^crashLoops, 60 s). */
export function restartBackoffMs(inst: Instance): number {
  return Math.min(1000 * 2 ** crashLoops(inst), MAX_BACKOFF_MS);
}

/**
 * How long an ended instance ran (both ends from its node's clock, so no
 * clocks of different machines are compared); undefined when not known.
 */
export function ranForMs(inst: Instance): number | undefined {
  const started = inst.status?.startedAt ? Date.parse(inst.status.startedAt) : NaN;
  const finished = inst.status?.finishedAt ? Date.parse(inst.status.finishedAt) : NaN;
  return Number.isNaN(started) || Number.isNaN(finished) ? undefined : Math.max(0, finished - started);
}

/** The crash-loop count of an ended instance's successor: back to 0 after a long run. */
export function nextCrashLoops(inst: Instance, resetAfterMs = BACKOFF_RESET_MS): number {
  const ran = ranForMs(inst);
  return ran !== undefined && ran >= resetAfterMs ? 0 : crashLoops(inst) + 1;
}

/** The App's spec.disconnect.replaceAfter in milliseconds. */
export function replaceAfterMs(app: App): number {
  const d = app.spec.disconnect?.replaceAfter;
  return d === undefined ? DEFAULT_REPLACE_AFTER_MS : parseDurationMs(d);
}

/** The uid an instance replaces (its REPLACES_LABEL), if any. */
export function replacesUid(inst: Instance): string | undefined {
  return inst.metadata.labels?.[REPLACES_LABEL];
}

export function newInstance(app: App, index: number, restarts: number, now: number, name?: string): Instance {
  const ns = app.metadata.namespace ?? "default";
  return {
    apiVersion: API_VERSION,
    kind: "Instance",
    metadata: {
      name: name ?? `${app.metadata.name}-${index}`,
      namespace: ns,
      uid: randomUUID(),
      labels: { [APP_LABEL]: app.metadata.name, ...templateLabels(app) },
      creationTimestamp: new Date(now).toISOString(),
    },
    spec: { ...instanceTemplate(app), index, restarts },
    status: { state: "Pending", reason: "Unscheduled", message: "waiting for the scheduler" },
  };
}

export class AppController {
  private readonly queue: WorkQueue;
  private readonly monotonic: MonotonicClock;
  /** When (monotonic) we first saw an instance (by uid) ended, Unknown, or retired. */
  private readonly endedAt = new Map<string, number>();
  private readonly unknownAt = new Map<string, number>();
  private readonly retiredAt = new Map<string, number>();
  private readonly drainingAt = new Map<string, number>();
  private readonly retiredRetentionMs: number;
  private readonly backoffResetMs: number;

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
    this.retiredRetentionMs = opts.retiredRetentionMs ?? RETIRED_RETENTION_MS;
    this.backoffResetMs = opts.backoffResetMs ?? BACKOFF_RESET_MS;
    this.queue = new WorkQueue({ name: "app-controller", sync: (k) => this.sync(k), logger });
    apps.on((ev) => this.queue.add(objectKey(ev.object)));
    instances.on((ev) => {
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
      for (const i of this.instances.list()) {
        if (i.spec.nodeName === ev.object.metadata.name && (drainChanged || i.status?.state === "Unknown")) {
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

  /** Enqueues every known App (after the informers synced). */
  resyncAll(): void {
    for (const a of this.apps.list()) this.queue.add(objectKey(a));
  }

  stop(): void {
    this.queue.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private instancesOf(ns: string, appName: string): Instance[] {
    return this.instances.list().filter((i) => (i.metadata.namespace ?? "default") === ns && i.spec.app === appName);
  }

  async sync(key: string): Promise<void> {
    const [ns, name] = key.split("/") as [string, string];
    const app = this.apps.get(key);
    const owned = this.instancesOf(ns, name);

    if (!app) {
      // The App is gone: its instances go too (agents stop them when they
      // leave their desired set).
      for (const inst of owned) await this.deleteIgnoringMissing(inst);
      return;
    }
    // Instances left over from an earlier App of the same name.
    const mine: Instance[] = [];
    for (const inst of owned) {
      if (inst.spec.appUid !== app.metadata.uid) await this.deleteIgnoringMissing(inst);
      else mine.push(inst);
    }

    const want = app.spec.instances;
    const now = this.clock.now();
    const byIndex = new Map<number, Instance[]>();
    for (const inst of mine) {
      if (inst.spec.index >= want) {
        await this.deleteIgnoringMissing(inst); // scaled down
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
          !isTerminal(i) &&
          i.status?.state !== "Unknown" &&
          this.drainOf(i) !== undefined,
      ).length,
      max: app.spec.maxUnavailable ?? DEFAULT_MAX_UNAVAILABLE,
    };
    for (let index = 0; index < want; index++) {
      const group = byIndex.get(index);
      if (!group) {
        await this.repo.create(newInstance(app, index, 0, now));
        continue;
      }
      const inst = await this.settleIndex(key, app, group, now, budget);
      if (!inst) continue;
      const change = templateChange(inst, app);
      if (change === "resources" && resourcesUpdatePolicy(app) === "InPlace" && !isTerminal(inst)) {
        // Only the resources changed: resize where it runs, if it fits there.
        const refused = await this.resizeInPlace(inst, app);
        if (refused === undefined) continue;
        await this.replace(inst, app, inst.spec.restarts, now, refused);
        continue;
      }
      if (change !== "none") {
        // The App's template changed: replace the instance with the new one.
        await this.replace(inst, app, inst.spec.restarts, now);
        continue;
      }
      if (shouldReplace(inst)) {
        const uid = inst.metadata.uid ?? "";
        const delay = restartBackoffMs(inst) - this.since(this.endedAt, uid);
        if (delay > 0) {
          this.queue.addAfter(key, Math.ceil(delay));
          continue;
        }
        await this.replace(
          inst,
          app,
          inst.spec.restarts + 1,
          now,
          undefined,
          nextCrashLoops(inst, this.backoffResetMs),
        );
      }
    }

    await this.updateAppStatus(app, this.instancesOf(ns, name));
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
      if (isTerminal(inst)) {
        // It ended while its node was away (its agent reported the exit on return) and no
        // replacement has run yet: as an original that is back, it is in charge again. Its
        // replacements are cancelled and it is restarted in place per its restart policy.
        const retiredHere = ["Superseded", "Drained", "DrainTimeout"].includes(inst.status?.reason ?? "");
        const neverRan = (d: Instance) =>
          d.status?.state !== "Running" &&
          !d.status?.startedAt &&
          !isTerminal(d) &&
          d.spec.restarts === inst.spec.restarts;
        const later = descendants(uid);
        if (!retiredHere && later.every(neverRan)) {
          for (const d of later) {
            this.logger.info(
              { instance: objectKey(d), uid: d.metadata.uid, original: objectKey(inst), originalUid: uid },
              "original ended while its node was away and its replacement has not run: cancelling the replacement",
            );
            await this.deleteIgnoringMissing(d);
          }
          acted = true;
          continue;
        }
        // Superseded, or ended while away after its replacement ran: kept to be seen.
        const left = this.retiredRetentionMs - this.since(this.retiredAt, uid);
        if (left <= 0) {
          await this.deleteIgnoringMissing(inst);
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
          await this.deleteIgnoringMissing(inst);
          acted = true;
        }
        continue;
      }
      // Its node is back and its agent reported it, or it is being moved off a draining node.
      const later = descendants(uid);
      const running = later.find((d) => d.status?.state === "Running");
      const drain = this.drainOf(inst);
      if (running) {
        await this.supersede(inst, running, drain?.node);
      } else if (drain) {
        // Make before break: it keeps running until its replacement does, or the drain's timeout.
        const left = drain.timeoutMs - this.since(this.drainingAt, uid);
        if (left > 0) {
          this.queue.addAfter(key, Math.ceil(left));
          continue;
        }
        await this.supersede(inst, undefined, drain.node);
      } else {
        for (const d of later) {
          this.logger.info(
            { instance: objectKey(d), uid: d.metadata.uid, original: objectKey(inst), originalUid: uid },
            "original instance is back before its replacement ran: cancelling the replacement",
          );
          await this.deleteIgnoringMissing(d);
        }
      }
      acted = true;
    }
    if (acted) return undefined; // decide on the head once the informers show the result

    if (heads.length > 1) {
      // Two instances of one index that do not replace each other: keep one, a Running one if any.
      const rank = (i: Instance) => (i.status?.state === "Running" ? 0 : isTerminal(i) ? 2 : 1);
      const [keep, ...extra] = [...heads].sort((a, b) => rank(a) - rank(b));
      for (const d of extra) await this.deleteIgnoringMissing(d);
      return keep;
    }
    const head = heads[0];
    const drain = head && !isTerminal(head) && head.status?.state !== "Unknown" ? this.drainOf(head) : undefined;
    if (head && drain) {
      // Moving it off a draining node: a replacement first, within the App's budget.
      if (budget.moving >= budget.max) return undefined; // the next move starts when one finishes
      budget.moving++;
      this.since(this.drainingAt, head.metadata.uid ?? "");
      await this.createReplacement(
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
    await this.createReplacement(
      app,
      head,
      now,
      `replaces ${head.metadata.name} (${uid}) on node ${head.spec.nodeName ?? "?"}, which stopped answering`,
    );
    return undefined;
  }

  /** A new instance of `orig`'s index under its own name, standing in for `orig` (REPLACES_LABEL). */
  private async createReplacement(app: App, orig: Instance, now: number, why: string): Promise<void> {
    const uid = orig.metadata.uid ?? "";
    const next = newInstance(app, orig.spec.index, orig.spec.restarts, now);
    next.metadata.name = `${app.metadata.name}-${orig.spec.index}-${(next.metadata.uid ?? "").slice(0, 5)}`;
    next.metadata.labels = { ...next.metadata.labels, [REPLACES_LABEL]: uid };
    next.spec.crashLoops = crashLoops(orig);
    next.status = { state: "Pending", reason: "Unscheduled", message: `waiting for the scheduler: ${why}` };
    this.logger.info(
      { instance: objectKey(orig), uid, node: orig.spec.nodeName, replacement: next.metadata.name, why },
      "placing a replacement",
    );
    const created = await this.repo.create(next);
    // Its name is new each time: the next sync must see it, or it would place a second one.
    await caughtUp(this.instances, objectKey(created), created.metadata.resourceVersion ?? "0");
  }

  /**
   * Takes an original out of its node's desired set (the agent stops it):
   * its replacement `by` runs (its node came back, or a drain moved it), or
   * a drain's timeout passed first (no `by`).
   */
  private async supersede(orig: Instance, by: Instance | undefined, drainedNode?: string): Promise<void> {
    const node = orig.spec.nodeName ?? "?";
    const byName = by ? `${by.metadata.name} (${by.metadata.uid ?? "?"})` : "";
    const [why, reason] =
      drainedNode === undefined
        ? [`node ${node} stopped answering and ${byName} replaced it; stopped when the node came back`, "Superseded"]
        : by
          ? [`moved off node ${node} by a drain: ${byName} runs on node ${by.spec.nodeName ?? "?"}`, "Drained"]
          : [`node ${node} is draining and no replacement ran within the drain's timeout`, "DrainTimeout"];
    this.logger.info(
      { instance: objectKey(orig), uid: orig.metadata.uid, node, replacement: by?.metadata.name, reason },
      "stopping an original instance",
    );
    try {
      await this.repo.updateStatus("Instance", orig, (i) => {
        const cur = i as Instance;
        if (cur.metadata.uid !== orig.metadata.uid || isTerminal(cur) || cur.status?.state === "Unknown") return false;
        cur.status = {
          ...cur.status,
          state: "Exited",
          reason,
          message: why,
          finishedAt: new Date(this.clock.now()).toISOString(),
        };
      });
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }

  /**
   * Gives a live instance the App's new resources in place (same uid, same
   * node). Returns undefined when done, or why it cannot be (the caller then
   * replaces the instance). Throws to retry when the node or the instance
   * changed under it.
   */
  private async resizeInPlace(inst: Instance, app: App): Promise<string | undefined> {
    const from = inst.spec.resources;
    const to = instanceTemplate(app).resources;
    const key = Keys.object("instances", inst.metadata.namespace, inst.metadata.name);
    const next: Instance = {
      ...inst,
      metadata: { ...inst.metadata, labels: { ...inst.metadata.labels, ...templateLabels(app) } },
      spec: { ...inst.spec, resources: to },
      ...(inst.status ? { status: resizeStatus(inst.status, from, to) } : {}),
    };
    const compares = [{ key, modRevision: inst.metadata.resourceVersion ?? "0" }];
    const ops: Array<{ type: "put"; key: string; value: unknown }> = [{ type: "put", key, value: stored(next) }];
    const nodeName = inst.spec.nodeName;
    let nodeKey: string | undefined;
    if (nodeName) {
      // Bound: the new size must fit on the node, and the node's allocation
      // is rewritten under its revision, as the scheduler's bindings are.
      const node = this.nodes.get(nodeName);
      if (!node) return `its node ${nodeName} is gone`;
      const allocated = allocations(this.instances.list()).get(nodeName) ?? zeroResources();
      const fit = resizeFits(node, allocated, from, to);
      if (!fit.fits) return `${formatLimits(to)} does not fit on node ${nodeName} (${fit.reason})`;
      nodeKey = Keys.object("nodes", undefined, nodeName);
      compares.push({ key: nodeKey, modRevision: node.metadata.resourceVersion ?? "0" });
      ops.push({
        type: "put",
        key: nodeKey,
        value: stored({ ...node, status: { ...node.status, allocated: fit.allocated } }),
      });
    }
    const r = await this.repo.store.txn(compares, ops);
    if (!r.succeeded) throw new Error(`${objectKey(inst)} or its node changed while resizing it in place; retrying`);
    this.logger.info(
      { instance: objectKey(inst), uid: inst.metadata.uid, node: nodeName, from, to },
      "resized instance in place",
    );
    // The next decision (another instance on the same node) plans on what this one wrote.
    await caughtUp(this.instances, objectKey(inst), r.revision);
    if (nodeName) await caughtUp(this.nodes, nodeName, r.revision);
    return undefined;
  }

  private async replace(
    old: Instance,
    app: App,
    restarts: number,
    now: number,
    why?: string,
    loops = crashLoops(old),
  ): Promise<void> {
    const next = newInstance(app, old.spec.index, restarts, now, old.metadata.name);
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    next.spec.crashLoops = loops;
    // Still standing in for an original on a node that is away.
    const replaces = replacesUid(old);
    if (replaces !== undefined) next.metadata.labels = { ...next.metadata.labels, [REPLACES_LABEL]: replaces };
    if (why !== undefined) {
      next.status = {
        state: "Pending",
        reason: "Unscheduled",
        message: `waiting for the scheduler: replaces ${old.metadata.uid ?? old.metadata.name}, not resized in place: ${why}`,
      };
    }
    this.logger.info(
      { instance: objectKey(old), oldUid: old.metadata.uid, restarts, state: old.status?.state, why },
      why !== undefined ? "replacing instance: cannot resize it in place" : "replacing instance",
    );
    await this.repo.replace(next);
  }

  private async deleteIgnoringMissing(inst: Instance): Promise<void> {
    try {
      await this.repo.delete("Instance", inst.metadata.namespace ?? "default", inst.metadata.name);
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }

  private async updateAppStatus(app: App, all: Instance[]): Promise<void> {
    // One instance per index counts: the head (what nothing replaces). An
    // original on a lost node or one superseded is not counted.
    const replaced = new Set(all.flatMap((i) => replacesUid(i) ?? []));
    const instances = all.filter((i) => !replaced.has(i.metadata.uid ?? ""));
    const running = instances.filter((i) => i.status?.state === "Running").length;
    const pending = instances.filter((i) => !i.status || ["Pending", "Starting"].includes(i.status.state)).length;
    const unknown = all.filter((i) => i.status?.state === "Unknown").length;
    const status = {
      observedGeneration: app.metadata.generation ?? 1,
      instances: instances.length,
      running,
      pending,
      ...(unknown > 0 ? { unknown } : {}),
    };
    const cur = app.status ?? {};
    if (
      cur.observedGeneration === status.observedGeneration &&
      cur.instances === status.instances &&
      cur.running === status.running &&
      cur.pending === status.pending &&
      (cur.unknown ?? 0) === unknown
    ) {
      return;
    }
    try {
      await this.repo.updateStatus("App", app, (a) => {
        (a as App).status = status;
      });
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }
}
