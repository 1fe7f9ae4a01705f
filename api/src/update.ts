// How a template change reaches an App's instances (spec.update) and how the
// App reports it (status.conditions, Progressing). Rolling (the default)
// starts new-template instances first and stops old ones only once their
// replacements are available, so the App keeps serving; Recreate replaces
// every outdated instance at once (the behaviour before spec.update existed).
// docs/api.md, "Updates".
import { Type, type Static } from "@sinclair/typebox";

export const DEFAULT_UPDATE_STRATEGY = "Rolling";
export const DEFAULT_MAX_SURGE = 1;
export const DEFAULT_ROLLOUT_MAX_UNAVAILABLE = 0;
export const DEFAULT_MIN_READY_SECONDS = 0;
export const DEFAULT_PROGRESS_DEADLINE_SECONDS = 600;

/** Label of a new-template instance a rolling update started next to the old one it replaces (REPLACES_LABEL). */
export const ROLLOUT_LABEL = "grove.io/rollout";

export const UpdateStrategy = Type.Union([Type.Literal("Rolling"), Type.Literal("Recreate")], {
  description:
    "Rolling (default): new instances start and become available before old ones stop; Recreate: every outdated instance is replaced at once",
});
export type UpdateStrategy = Static<typeof UpdateStrategy>;

export const UpdateSpec = Type.Object(
  {
    strategy: Type.Optional(UpdateStrategy),
    maxSurge: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1000,
        description: "how many instances a rolling update may run above spec.instances (default 1)",
      }),
    ),
    maxUnavailable: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1000,
        description: "how many of spec.instances may be unavailable during a rolling update (default 0)",
      }),
    ),
    minReadySeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 3600,
        description: "how long a new instance must be ready before it counts as available (default 0)",
      }),
    ),
    progressDeadlineSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 86400,
        description:
          "a rolling update that makes no progress for this long is rolled back (autoRollback) or stops, reason ProgressDeadlineExceeded (default 600)",
      }),
    ),
    canary: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10000,
        description:
          "a rolling update replaces this many instances, then pauses until `grove rollout promote` (at most spec.instances)",
      }),
    ),
    paused: Type.Optional(
      Type.Boolean({
        description: "true: a rolling update takes no further step until resumed (grove rollout pause / resume)",
      }),
    ),
    autoRollback: Type.Optional(
      Type.Boolean({
        description:
          "true (default): a rolling update whose new instances crash or are not available by the progress deadline returns to the previous revision",
      }),
    ),
  },
  { additionalProperties: false },
);
export type UpdateSpec = Static<typeof UpdateSpec>;

/** A condition of an App's status (today: Progressing). */
export const AppCondition = Type.Object({
  type: Type.String(),
  status: Type.Union([Type.Literal("True"), Type.Literal("False"), Type.Literal("Unknown")]),
  reason: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
  lastTransitionTime: Type.Optional(Type.String()),
});
export type AppCondition = Static<typeof AppCondition>;

/** Why and from where to where the App controller rolled an update back. */
export const RollbackRecord = Type.Object({
  from: Type.Integer({ description: "the revision that failed" }),
  to: Type.Integer({ description: "the revision the App returned to" }),
  reason: Type.String({ description: "ProgressDeadlineExceeded or InstanceFailed" }),
  message: Type.String(),
  at: Type.String(),
});
export type RollbackRecord = Static<typeof RollbackRecord>;

/** The rolling update as the App controller tracks it (status.rollout). */
export const RolloutState = Type.Object({
  revision: Type.Integer({ description: "the revision of the current template" }),
  templateHash: Type.String({ description: "the template hash instances are being brought to" }),
  generation: Type.Integer({ description: "the App generation the progress clock started at" }),
  from: Type.Optional(Type.Integer({ description: "the revision the instances came from: where a rollback returns" })),
  progressedAt: Type.String({
    description:
      "when the rollout last made progress (start, promotion, or one more updated instance available): the progress deadline counts from here",
  }),
  updatedAvailable: Type.Integer({ description: "updated and available instances at progressedAt" }),
  complete: Type.Optional(Type.Boolean()),
  exceeded: Type.Optional(Type.Boolean({ description: "the progress deadline passed (without a rollback)" })),
  promoted: Type.Optional(
    Type.Boolean({ description: "grove rollout promote: the canary may go on to all instances" }),
  ),
  rolledBack: Type.Optional(RollbackRecord),
});
export type RolloutState = Static<typeof RolloutState>;

