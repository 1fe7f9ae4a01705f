// /v1/namespaces/{ns}/tasks and /v1/tasks: users create, apply, read and
// delete Tasks (docs/api.md, "Task"); the Task controller runs them.
import type { FastifyInstance } from "fastify";
import { GroveError, validateDocument, type FieldError } from "@grove/api";
import type { Repository } from "../resources/repository";
import { registerResourceRoutes, type RouteContext } from "./resource-routes";

export function registerTaskRoutes(app: FastifyInstance, ctx: RouteContext): void {
  registerResourceRoutes(app, ctx, {
    kind: "Task",
    create: true,
    apply: true,
    check: (body) => checkTask(body, ctx.repo),
  });
}

/**
 * Everything a Task must be before anything is written: the schema, the
 * quantities and the cross-field rules (validateDocument, as `grove apply`
 * checks them), and that spec.fromApp names an App of the Task's namespace.
 */
export async function checkTask(body: Record<string, unknown>, repo: Repository): Promise<void> {
  const details: FieldError[] = validateDocument(body, ["Task"]).map((p) => ({ path: p.pointer, message: p.message }));
  const spec = body.spec as { fromApp?: unknown } | undefined;
  const ns = (body.metadata as { namespace?: string } | undefined)?.namespace ?? "default";
  if (details.length === 0 && typeof spec?.fromApp === "string") {
    const app = await repo.tryGet("App", ns, spec.fromApp);
    if (!app) details.push({ path: "/spec/fromApp", message: `no App ${spec.fromApp} in namespace ${ns}` });
  }
  if (details.length > 0) {
    throw new GroveError("ValidationFailed", details.map((d) => `${d.path}: ${d.message}`).join("; "), details);
  }
}
