// The Task controller: runs each Task's attempts, one Instance after the
// other, until one succeeds or the retries are used up, then deletes the Task
// and its attempts once its TTL has passed. Handlers only enqueue the Task's
// key; sync(key) reads the Task and its attempts from the informers, asks
// decideTask (task-decisions.ts) and carries the decision out, idempotently.
//
// Attempts are placed by the scheduler and run by agents like an App's
// instances (the App controller leaves instances with spec.task alone). They
// have restartPolicy Never and leave their node's desired set once they end;
// their logs stay on the node while the attempt exists (the agent gateway
// names them in DesiredInstances.keep_logs), so `grove logs task/NAME` works
// until the TTL deletes them. Waits (the retry backoff, the TTL) are timed on
// this controller's monotonic clock from when it first saw the state: a new
// leader starts them afresh, which can only make them longer.
import type { Logger } from "pino";
import {
  GroveError,
  attemptOf,
  isFinished,
  isTaskDone,
  taskAttempt,
  type App,
  type Instance,
  type Node,
  type Task,
} from "@grove/api";
import { WorkQueue } from "@grove/common";
import type { Repository } from "../resources/repository";
import { Informer, objectKey } from "./informer";
import { attemptsByTask, instancesOnNode, type CacheIndex } from "./cache-index";
import { monotonicNow, type MonotonicClock } from "./node-lifecycle";
import { decideTask, sameTaskStatus } from "./task-decisions";
import { syncInTrace } from "../observability/trace-handoffs";

export interface TaskClock {
  /** Wall clock, for timestamps written into objects. */
  now(): number;
  /** Monotonic clock, for every wait (default performance.now()). */
  monotonic?: MonotonicClock;
}

export class TaskController {
  private readonly queue: WorkQueue;
  private readonly monotonic: MonotonicClock;
  /** When (monotonic) this controller first saw an attempt (by uid) ended, or a Task (by uid) done. */
  private readonly endedAt = new Map<string, number>();
  private readonly doneAt = new Map<string, number>();
  private readonly byTask: CacheIndex<Instance>;
  private readonly onNode: CacheIndex<Instance>;

  constructor(
    private readonly repo: Repository,
    private readonly tasks: Informer<Task>,
    private readonly instances: Informer<Instance>,
    private readonly apps: Informer<App>,
    private readonly nodes: Informer<Node>,
    private readonly logger: Logger,
    private readonly clock: TaskClock = { now: () => Date.now() },
  ) {
    this.monotonic = clock.monotonic ?? monotonicNow;
    this.byTask = attemptsByTask(instances);
    this.onNode = instancesOnNode(instances);
    this.queue = new WorkQueue({ name: "task-controller", sync: syncInTrace("tasks", (k) => this.sync(k)), logger });
    tasks.on((ev) => {
      if (ev.type === "deleted") this.doneAt.delete(ev.object.metadata.uid ?? "");
      this.queue.add(objectKey(ev.object));
    });
    instances.on((ev) => {
      const task = ev.object.spec.task;
      if (task === undefined) return;
      if (ev.type === "deleted") this.endedAt.delete(ev.object.metadata.uid ?? "");
      this.queue.add(`${ev.object.metadata.namespace ?? "default"}/${task}`);
    });
    // An attempt whose node is deleted will never end by itself.
    nodes.on((ev) => {
      if (ev.type !== "deleted") return;
      for (const i of this.onNode.of(ev.object.metadata.name)) {
        if (i.spec.task !== undefined) {
          this.queue.add(`${i.metadata.namespace ?? "default"}/${i.spec.task}`);
        }
      }
    });
  }

  /** Enqueues every known Task (after the informers synced). */
  resyncAll(): void {
    for (const t of this.tasks.list()) this.queue.add(objectKey(t));
  }

  stop(): void {
    this.queue.shutdown();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private attemptsOf(ns: string, task: string): Instance[] {
    return this.byTask.of(`${ns}/${task}`);
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

  async sync(key: string): Promise<void> {
    const [ns, name] = key.split("/") as [string, string];
    const task = this.tasks.get(key);
    const owned = this.attemptsOf(ns, name);
    if (!task) {
      // The Task is gone (deleted, or its TTL passed): so are its attempts; agents
      // stop those that run and delete their logs.
      for (const inst of owned) await this.deleteInstance(inst);
      return;
    }
    const mine: Instance[] = [];
    for (const inst of owned) {
      // Left over from an earlier Task of the same name.
      if (inst.spec.appUid !== task.metadata.uid) await this.deleteInstance(inst);
      else mine.push(inst);
    }
    const latest = mine.reduce<Instance | undefined>(
      (a, b) => (a === undefined || attemptOf(b) > attemptOf(a) ? b : a),
      undefined,
    );
    const fromApp = task.spec.fromApp;
    const app = fromApp !== undefined ? this.apps.get(`${ns}/${fromApp}`) : undefined;
    const decision = decideTask({
      task,
      attempts: mine,
      appExists: fromApp === undefined || app !== undefined,
      nodeGone: (i) => i.spec.nodeName !== undefined && this.nodes.get(i.spec.nodeName) === undefined,
      sinceAttemptEndedMs: latest && isFinished(latest) ? this.since(this.endedAt, latest.metadata.uid ?? "") : 0,
      sinceDoneMs: isTaskDone(task.status?.phase) ? this.since(this.doneAt, task.metadata.uid ?? "") : 0,
      now: this.clock.now(),
    });

    if (decision.expire) {
      this.logger.info({ task: key, uid: task.metadata.uid }, "task's ttlSecondsAfterFinished passed: deleting it");
      await this.deleteTask(task);
      return;
    }
    if (decision.create !== undefined) {
      const inst = taskAttempt(task, app, decision.create, this.clock.now());
      this.logger.info(
        { task: key, attempt: decision.create, instance: inst.metadata.name },
        "starting a task attempt",
      );
      const created = await this.repo.create(inst);
      // The next sync must see it, or it would start the same attempt again.
      await this.instances.waitFor(objectKey(created), created.metadata.resourceVersion ?? "0");
    }
    if (!sameTaskStatus(task.status, decision.status)) {
      if (isTaskDone(decision.status.phase)) {
        this.logger.info(
          {
            task: key,
            phase: decision.status.phase,
            attempts: decision.status.attempts,
            exitCode: decision.status.exitCode,
          },
          `task ${decision.status.phase === "Succeeded" ? "succeeded" : "failed"}: ${decision.status.message ?? ""}`,
        );
      }
      await this.writeStatus(task, decision.status);
    }
    if (decision.requeueAfterMs !== undefined) this.queue.addAfter(key, Math.ceil(decision.requeueAfterMs));
  }

  private async writeStatus(task: Task, status: Task["status"]): Promise<void> {
    try {
      await this.repo.updateStatus("Task", task, (t) => {
        const cur = t as Task;
        // Another Task of the same name, or one already done: leave it.
        if (cur.metadata.uid !== task.metadata.uid || isTaskDone(cur.status?.phase)) return false;
        cur.status = status;
      });
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }

  private async deleteTask(task: Task): Promise<void> {
    try {
      await this.repo.delete(
        "Task",
        task.metadata.namespace ?? "default",
        task.metadata.name,
        task.metadata.resourceVersion,
      );
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }

  private async deleteInstance(inst: Instance): Promise<void> {
    try {
      await this.repo.delete("Instance", inst.metadata.namespace ?? "default", inst.metadata.name);
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }
}
