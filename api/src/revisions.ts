// Revisions of an App's template, and the rolling update's state that the
// App controller keeps in the App's status (status.rollout) so that it
// survives a control-plane restart or a change of leader.
//
// A revision is the App's template without what changes live: the instance
// count, the resources (resized in place, docs/api.md "Updates"), how updates
// roll out, and the drain budget. So `grove scale` and a resize make no new
// revision, and `grove rollout undo` keeps the current instance count and
// resources while it brings back the old command, image, env, checks, ...
// Two templates are the same revision when their config hash is equal
// (instance-rules.ts: the template hash without resources).
import { Type, type Static } from "@sinclair/typebox";
import { API_VERSION, type AppSpec } from "./schemas";

/** How many revisions an App keeps (the current one and the one a rollback returns to are never dropped). */
export const REVISION_HISTORY_LIMIT = 10;

/** Spec fields that are not part of a revision: they change live, or say how changes roll out. */
const LIVE_FIELDS = ["instances", "resources", "update", "updatePolicy", "maxUnavailable"] as const;
type LiveField = (typeof LIVE_FIELDS)[number];
export type RevisionTemplate = Omit<AppSpec, LiveField>;

/** The part of an App's spec a revision keeps. */
export function revisionTemplate(spec: AppSpec): RevisionTemplate {
  const t = structuredClone(spec) as Partial<AppSpec>;
  for (const f of LIVE_FIELDS) delete t[f];
  return t as RevisionTemplate;
}

/** `spec` with the template of a revision: its live fields (instances, resources, update, ...) stay. */
export function withRevisionTemplate(spec: AppSpec, template: RevisionTemplate): AppSpec {
  const next = structuredClone(template) as AppSpec;
  for (const f of LIVE_FIELDS) {
    if (spec[f] !== undefined) (next as Record<string, unknown>)[f] = structuredClone(spec[f]);
  }
  return next;
}

/** One stored revision of an App (GET /v1/namespaces/{ns}/apps/{name}/revisions). */
export const AppRevision = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal("AppRevision"),
    app: Type.String(),
    namespace: Type.String(),
    appUid: Type.String(),
    revision: Type.Integer({ minimum: 1, description: "1, 2, 3, ... in the order the templates were first seen" }),
    configHash: Type.String({ description: "the grove.io/config-hash of this template's instances" }),
    createdAt: Type.String(),
    template: Type.Record(Type.String(), Type.Unknown(), {
      description: "the App's spec without instances, resources, update, updatePolicy, maxUnavailable",
    }),
  },
  { $id: "AppRevision" },
);
export type AppRevision = Omit<Static<typeof AppRevision>, "template"> & { template: RevisionTemplate };

export const AppRevisionList = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal("AppRevisionList"),
    /** The revision of the App's current template, once the App controller recorded it. */
    current: Type.Optional(Type.Integer()),
    items: Type.Array(Type.Unsafe<AppRevision>({ $ref: "AppRevision#" })),
  },
  { $id: "AppRevisionList" },
);
export interface AppRevisionList {
  apiVersion: typeof API_VERSION;
  kind: "AppRevisionList";
  current?: number;
  items: AppRevision[];
}
