// The Task kind: a command run once to completion (Cloud Foundry tasks,
// `heroku run`, a Kubernetes Job of one pod). Its attempts are Instances the
// Task controller creates one after the other, placed by the scheduler and
// run by agents like an App's; the rules are in task-rules.ts.
import { Type, type Static } from "@sinclair/typebox";
import {
  Argv,
  EgressRule,
  EnvMap,
  NAME_PATTERN,
  Placement,
  Priority,
  ResourceRequest,
  SecuritySpec,
  WorkingDir,
  resource,
} from "./schemas";
import { MAX_ARG_LENGTH } from "./string-rules";

/** How many times a failed Task is run again at most. */
export const MAX_TASK_RETRIES = 100;
/** The longest ttlSecondsAfterFinished: 30 days. */
export const MAX_TASK_TTL_SECONDS = 30 * 24 * 3600;

export const TaskSpec = Type.Object(
  {
    fromApp: Type.Optional(
      Type.String({
        pattern: NAME_PATTERN,
        maxLength: 63,
        description:
          "run in this App's template (its rootfs or image, env, resources, security, placement); command is then required and replaces the App's",
      }),
    ),
    rootfs: Type.Optional(
      Type.String({
        pattern: "^[a-z0-9][a-z0-9._-]*$",
        maxLength: 128,
        description: "name of a root filesystem in the agent's rootfs directory (e.g. busybox); or give image",
      }),
    ),
    image: Type.Optional(
      Type.String({ minLength: 1, maxLength: 1024, description: "OCI image the agent pulls instead of a rootfs" }),
    ),
    imagePullSecret: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$", maxLength: 253 })),
    entrypoint: Type.Optional(Argv("with an image: replaces its Entrypoint")),
    command: Type.Optional(Argv("argv of the process; required with rootfs and with fromApp")),
    env: Type.Optional(EnvMap(Type.String({ maxLength: MAX_ARG_LENGTH }), "with fromApp: merged over the App's env")),
    workingDir: Type.Optional(WorkingDir),
    resources: Type.Optional(ResourceRequest),
    stopGracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    placement: Type.Optional(Placement),
    priority: Type.Optional(Priority),
    egress: Type.Optional(Type.Array(EgressRule, { maxItems: 64 })),
    security: Type.Optional(SecuritySpec),
    retries: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_TASK_RETRIES,
        description: "how many times a failed attempt is followed by a new one (default 0: run once)",
      }),
    ),
    ttlSecondsAfterFinished: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_TASK_TTL_SECONDS,
        description:
          "how long the Task, its attempts and their logs are kept after it succeeded or failed (default 3600)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type TaskSpec = Static<typeof TaskSpec>;

export const TaskPhase = Type.Union([
  Type.Literal("Pending"),
  Type.Literal("Running"),
  Type.Literal("Succeeded"),
  Type.Literal("Failed"),
]);
export type TaskPhase = Static<typeof TaskPhase>;

export const TaskStatus = Type.Object({
  phase: TaskPhase,
  /** Attempts started so far (each one Instance, named <task>-t<attempt>). */
  attempts: Type.Optional(Type.Integer({ minimum: 0 })),
  /** The Instance of the current (or last) attempt. */
  instance: Type.Optional(Type.String()),
  /** The last finished attempt's exit code (and signal, when one killed it). */
  exitCode: Type.Optional(Type.Integer()),
  signal: Type.Optional(Type.Integer()),
  /** A TaskReason (task-rules.ts); the sentence goes in message. */
  reason: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
  /** When the first attempt started running, and when the Task succeeded or failed. */
  startTime: Type.Optional(Type.String()),
  completionTime: Type.Optional(Type.String()),
  observedGeneration: Type.Optional(Type.Integer()),
});
export type TaskStatus = Static<typeof TaskStatus>;

export const Task = resource("Task", TaskSpec, TaskStatus);
export type Task = Static<typeof Task>;
