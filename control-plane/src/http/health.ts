// Liveness and readiness. /healthz says the process serves requests;
// /readyz says it can also reach its store.
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import type { ErrorBody } from "@grove/api";
import type { Store } from "../store/store";
import { ErrorBodyRef } from "./schemas";
import { STORE_RETRY_AFTER_S } from "./errors";

const Status = Type.Object({ status: Type.String() });

export function registerHealthRoutes(app: FastifyInstance, store: Store): void {
  app.get(
    "/healthz",
    { schema: { tags: ["health"], operationId: "getHealth", response: { 200: Status } } },
    async () => ({ status: "ok" }),
  );
  app.get(
    "/readyz",
    { schema: { tags: ["health"], operationId: "getReadiness", response: { 200: Status, 503: ErrorBodyRef } } },
    async (req, reply) => {
      try {
        await store.ping();
        return { status: "ok" };
      } catch (err) {
        req.log.warn({ err }, "not ready: the store does not answer");
        const body: ErrorBody = {
          code: "StoreUnavailable",
          message: `the control plane's store is unreachable: ${err instanceof Error ? err.message : String(err)}`,
        };
        return reply.code(503).header("retry-after", STORE_RETRY_AFTER_S).send(body);
      }
    },
  );
}
