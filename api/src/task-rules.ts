// Rules about Tasks that the control plane, the CLI and manifest validation
// read the same way: what a valid Task is beyond its schema, how an attempt's
// Instance looks, and which attempt an Instance is.
//
// An attempt is an Instance named <task>-t<attempt> (1, 2, ...): spec.task is
// the Task's name, spec.app and spec.appUid the Task's name and uid (so the
// scheduler groups a Task's attempts as it groups an App's instances), index
// 0, restarts the attempts before it, restartPolicy Never (an attempt that
// ended stays ended; the Task controller decides whether another one runs).
// App instance names end in -<index> or -<index>-<5 hex>, never in -t<digits>,
// so an attempt's name cannot be an App instance's.
import { randomUUID } from "node:crypto";
import { appSourceProblems, type SourceProblem } from "./app-source";
import { DEFAULT_STOP_GRACE_SECONDS, normalizeResources } from "./defaults";
import { instanceTemplate, isFinished } from "./instance-rules";
import { InstanceReason } from "./reasons";
import { API_VERSION, type App, type Instance, type InstanceSpec } from "./schemas";
import type { Task, TaskPhase } from "./task-schema";

/** Label of a Task's attempt: the Task's name. */
export const TASK_LABEL = "grove.io/task";
/** Label of a Task's attempt: its number (1 for the first). */
export const ATTEMPT_LABEL = "grove.io/attempt";
/** How long a finished Task, its attempts and their logs are kept by default. */
export const DEFAULT_TASK_TTL_SECONDS = 3600;
/** Longest Task name: its attempts' names (<task>-t<attempt>, up to -t101) must stay within 63 characters. */
export const MAX_TASK_NAME_LENGTH = 58;
/** The longest wait between a failed attempt and the next (the wait doubles from 1 s). */
const MAX_RETRY_BACKOFF_MS = 60_000;

/** Why a Task is in its phase (status.reason). Stable values clients may switch on. */
export const TaskReason = {
  /** Pending: its attempt waits for the scheduler (the message is the attempt's). */
  Scheduling: "Scheduling",
  /** Pending: an attempt failed and the next one starts after the retry backoff. */
  Backoff: "Backoff",
  /** Running: its attempt's process runs. */
  Running: "Running",
  /** Running: its attempt's node stopped answering; the attempt may still run there. */
  NodeNotReady: "NodeNotReady",
  /** Succeeded: an attempt exited with code 0. */
  Completed: "Completed",
  /** Failed: the last allowed attempt (spec.retries + 1) failed; exitCode and message say how. */
  RetriesExhausted: "RetriesExhausted",
  /** Failed: spec.fromApp names an App that no longer exists when an attempt is to start. */
  AppNotFound: "AppNotFound",
} as const;
export type TaskReason = (typeof TaskReason)[keyof typeof TaskReason];

export function isTaskDone(phase: TaskPhase | undefined): boolean {
  return phase === "Succeeded" || phase === "Failed";
}

/** Whether an Instance is a Task's attempt (not an App's instance). */
export function isTaskInstance(inst: Pick<Instance, "spec">): boolean {
  return inst.spec.task !== undefined;
}

/** The attempt number of a Task's Instance (1 for the first). */
export function attemptOf(inst: Instance): number {
  return inst.spec.restarts + 1;
}

export function taskAttemptName(task: string, attempt: number): string {
  return `${task}-t${attempt}`;
}

export function taskRetries(task: Task): number {
  return task.spec.retries ?? 0;
}

export function taskTtlMs(task: Task): number {
  return (task.spec.ttlSecondsAfterFinished ?? DEFAULT_TASK_TTL_SECONDS) * 1000;
}

/** The wait before attempt `next` (2, 3, ...) once the one before failed: 1 s, 2 s, 4 s, ... at most 60 s. */
export function retryBackoffMs(next: number): number {
  return Math.min(1000 * 2 ** Math.max(0, next - 2), MAX_RETRY_BACKOFF_MS);
}

/** Whether a finished attempt succeeded: it exited by itself with code 0. */
export function attemptSucceeded(inst: Instance): boolean {
  const st = inst.status;
  return isFinished(inst) && st?.state === "Exited" && (st.exitCode ?? 0) === 0 && st.signal === undefined;
}

/**
 * What a Task's schema cannot say: a source (fromApp, or exactly one of
 * rootfs and image as for an App), a command with fromApp, no empty argv[0],
 * a name short enough for its attempts' names.
 */
