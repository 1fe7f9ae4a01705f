// /v1/namespaces/{ns}/instances and /v1/instances: users read and delete
// Instances; only the control plane creates them (from Apps).
import type { FastifyInstance } from "fastify";
import type { ErrorBody } from "@grove/api";
import { registerResourceRoutes, resourceUrls, type RouteContext } from "./resource-routes";

const NOT_WRITABLE: ErrorBody = {
  code: "BadRequest",
  message: "instances are created by the control plane: create or apply an App and set spec.instances",
};

export function registerInstanceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  registerResourceRoutes(app, ctx, { kind: "Instance", create: false, apply: false });
  const urls = resourceUrls("Instance");
  const refuse = { schema: { hide: true } };
  app.post(urls.collection, refuse, async (_req, reply) => reply.code(405).header("allow", "GET").send(NOT_WRITABLE));
  app.put(urls.object, refuse, async (_req, reply) =>
    reply.code(405).header("allow", "GET, DELETE").send(NOT_WRITABLE),
  );
}