/** The App's spec.update with its defaults filled in. */
export interface UpdateParams {
  strategy: UpdateStrategy;
  maxSurge: number;
  maxUnavailable: number;
  minReadySeconds: number;
  progressDeadlineSeconds: number;
  /** New-template instances a rolling update starts before it waits for promotion (undefined: no canary). */
  canary?: number;
  paused: boolean;
  autoRollback: boolean;
}

export function updateParams(spec: { update?: UpdateSpec }): UpdateParams {
  const u = spec.update ?? {};
  return {
    strategy: u.strategy ?? DEFAULT_UPDATE_STRATEGY,
    maxSurge: u.maxSurge ?? DEFAULT_MAX_SURGE,
    maxUnavailable: u.maxUnavailable ?? DEFAULT_ROLLOUT_MAX_UNAVAILABLE,
    minReadySeconds: u.minReadySeconds ?? DEFAULT_MIN_READY_SECONDS,
    progressDeadlineSeconds: u.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_SECONDS,
    ...(u.canary !== undefined ? { canary: u.canary } : {}),
    paused: u.paused === true,
    autoRollback: u.autoRollback !== false,
  };
}

/**
 * Cross-field checks of spec.update the schema cannot say (the schema has
 * already refused negative numbers and unknown fields).
 */
export function updateProblems(spec: unknown): { pointer: string; message: string }[] {
  if (!spec || typeof spec !== "object") return [];
  const u = (spec as { update?: unknown }).update;
  if (!u || typeof u !== "object") return [];
  const { strategy, maxSurge, maxUnavailable, minReadySeconds, progressDeadlineSeconds, canary } = u as Record<
    string,
    unknown
  >;
  const instances = (spec as { instances?: unknown }).instances;
  const problems: { pointer: string; message: string }[] = [];
  const num = (v: unknown, d: number) => (typeof v === "number" ? v : d);
  if (
    (strategy ?? DEFAULT_UPDATE_STRATEGY) === "Rolling" &&
    num(maxSurge, DEFAULT_MAX_SURGE) === 0 &&
    num(maxUnavailable, DEFAULT_ROLLOUT_MAX_UNAVAILABLE) === 0
  ) {
    problems.push({
      pointer: "/spec/update/maxUnavailable",
      message: "maxSurge and maxUnavailable cannot both be 0: a rolling update could then never replace an instance",
    });
  }
  if (
    strategy === "Recreate" &&
    (maxSurge !== undefined || maxUnavailable !== undefined || minReadySeconds !== undefined || canary !== undefined)
  ) {
    const field =
      maxSurge !== undefined
        ? "maxSurge"
        : maxUnavailable !== undefined
          ? "maxUnavailable"
          : minReadySeconds !== undefined
            ? "minReadySeconds"
            : "canary";
    problems.push({ pointer: `/spec/update/${field}`, message: `only applies to strategy Rolling` });
  }
  if (
    typeof minReadySeconds === "number" &&
    minReadySeconds >= num(progressDeadlineSeconds, DEFAULT_PROGRESS_DEADLINE_SECONDS)
  ) {
    problems.push({
      pointer: "/spec/update/progressDeadlineSeconds",
      message: `must be greater than minReadySeconds (${minReadySeconds}), or no instance could become available in time`,
    });
  }
  if (typeof canary === "number" && typeof instances === "number" && canary > instances) {
    problems.push({
      pointer: "/spec/update/canary",
      message: `must be at most spec.instances (${instances}): a canary replaces part of the instances, got ${canary}`,
    });
  }
  return problems;
}