export function taskProblems(value: unknown): SourceProblem[] {
  if (typeof value !== "object" || value === null) return [];
  const v = value as { metadata?: { name?: unknown }; spec?: unknown };
  const problems: SourceProblem[] = [];
  const name = v.metadata?.name;
  if (typeof name === "string" && name.length > MAX_TASK_NAME_LENGTH) {
    problems.push({
      pointer: "/metadata/name",
      message: `a Task's name may have at most ${MAX_TASK_NAME_LENGTH} characters (its attempts are <name>-t<N>)`,
    });
  }
  if (typeof v.spec !== "object" || v.spec === null) return problems;
  const s = v.spec as Record<string, unknown>;
  if (s.fromApp !== undefined) {
    for (const f of ["rootfs", "image", "imagePullSecret", "entrypoint"]) {
      if (s[f] !== undefined) problems.push({ pointer: `/spec/${f}`, message: "not with fromApp (the App's is used)" });
    }
    if (s.command === undefined) {
      problems.push({ pointer: "/spec/command", message: "required with fromApp: the command to run" });
    }
  } else {
    for (const p of appSourceProblems(s)) {
      problems.push(p.pointer === "/spec" ? { ...p, message: "one of fromApp, rootfs or image is required" } : p);
    }
  }
  if (Array.isArray(s.command) && s.command[0] === "") {
    problems.push({ pointer: "/spec/command/0", message: "the program to run must not be empty" });
  }
  return problems;
}

/** The Instance spec of a Task's attempt: the Task's own template, or its App's with the Task's command. */
function attemptSpec(task: Task, app: App | undefined, attempt: number): InstanceSpec {
  const s = task.spec;
  const env = { GROVE_TASK: task.metadata.name, GROVE_TASK_ATTEMPT: String(attempt) };
  const owner = { app: task.metadata.name, appUid: task.metadata.uid ?? "", task: task.metadata.name };
  const common = {
    index: 0,
    restarts: attempt - 1,
    restartPolicy: "Never" as const,
  };
  if (app) {
    // The App's template without what belongs to its long-running instances:
    // published ports (fixed ones would clash), health checks, disconnect policy.
    const { ports: _p, checks: _c, disconnect: _d, app: _a, appUid: _u, ...template } = instanceTemplate(app);
    return {
      ...template,
      ...owner,
      ...common,
      command: [...(s.command ?? [])],
      env: { ...template.env, ...(s.env ?? {}), ...env },
      ...(s.workingDir !== undefined ? { workingDir: s.workingDir } : {}),
      ...(s.resources !== undefined
        ? { resources: normalizeResources({ ...app.spec.resources, ...s.resources }) }
        : {}),
      ...(s.stopGracePeriodSeconds !== undefined ? { stopGracePeriodSeconds: s.stopGracePeriodSeconds } : {}),
      ...(s.placement !== undefined ? { placement: structuredClone(s.placement) } : {}),
      ...(s.priority !== undefined ? { priority: s.priority } : {}),
      ...(s.egress?.length ? { egress: s.egress.map((r) => ({ ...r })) } : {}),
      ...(s.security !== undefined ? { security: structuredClone(s.security) } : {}),
    };
  }
  return {
    ...owner,
    ...common,
    rootfs: s.rootfs ?? "",
    command: [...(s.command ?? [])],
    env: { ...(s.env ?? {}), ...env },
    ...(s.workingDir !== undefined || !s.image ? { workingDir: s.workingDir ?? "/" } : {}),
    resources: normalizeResources(s.resources),
    stopGracePeriodSeconds: s.stopGracePeriodSeconds ?? DEFAULT_STOP_GRACE_SECONDS,
    ...(s.image ? { image: s.image } : {}),
    ...(s.imagePullSecret ? { imagePullSecret: s.imagePullSecret } : {}),
    ...(s.entrypoint?.length ? { entrypoint: [...s.entrypoint] } : {}),
    ...(s.placement ? { placement: structuredClone(s.placement) } : {}),
    ...(s.priority !== undefined ? { priority: s.priority } : {}),
    ...(s.egress?.length ? { egress: s.egress.map((r) => ({ ...r })) } : {}),
    ...(s.security !== undefined ? { security: structuredClone(s.security) } : {}),
  };
}

/** A new attempt of a Task: Pending, Unscheduled, with a fresh uid. `app` is the fromApp App, if any. */
export function taskAttempt(task: Task, app: App | undefined, attempt: number, now: number): Instance {
  return {
    apiVersion: API_VERSION,
    kind: "Instance",
    metadata: {
      name: taskAttemptName(task.metadata.name, attempt),
      namespace: task.metadata.namespace ?? "default",
      uid: randomUUID(),
      labels: { [TASK_LABEL]: task.metadata.name, [ATTEMPT_LABEL]: String(attempt) },
      creationTimestamp: new Date(now).toISOString(),
    },
    spec: attemptSpec(task, app, attempt),
    status: {
      state: "Pending",
      reason: InstanceReason.Unscheduled,
      message: `waiting for the scheduler: attempt ${attempt} of Task ${task.metadata.name}`,
    },
  };
}
