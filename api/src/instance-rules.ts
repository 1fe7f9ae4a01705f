// Rules about Instances that every part of Grove must read the same way:
// when an instance is finished, whether an ended one is replaced and after
// what backoff, which template it was made from, how a new one looks. The App
// controller, the scheduler's snapshot, the agent gateway, `apply --plan` and
// grove-sim all use these, so they cannot disagree.
import { createHash, randomUUID } from "node:crypto";
import {
  API_VERSION,
  TERMINAL_STATES,
  type App,
  type Instance,
  type InstanceSpec,
  type InstanceState,
} from "./schemas";
import {
  DEFAULT_REPLACE_AFTER_MS,
  DEFAULT_RESOURCES_UPDATE_POLICY,
  DEFAULT_RESTART_POLICY,
  DEFAULT_STOP_GRACE_SECONDS,
  REPLACES_LABEL,
  normalizeResources,
} from "./defaults";
import { parseDurationMs } from "./duration";
import { InstanceReason } from "./reasons";

export const APP_LABEL = "grove.io/app";
/** Hash of the App's whole instance template: an instance without the current one is outdated. */
export const TEMPLATE_HASH_LABEL = "grove.io/template-hash";
/** Hash of the template without its resources: equal while only resources changed (resize in place). */
export const CONFIG_HASH_LABEL = "grove.io/config-hash";
const MAX_BACKOFF_MS = 60_000;
/** An instance that ran this long before it ended restarts without crash-loop backoff. */
export const BACKOFF_RESET_MS = 10 * 60_000;

/** Whether a state is one an instance never leaves (one of TERMINAL_STATES). */
export function isFinishedState(state: InstanceState | undefined): boolean {
  return state !== undefined && TERMINAL_STATES.includes(state);
}

/**
 * Whether an instance is finished: it ended (Exited, Failed, OOMKilled) and
 * stays so. A finished instance holds no resources on its node, is in no
 * node's desired set, and late reports do not revive it. One without a
 * status has not started, so it is not finished.
 */
export function isFinished(inst: Pick<Instance, "status">): boolean {
  return isFinishedState(inst.status?.state);
}

/**
 * Whether an instance may take traffic and counts as available to a rollout:
 * it is Running and its agent has not reported it unready (an App without a
 * readiness check has no `ready` in its instances' status).
 */
export function isReady(inst: Pick<Instance, "status">): boolean {
  return inst.status?.state === "Running" && inst.status.ready !== false;
}

/** Whether a finished instance should be replaced under its restart policy. */
export function shouldReplace(inst: Instance): boolean {
  const st = inst.status;
  if (!st || !isFinishedState(st.state)) return false;
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
    // Only when given, so that Apps without it keep their template hash.
    ...(s.runtimeClass !== undefined ? { runtimeClass: s.runtimeClass } : {}),
    ...(s.image ? { image: s.image } : {}),
    ...(s.imagePullSecret ? { imagePullSecret: s.imagePullSecret } : {}),
    ...(s.entrypoint?.length ? { entrypoint: [...s.entrypoint] } : {}),
    ...(s.placement ? { placement: structuredClone(s.placement) } : {}),
    ...(s.priority !== undefined ? { priority: s.priority } : {}),
    // The agent enforces stopAfter, so the instance carries it (replaceAfter stays on the App).
    ...(s.disconnect?.stopAfter !== undefined ? { disconnect: { stopAfter: s.disconnect.stopAfter } } : {}),
    // Part of the template, so a change of checks replaces instances like any other change.
    ...(s.checks && Object.keys(s.checks).length > 0 ? { checks: structuredClone(s.checks) } : {}),
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
export function templateChange(
  inst: Instance,
  app: App,
  /** templateHash(app), when the caller compares many instances with one App. */
  hash: string = templateHash(app),
): "none" | "resources" | "other" {
  const labels = inst.metadata.labels ?? {};
  if (labels[TEMPLATE_HASH_LABEL] === hash) return "none";
  const config = labels[CONFIG_HASH_LABEL];
  return config !== undefined && config === configHash(app) ? "resources" : "other";
}

/** The App's policy for resource-only changes. */
export function resourcesUpdatePolicy(app: App): "InPlace" | "Replace" {
  return app.spec.updatePolicy?.resources ?? DEFAULT_RESOURCES_UPDATE_POLICY;
}

/** A new instance of an App's index: Pending, Unscheduled, with a fresh uid and the template labels. */
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
    status: { state: "Pending", reason: InstanceReason.Unscheduled, message: "waiting for the scheduler" },
  };
}
