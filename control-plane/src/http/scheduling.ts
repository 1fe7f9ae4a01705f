// /v1/plan (POST: dry-run apply through the real scheduler) and /v1/capacity
// (GET: allocatable, allocated and free per node and cluster-wide, and how
// many more instances of ?shape=cpu=500m,memory=1Gi fit now).
import type { FastifyInstance } from "fastify";
import { appNetworkProblems, GroveError, type App, type FieldError, type Instance, type Node } from "@grove/api";
import { capacityOf, parseShape, planApply } from "../scheduling/plan";
import { ErrorBodyRef, resourceRef } from "./schemas";
import type { RouteContext } from "./resource-routes";
import { ref } from "./response-schemas";

export function registerSchedulingRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get<{ Querystring: { shape?: string } }>(
    "/v1/capacity",
    {
      schema: {
        tags: ["scheduling"],
        operationId: "getCapacity",
        summary: "Free capacity per node and cluster-wide; with ?shape=, how many more instances of it fit",
        querystring: {
          type: "object",
          properties: { shape: { type: "string", description: "cpu=500m,memory=1Gi[,pids=N][,disk=Q]" } },
          additionalProperties: false,
        },
        response: { 200: ref("CapacityReport"), 400: ErrorBodyRef },
      },
    },
    async (req) => {
      const shape = req.query.shape !== undefined ? parseShape(req.query.shape) : undefined;
      const [nodes, instances] = await Promise.all([ctx.repo.list("Node"), ctx.repo.list("Instance")]);
      return capacityOf(nodes.items as Node[], instances.items as Instance[], shape);
    },
  );

  app.post<{ Body: { items: App[] } }>(
    "/v1/plan",
    {
      schema: {
        tags: ["scheduling"],
        operationId: "planApply",
        summary: "Dry-run apply: where each new or changed instance would go; nothing is written",
        body: {
          type: "object",
          required: ["items"],
          properties: { items: { type: "array", items: resourceRef("App"), maxItems: 1000 } },
          additionalProperties: false,
        },
        response: { 200: ref("PlanResult"), 400: ErrorBodyRef },
      },
    },
    async (req) => {
      // A plan of what apply would refuse would be a lie: the same port checks first.
      const details: FieldError[] = req.body.items.flatMap((a, i) =>
        appNetworkProblems(a.spec, ctx.hostPorts).map((p) => ({
          path: `/items/${i}${p.pointer}`,
          message: `App ${a.metadata.namespace ?? "default"}/${a.metadata.name}: ${p.message}`,
        })),
      );
      if (details.length > 0)
        throw new GroveError("ValidationFailed", details.map((d) => `${d.path}: ${d.message}`).join("; "), details);
      const [nodes, instances] = await Promise.all([ctx.repo.list("Node"), ctx.repo.list("Instance")]);
      return planApply(req.body.items, nodes.items as Node[], instances.items as Instance[], ctx.dynamicHostPorts);
    },
  );
}
