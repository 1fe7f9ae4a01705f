// /v1/nodes: agents register nodes (over gRPC); operators read them, apply
// them (cordon with spec.unschedulable) and delete them.
import type { FastifyInstance } from "fastify";
import { registerResourceRoutes, type RouteContext } from "./resource-routes";

export function registerNodeRoutes(app: FastifyInstance, ctx: RouteContext): void {
  registerResourceRoutes(app, ctx, { kind: "Node", create: false, apply: true });
}
