// The App controller's writes: each change it makes to Instances and to its
// App's status, one method per action, with the log line that explains it.
// The decisions are app-controller.ts's; these only carry them out.
import type { Logger } from "pino";
import {
  GroveError,
  InstanceReason,
  REPLACES_LABEL,
  ROLLOUT_LABEL,
  crashLoops,
  instanceTemplate,
  isFinished,
  isReady,
  newInstance,
  replacesUid,
  templateLabels,
  type App,
  type AppCondition,
  type Instance,
  type Node,
  type RolloutState,
} from "@grove/api";
import type { Repository } from "../resources/repository";
import { resizeWrite } from "../scheduling/resize";
import { Keys, type TxnCompare, type TxnOp } from "../store/store";
import { Informer, objectKey } from "./informer";

/** A rolling update's progress, for the App's status (rollOut in rollout-step.ts). */
export interface RolloutStatus {
  revision: string;
  updated: number;
  available: number;
  condition: AppCondition;
  /** status.rollout: revisions, progress clock, promotion, last rollback. */
  state: RolloutState;
}

/**
 * Instances created per etcd transaction: below etcd's --max-txn-ops (128;
 * the leader fence adds a compare) and, with CREATE_BATCH_BYTES, well below
 * its 1.5 MiB request limit.
 */
export const CREATE_BATCH_MAX = 100;
const CREATE_BATCH_BYTES = 512 * 1024;

