// An App's revisions and rollout actions (grove rollout history|undo|pause|
// resume|promote): /v1/namespaces/{ns}/apps/{name}/revisions and
// .../rollout/{undo,pause,resume,promote}. Each action is one write to the
// App; the App controller carries it out (docs/api.md, "Revisions, canary and
// rollback").
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import {
  API_VERSION,
  AppRevision,
  AppRevisionList,
  GroveError,
  NAME_PATTERN,
  configHash,
  templateHash,
  withRevisionTemplate,
  type App,
} from "@grove/api";
import { RevisionStore } from "../controllers/revisions";
import type { RouteContext } from "./resource-routes";
import { ErrorBodyRef, resourceRef } from "./schemas";

const NameParam = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
const params = Type.Object({ namespace: NameParam, name: NameParam });
const errors = { "4xx": ErrorBodyRef, "5xx": ErrorBodyRef };
/** How often an action re-reads the App when the controller wrote its status meanwhile. */
const CONFLICT_RETRIES = 5;

type Params = { namespace: string; name: string };

export function registerRolloutRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const revisions = new RevisionStore(ctx.repo.store);
  app.addSchema(AppRevision);
  app.addSchema(AppRevisionList);

  /** The App's revisions (of this App, not an earlier one of the same name) and the current one. */
  const history = async (ns: string, name: string) => {
    const a = await ctx.repo.get("App", ns, name);
    const items = (await revisions.list(ns, name)).filter((r) => r.appUid === a.metadata.uid);
    const current = items.find((r) => r.configHash === configHash(a))?.revision;
    return { app: a, items, current };
  };

  app.get(
    "/v1/namespaces/:namespace/apps/:name/revisions",
    {
      schema: {
        tags: ["apps"],
        operationId: "listAppRevisions",
        summary: "The App's kept revisions (its last templates), oldest first, and which one is current",
        params,
        response: { 200: Type.Unsafe({ $ref: "AppRevisionList#" }), ...errors },
      },
    },
    async (req) => {
      const { namespace, name } = req.params as Params;
      const { items, current } = await history(namespace, name);
      return { apiVersion: API_VERSION, kind: "AppRevisionList", ...(current ? { current } : {}), items };
    },
  );

  app.post(
    "/v1/namespaces/:namespace/apps/:name/rollout/undo",
    {
      schema: {
        tags: ["apps"],
        operationId: "undoAppRollout",
        summary:
          "Return the App to an earlier revision's template (default: the one before the current); " +
          "instances, resources and update settings stay. Answers the App",
        params,
        body: Type.Object(
          { toRevision: Type.Optional(Type.Integer({ minimum: 1, description: "the revision to return to" })) },
          { additionalProperties: false },
        ),
        response: { 200: resourceRef("App"), ...errors },
      },
    },
    async (req) => {
      const { namespace, name } = req.params as Params;
      const { toRevision } = (req.body ?? {}) as { toRevision?: number };
      return withRetries(async () => {
        const { app: a, items, current } = await history(namespace, name);
        const kept = items.map((r) => r.revision);
        const target =
          toRevision !== undefined
            ? items.find((r) => r.revision === toRevision)
            : [...items].reverse().find((r) => current === undefined || r.revision < current);
        if (!target) {
          const what = toRevision !== undefined ? `revision ${toRevision}` : "a revision before the current one";
          throw new GroveError(
            "NotFound",
            `App ${namespace}/${name} has no ${what} (kept: ${kept.join(", ") || "none"})`,
            toRevision !== undefined ? [{ path: "/toRevision", message: `kept revisions: ${kept.join(", ")}` }] : [],
          );
        }
        if (target.revision === current) {
          throw new GroveError("BadRequest", `App ${namespace}/${name} is at revision ${current} already`, [
            { path: "/toRevision", message: `is the current revision` },
          ]);
        }
        return ctx.repo.update({ ...a, spec: withRevisionTemplate(a.spec, target.template) });
      });
    },
  );

  const specAction = (
    verb: "pause" | "resume",
    operationId: string,
    summary: string,
    change: (a: App) => App["spec"],
  ) =>
    app.post(
      `/v1/namespaces/:namespace/apps/:name/rollout/${verb}`,
      { schema: { tags: ["apps"], operationId, summary, params, response: { 200: resourceRef("App"), ...errors } } },
      async (req) => {
        const { namespace, name } = req.params as Params;
        return withRetries(async () => {
          const a = await ctx.repo.get("App", namespace, name);
          return ctx.repo.update({ ...a, spec: change(a) });
        });
      },
    );
  specAction(
    "pause",
    "pauseAppRollout",
    "Set spec.update.paused: a rolling update takes no further step until resumed. Answers the App",
    (a) => ({ ...a.spec, update: { ...a.spec.update, paused: true } }),
  );
  specAction(
    "resume",
    "resumeAppRollout",
    "Clear spec.update.paused: the rolling update goes on, with a fresh progress deadline. Answers the App",
    (a) => {
      const { paused: _p, ...update } = a.spec.update ?? {};
      const { update: _u, ...rest } = a.spec;
      return Object.keys(update).length > 0 ? { ...rest, update } : rest;
    },
  );

  app.post(
    "/v1/namespaces/:namespace/apps/:name/rollout/promote",
    {
      schema: {
        tags: ["apps"],
        operationId: "promoteAppCanary",
        summary:
          "Let a canary rolling update (spec.update.canary) go on to every instance, with a fresh progress deadline. " +
          "400 when no canary rollout of the current template is under way. Answers the App",
        params,
        response: { 200: resourceRef("App"), ...errors },
      },
    },
    async (req) => {
      const { namespace, name } = req.params as Params;
      return ctx.repo.updateStatus("App", { metadata: { namespace, name } }, (a) => {
        const r = a.status?.rollout;
        if (a.spec.update?.canary === undefined || !r || r.complete || r.templateHash !== templateHash(a)) {
          throw new GroveError(
            "BadRequest",
            `App ${namespace}/${name} has no canary rollout under way to promote` +
              (a.spec.update?.canary === undefined ? " (spec.update.canary is not set)" : ""),
          );
        }
        if (r.promoted) return false;
        r.promoted = true;
        r.progressedAt = new Date().toISOString();
      });
    },
  );
}

/** Runs a read-modify-write again when the App changed between its read and its write. */
async function withRetries<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof GroveError) || err.code !== "Conflict" || i >= CONFLICT_RETRIES) throw err;
    }
  }
}
