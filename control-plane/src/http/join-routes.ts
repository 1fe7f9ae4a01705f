// POST /v1/join-tokens (an operator, bearer auth): a single-use bootstrap token.
// POST /v1/join (no bearer: the join token is the credential): an agent's
// certificate request, signed for the node the token allows.
import type { FastifyInstance } from "fastify";
import { Type, type Static } from "@sinclair/typebox";
import { GroveError, parseDurationMs } from "@grove/api";
import type { JoinService } from "../pki/join";
import { ErrorBodyRef } from "./schemas";

const TokenRequest = Type.Object(
  { ttl: Type.Optional(Type.String()), node: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
const TokenResponse = Type.Object({
  token: Type.String(),
  expiresAt: Type.String(),
  node: Type.Optional(Type.String()),
  caHash: Type.String(),
});
const JoinRequest = Type.Object(
  { token: Type.String(), nodeName: Type.String(), csr: Type.String() },
  { additionalProperties: false },
);
const JoinResponse = Type.Object({
  nodeName: Type.String(),
  certificate: Type.String(),
  ca: Type.String(),
  /** The agents' gRPC port on this server (the host is the one the agent joined through). */
  grpcPort: Type.Integer(),
});

export interface JoinRouteOptions {
  join: JoinService;
  caPem: string;
  caHash: string;
  grpcPort: number;
}

export function registerJoinRoutes(app: FastifyInstance, o: JoinRouteOptions): void {
  app.post<{ Body: Static<typeof TokenRequest> }>(
    "/v1/join-tokens",
    {
      schema: {
        tags: ["join"],
        operationId: "createJoinToken",
        body: TokenRequest,
        response: { 201: TokenResponse, 400: ErrorBodyRef },
      },
    },
    async (req, reply) => {
      let ttlMs = 3_600_000;
      if (req.body.ttl !== undefined) {
        try {
          ttlMs = parseDurationMs(req.body.ttl);
        } catch (err) {
          throw new GroveError("BadRequest", `ttl: ${(err as Error).message}`);
        }
      }
      const { token, expiresAt } = await o.join.createToken(ttlMs, req.body.node);
      return reply.code(201).send({
        token,
        expiresAt: expiresAt.toISOString(),
        ...(req.body.node ? { node: req.body.node } : {}),
        caHash: o.caHash,
      });
    },
  );
  app.post<{ Body: Static<typeof JoinRequest> }>(
    "/v1/join",
    {
      schema: {
        tags: ["join"],
        operationId: "joinNode",
        security: [],
        body: JoinRequest,
        response: { 200: JoinResponse, 400: ErrorBodyRef, 401: ErrorBodyRef, 409: ErrorBodyRef },
      },
    },
    async (req) => {
      const r = await o.join.join(req.body.token, req.body.nodeName, req.body.csr);
      return { nodeName: r.node, certificate: r.certificatePem, ca: o.caPem, grpcPort: o.grpcPort };
    },
  );
}
