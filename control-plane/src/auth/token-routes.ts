// /v1/namespaces/{ns}/tokens and /v1/tokens: API tokens. A token is shown
// once, in the answer to its creation; lists show names and roles.
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import { API_VERSION, NAME_PATTERN, TokenRequest } from "@grove/api";
import { ErrorBodyRef } from "../http/schemas";
import type { TokenService } from "./tokens";

const NameParam = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
const errors = { "4xx": ErrorBodyRef, "5xx": ErrorBodyRef };
const tags = ["tokens"];

export function registerTokenRoutes(app: FastifyInstance, tokens: TokenService): void {
  app.addSchema(TokenRequest);
  const body = Type.Unsafe({ $ref: "TokenRequest#" });
  const ns = Type.Object({ namespace: NameParam });
  const nsName = Type.Object({ namespace: NameParam, name: NameParam });
  const list = (items: unknown[]) => ({ apiVersion: API_VERSION, kind: "TokenList", items });

  app.get(
    "/v1/namespaces/:namespace/tokens",
    { schema: { tags, summary: "List a namespace's tokens (never the tokens)", params: ns, response: errors } },
    async (req) => list(await tokens.list((req.params as { namespace: string }).namespace)),
  );
  app.post(
    "/v1/namespaces/:namespace/tokens",
    {
      schema: {
        tags,
        summary: "Create a token bound to a role in this namespace; the answer shows it, once",
        params: ns,
        body,
        response: errors,
      },
    },
    async (req, reply) => {
      const b = req.body as TokenRequest;
      return reply.code(201).send(await tokens.create(b.name, b.role, (req.params as { namespace: string }).namespace));
    },
  );
  app.delete(
    "/v1/namespaces/:namespace/tokens/:name",
    { schema: { tags, summary: "Delete (revoke) a token", params: nsName, response: errors } },
    async (req) => {
      const p = req.params as { namespace: string; name: string };
      return tokens.delete(p.name, p.namespace);
    },
  );
  app.get("/v1/tokens", { schema: { tags, summary: "List cluster-admin tokens", response: errors } }, async () =>
    list(await tokens.list(undefined)),
  );
  app.post(
    "/v1/tokens",
    { schema: { tags, summary: "Create a cluster-admin token; the answer shows it, once", body, response: errors } },
    async (req, reply) => {
      const b = req.body as TokenRequest;
      return reply.code(201).send(await tokens.create(b.name, b.role, undefined));
    },
  );
  app.delete(
    "/v1/tokens/:name",
    {
      schema: {
        tags,
        summary: "Delete (revoke) a cluster-admin token",
        params: Type.Object({ name: NameParam }),
        response: errors,
      },
    },
    async (req) => tokens.delete((req.params as { name: string }).name, undefined),
  );
}
