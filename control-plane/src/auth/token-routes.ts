// /v1/namespaces/{ns}/tokens and /v1/tokens: API tokens. A token is shown
// once, in the answer to its creation; lists show names and roles.
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import { API_VERSION, GroveError, NAME_PATTERN, TokenRequest } from "@grove/api";
import { identityOf } from "./authorize";
import { denial } from "./policy";
import { ErrorBodyRef } from "../http/schemas";
import { ref } from "../http/response-schemas";
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
    {
      schema: {
        tags,
        operationId: "listTokens",
        summary: "List a namespace's tokens (never the tokens)",
        params: ns,
        response: { 200: ref("TokenList"), ...errors },
      },
    },
    async (req) => list(await tokens.list((req.params as { namespace: string }).namespace)),
  );
  app.post(
    "/v1/namespaces/:namespace/tokens",
    {
      schema: {
        tags,
        operationId: "createToken",
        summary: "Create a token bound to a role in this namespace; the answer shows it, once",
        params: ns,
        body,
        response: { 201: ref("TokenInfo"), ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body as TokenRequest;
      const home = (req.params as { namespace: string }).namespace;
      // The hook checked the home namespace; a token bound to further ones needs the same right in each.
      const who = identityOf(req);
      for (const [i, ns] of (b.namespaces ?? []).entries()) {
        const why = denial(who, "create", "tokens", ns);
        if (why) throw new GroveError("Forbidden", why, [{ path: `/namespaces/${i}`, message: why }]);
      }
      return reply.code(201).send(await tokens.create(b.name, b.role, home, b.namespaces));
    },
  );
  app.delete(
    "/v1/namespaces/:namespace/tokens/:name",
    {
      schema: {
        tags,
        operationId: "deleteToken",
        summary: "Delete (revoke) a token",
        params: nsName,
        response: { 200: ref("TokenInfo"), ...errors },
      },
    },
    async (req) => {
      const p = req.params as { namespace: string; name: string };
      return tokens.delete(p.name, p.namespace);
    },
  );
  app.get(
    "/v1/tokens",
    {
      schema: {
        tags,
        operationId: "listClusterTokens",
        summary: "List cluster-admin tokens",
        response: { 200: ref("TokenList"), ...errors },
      },
    },
    async () => list(await tokens.list(undefined)),
  );
  app.post(
    "/v1/tokens",
    {
      schema: {
        tags,
        operationId: "createClusterToken",
        summary: "Create a cluster-admin token; the answer shows it, once",
        body,
        response: { 201: ref("TokenInfo"), ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body as TokenRequest;
      return reply.code(201).send(await tokens.create(b.name, b.role, undefined, b.namespaces));
    },
  );
  app.delete(
    "/v1/tokens/:name",
    {
      schema: {
        tags,
        operationId: "deleteClusterToken",
        summary: "Delete (revoke) a cluster-admin token",
        params: Type.Object({ name: NameParam }),
        response: { 200: ref("TokenInfo"), ...errors },
      },
    },
    async (req) => tokens.delete((req.params as { name: string }).name, undefined),
  );
}
