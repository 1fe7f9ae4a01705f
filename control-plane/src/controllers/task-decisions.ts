// The Task controller's decisions, pure: from a Task, its attempts and how
// long (monotonic) things have been as they are, what to do next and what the
// Task's status is. task-controller.ts feeds it from its informers and clock
// and carries out the result; the unit tests drive it directly.
//
// One attempt runs at a time. An attempt that exited 0 makes the Task
// Succeeded. A failed one (non-zero exit, a signal, OOM-killed, could not
// start, preempted, its node deleted, its Instance deleted) is followed by
// the next attempt after retryBackoffMs while attempts <= spec.retries;
// otherwise the Task is Failed with the last attempt's exit code. A Succeeded
// or Failed Task keeps its attempts (and so their logs on their nodes) for
// spec.ttlSecondsAfterFinished, then it is deleted, and its attempts with it.
import {
  TaskReason,
  attemptOf,
  attemptSucceeded,
  isFinished,
  isTaskDone,
  retryBackoffMs,
  taskRetries,
  taskTtlMs,
  type Instance,
  type Task,
  type TaskStatus,
} from "@grove/api";

export interface TaskInput {
  task: Task;
  /** The Task's attempts that exist (any order). */
  attempts: readonly Instance[];
  /** spec.fromApp's App exists (always true without fromApp). */
  appExists: boolean;
  /** Whether an attempt's node was deleted (its attempt will never report again). */
  nodeGone(inst: Instance): boolean;
  /** Monotonic ms since the controller first saw the latest attempt ended (0 the first time). */
  sinceAttemptEndedMs: number;
  /** Monotonic ms since the controller first saw the Task Succeeded or Failed (0 the first time). */
  sinceDoneMs: number;
  /** Wall clock, for the timestamps written into the status. */
  now: number;
}

export interface TaskDecision {
  /** The status the Task should have (written when it differs). */
  status: TaskStatus;
  /** Create this attempt (its number). */
  create?: number;
  /** Look again after this long (a retry backoff or the TTL). */
  requeueAfterMs?: number;
  /** The TTL passed: delete the Task (its attempts follow). */
  expire?: boolean;
}

/** How an ended attempt ended, in words: "exit code 3", "signal 9", "OOMKilled". */
export function endedHow(inst: Instance | undefined): string {
  const st = inst?.status;
  if (!inst || !st) return "its Instance was deleted";
  const parts: string[] = [];
  if (st.exitCode !== undefined) parts.push(`exit code ${st.exitCode}`);
  if (st.signal !== undefined) parts.push(`signal ${st.signal}`);
  if (st.reason && !["Exited", "Failed", "Error", "Completed"].includes(st.reason)) parts.push(st.reason);
  if (parts.length === 0) parts.push(st.state);
  return parts.join(", ") + (st.message && st.reason !== "Error" ? `: ${st.message}` : "");
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function decideTask(input: TaskInput): TaskDecision {
  const { task, now } = input;
  const cur = task.status;
  const generation = task.metadata.generation ?? 1;
  if (cur && isTaskDone(cur.phase)) {
    const left = taskTtlMs(task) - input.sinceDoneMs;
    return left <= 0 ? { status: cur, expire: true } : { status: cur, requeueAfterMs: left };
  }
  const sorted = [...input.attempts].sort((a, b) => attemptOf(a) - attemptOf(b));
  const latest = sorted[sorted.length - 1];
  // Attempts counted so far: the status remembers one whose Instance was deleted.
  const started = Math.max(cur?.attempts ?? 0, latest ? attemptOf(latest) : 0);
  const first = sorted[0];
  const base: TaskStatus = {
    phase: "Pending",
    attempts: started,
    observedGeneration: generation,
    ...(cur?.startTime
      ? { startTime: cur.startTime }
      : first?.status?.startedAt
        ? { startTime: first.status.startedAt }
        : {}),
  };
  const next = (attempt: number): TaskDecision =>
    input.appExists
      ? {
          create: attempt,
          status: {
            ...base,
            attempts: attempt,
            instance: `${task.metadata.name}-t${attempt}`,
            reason: TaskReason.Scheduling,
            message: `attempt ${attempt} waits for the scheduler`,
          },
        }
      : {
          status: {
            ...base,
            phase: "Failed",
            reason: TaskReason.AppNotFound,
            message: `App ${task.spec.fromApp ?? "?"} (spec.fromApp) does not exist; attempt ${attempt} cannot start`,
            completionTime: iso(now),
          },
        };

  if (started === 0) return next(1);
  const current = latest && attemptOf(latest) === started ? latest : undefined;
  if (current && !isFinished(current) && !input.nodeGone(current)) {
    const st = current.status;
    const withInstance = { ...base, instance: current.metadata.name };
    if (st?.state === "Running") return { status: { ...withInstance, phase: "Running", reason: TaskReason.Running } };
    if (st?.state === "Unknown") {
      return {
        status: {
          ...withInstance,
          phase: "Running",
          reason: TaskReason.NodeNotReady,
          message: `node ${current.spec.nodeName ?? "?"} of attempt ${started} stopped answering; waiting for it`,
        },
      };
    }
    return {
      status: {
        ...withInstance,
        reason: TaskReason.Scheduling,
        message: `attempt ${started}: ${st?.state ?? "Pending"}${st?.message ? ` (${st.message})` : ""}`,
      },
    };
  }

  // The current attempt ended (or is gone, or its node is).
  const st = current?.status;
  const ended = {
    ...base,
    ...(current ? { instance: current.metadata.name } : {}),
    ...(st?.exitCode !== undefined ? { exitCode: st.exitCode } : {}),
    ...(st?.signal !== undefined ? { signal: st.signal } : {}),
  };
  if (current && attemptSucceeded(current)) {
    return {
      status: {
        ...ended,
        phase: "Succeeded",
        reason: TaskReason.Completed,
        message: `attempt ${started} exited with code 0`,
        completionTime: st?.finishedAt ?? iso(now),
      },
    };
  }
  const how =
    current && !isFinished(current) ? `its node ${current.spec.nodeName ?? "?"} was deleted` : endedHow(current);
  const allowed = taskRetries(task) + 1;
  if (started >= allowed) {
    return {
      status: {
        ...ended,
        phase: "Failed",
        reason: TaskReason.RetriesExhausted,
        message: `attempt ${started} of ${allowed} failed (${how})`,
        completionTime: st?.finishedAt ?? iso(now),
      },
    };
  }
  const wait = retryBackoffMs(started + 1) - input.sinceAttemptEndedMs;
  if (wait > 0) {
    return {
      status: {
        ...ended,
        reason: TaskReason.Backoff,
        message: `attempt ${started} of ${allowed} failed (${how}); attempt ${started + 1} starts in ${Math.ceil(wait / 1000)}s`,
      },
      requeueAfterMs: wait,
    };
  }
  return next(started + 1);
}

/** Whether two statuses say the same (the controller writes only a change). */
export function sameTaskStatus(a: TaskStatus | undefined, b: TaskStatus): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b);
}