export class AppWrites {
  constructor(
    private readonly repo: Repository,
    private readonly instances: Informer<Instance>,
    private readonly nodes: Informer<Node>,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  /**
   * Creates an App's missing indexes in a few transactions (one per
   * CREATE_BATCH_MAX instances) instead of one write each: the scheduler then
   * finds them pending together and binds them in one pass. Each key is
   * guarded by "does not exist yet" and each transaction by the leader fence
   * (the repository's store is the fenced view), so a batch is all or nothing
   * and a replica that stopped leading writes none. Waits until the informer
   * has seen the last batch: the next sync must not create them again.
   */
  async createMissing(app: App, indexes: readonly number[], now: number): Promise<void> {
    let compares: TxnCompare[] = [];
    let ops: TxnOp<Instance>[] = [];
    let bytes = 0;
    let last: { key: string; revision: string } | undefined;
    const flush = async () => {
      if (ops.length === 0) return;
      const r = await this.repo.store.txn(compares, ops);
      if (!r.succeeded) {
        throw new GroveError("Conflict", `${objectKey(app)}: an instance it creates exists already; retrying`);
      }
      const lastOp = ops[ops.length - 1]!;
      if (lastOp.type === "put") last = { key: objectKey(lastOp.value), revision: r.revision };
      this.logger.info({ app: objectKey(app), created: ops.length }, "created instances");
      compares = [];
      ops = [];
      bytes = 0;
    };
    for (const index of indexes) {
      const inst = newInstance(app, index, 0, now);
      inst.metadata.generation = 1; // as Repository.create sets it
      const key = Keys.object("instances", inst.metadata.namespace, inst.metadata.name);
      const size = JSON.stringify(inst).length;
      if (ops.length >= CREATE_BATCH_MAX || (ops.length > 0 && bytes + size > CREATE_BATCH_BYTES)) await flush();
      compares.push({ key, modRevision: "0" });
      ops.push({ type: "put", key, value: inst });
      bytes += size;
    }
    await flush();
    if (last) await this.instances.waitFor(last.key, last.revision);
  }

  /** A new instance of `orig`'s index under its own name, standing in for `orig` (REPLACES_LABEL). */
  async createReplacement(app: App, orig: Instance, now: number, why: string): Promise<void> {
    const uid = orig.metadata.uid ?? "";
    const next = newInstance(app, orig.spec.index, orig.spec.restarts, now);
    next.metadata.name = `${app.metadata.name}-${orig.spec.index}-${(next.metadata.uid ?? "").slice(0, 5)}`;
    next.metadata.labels = { ...next.metadata.labels, [REPLACES_LABEL]: uid };
    next.spec.crashLoops = crashLoops(orig);
    next.status = {
      state: "Pending",
      reason: InstanceReason.Unscheduled,
      message: `waiting for the scheduler: ${why}`,
    };
    this.logger.info(
      { instance: objectKey(orig), uid, node: orig.spec.nodeName, replacement: next.metadata.name, why },
      "placing a replacement",
    );
    const created = await this.repo.create(next);
    // Its name is new each time: the next sync must see it, or it would place a second one.
    await this.instances.waitFor(objectKey(created), created.metadata.resourceVersion ?? "0");
  }

  /** A rolling update's new-template instance for `old`'s index, started next to it (make before break). */
  async createSurge(app: App, old: Instance, now: number): Promise<void> {
    const next = newInstance(app, old.spec.index, old.spec.restarts, now);
    next.metadata.name = `${app.metadata.name}-${old.spec.index}-${(next.metadata.uid ?? "").slice(0, 5)}`;
    next.metadata.labels = {
      ...next.metadata.labels,
      [REPLACES_LABEL]: old.metadata.uid ?? "",
      [ROLLOUT_LABEL]: "true",
    };
    next.status = {
      state: "Pending",
      reason: InstanceReason.Unscheduled,
      message: `waiting for the scheduler: a rolling update replaces ${old.metadata.name} (${old.metadata.uid ?? "?"})`,
    };
    this.logger.info(
      { instance: objectKey(old), uid: old.metadata.uid, surge: next.metadata.name },
      "rolling update: starting a new-template instance",
    );
    const created = await this.repo.create(next);
    // Its name is new each time: the next sync must see it, or it would start a second one.
    await this.instances.waitFor(objectKey(created), created.metadata.resourceVersion ?? "0");
  }

  /** Stops a rolling update's old instance: its new-template one `by` is available. */
  async retire(old: Instance, by: Instance): Promise<void> {
    const why = `replaced by ${by.metadata.name} (${by.metadata.uid ?? "?"}) of the App's current template`;
    this.logger.info(
      { instance: objectKey(old), uid: old.metadata.uid, by: by.metadata.name },
      "rolling update: stopping an old instance",
    );
    try {
      await this.repo.updateStatus("Instance", old, (i) => {
        const cur = i as Instance;
        if (cur.metadata.uid !== old.metadata.uid || isFinished(cur)) return false;
        cur.status = {
          ...cur.status,
          state: "Exited",
          reason: InstanceReason.RolledOut,
          message: why,
          finishedAt: new Date(this.now()).toISOString(),
        };
      });
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }

  /**
   * Takes an original out of its node's desired set (the agent stops it):
   * its replacement `by` runs (its node came back, or a drain moved it), or
   * a drain's timeout passed first (no `by`).
   */
  async supersede(orig: Instance, by: Instance | undefined, drainedNode?: string): Promise<void> {
    const node = orig.spec.nodeName ?? "?";
    const byName = by ? `${by.metadata.name} (${by.metadata.uid ?? "?"})` : "";
    const [why, reason] =
      drainedNode === undefined
        ? [
            `node ${node} stopped answering and ${byName} replaced it; stopped when the node came back`,
            InstanceReason.Superseded,
          ]
        : by
          ? [
              `moved off node ${node} by a drain: ${byName} runs on node ${by.spec.nodeName ?? "?"}`,
              InstanceReason.Drained,
            ]
          : [`node ${node} is draining and no replacement ran within the drain's timeout`, InstanceReason.DrainTimeout];
    this.logger.info(
      { instance: objectKey(orig), uid: orig.metadata.uid, node, replacement: by?.metadata.name, reason },
      "stopping an original instance",
    );
    try {
      await this.repo.updateStatus("Instance", orig, (i) => {
        const cur = i as Instance;
        if (cur.metadata.uid !== orig.metadata.uid || isFinished(cur) || cur.status?.state === "Unknown") return false;
        cur.status = {
          ...cur.status,
          state: "Exited",
          reason,
          message: why,
          finishedAt: new Date(this.now()).toISOString(),
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
  async resizeInPlace(inst: Instance, app: App): Promise<string | undefined> {
    const nodeName = inst.spec.nodeName;
    const to = instanceTemplate(app).resources;
    const node = nodeName ? this.nodes.get(nodeName) : undefined;
    const write = resizeWrite(inst, to, templateLabels(app), node, this.instances.list());
    if (typeof write === "string") return write;
    const r = await this.repo.store.txn(write.compares, write.ops);
    if (!r.succeeded) throw new Error(`${objectKey(inst)} or its node changed while resizing it in place; retrying`);
    this.logger.info(
      { instance: objectKey(inst), uid: inst.metadata.uid, node: nodeName, from: inst.spec.resources, to },
      "resized instance in place",
    );
    // The next decision (another instance on the same node) plans on what this one wrote.
    await this.instances.waitFor(objectKey(inst), r.revision);
    if (nodeName) await this.nodes.waitFor(nodeName, r.revision);
    return undefined;
  }

  async replace(
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
    // A rolling update's surge stays one (its old instance still waits for it).
    const surge = old.metadata.labels?.[ROLLOUT_LABEL];
    if (surge !== undefined) next.metadata.labels = { ...next.metadata.labels, [ROLLOUT_LABEL]: surge };
    if (why !== undefined) {
      next.status = {
        state: "Pending",
        reason: InstanceReason.Unscheduled,
        message: `waiting for the scheduler: replaces ${old.metadata.uid ?? old.metadata.name}, not resized in place: ${why}`,
      };
    }
    this.logger.info(
      { instance: objectKey(old), oldUid: old.metadata.uid, restarts, state: old.status?.state, why },
      why !== undefined ? "replacing instance: cannot resize it in place" : "replacing instance",
    );
    await this.repo.replace(next);
  }

  async deleteIgnoringMissing(inst: Instance): Promise<void> {
    try {
      await this.repo.delete("Instance", inst.metadata.namespace ?? "default", inst.metadata.name);
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }

  async updateAppStatus(app: App, all: Instance[], rollout: RolloutStatus): Promise<void> {
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
      updated: rollout.updated,
      ready: all.filter((i) => isReady(i)).length,
      available: rollout.available,
      revision: rollout.revision,
      conditions: [rollout.condition],
      rollout: rollout.state,
    };
    const cur = app.status ?? {};
    if (JSON.stringify({ ...cur, unknown: cur.unknown ?? 0 }) === JSON.stringify({ ...status, unknown })) return;
    try {
      await this.repo.updateStatus("App", app, (a) => {
        const fresh = (a as App).status?.rollout;
        // `grove rollout promote` wrote meanwhile (status is shared with it): keep its promotion.
        const promotedMeanwhile =
          fresh?.promoted === true && !status.rollout.promoted && fresh.templateHash === status.rollout.templateHash;
        (a as App).status = promotedMeanwhile
          ? { ...status, rollout: { ...status.rollout, promoted: true, progressedAt: fresh.progressedAt } }
          : status;
      });
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }
}
