// /v1/namespaces/{ns}/secrets: Secrets through the API. Lists show names and
// keys only; a get answers the values only to roles that may read them
// (auth/policy.ts mayReadSecretValues); writes answer no values.
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import { API_VERSION, GroveError, NAME_PATTERN, Secret } from "@grove/api";
import { identityOf } from "../auth/authorize";
import { mayReadSecretValues } from "../auth/policy";
import { ErrorBodyRef } from "../http/schemas";
import { ref } from "../http/response-schemas";
import type { SecretService } from "./secret-store";

const NameParam = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
const NsParams = Type.Object({ namespace: NameParam });
const ObjParams = Type.Object({ namespace: NameParam, name: NameParam });
const SecretRef = Type.Unsafe({ $ref: "Secret#" });
const errors = { "4xx": ErrorBodyRef, "5xx": ErrorBodyRef };
const tags = ["secrets"];

interface P {
  namespace: string;
  name?: string;
}

export function registerSecretRoutes(app: FastifyInstance, secrets: SecretService): void {
  app.addSchema(Secret);

  const list = async (ns: string | undefined) => {
    const r = await secrets.list(ns);
    return {
      apiVersion: API_VERSION,
      kind: "SecretList",
      metadata: { resourceVersion: r.revision },
      items: r.items.map((kv) => secrets.view(kv, false)),
    };
  };
  app.get(
    "/v1/namespaces/:namespace/secrets",
    {
      schema: {
        tags,
        operationId: "listSecrets",
        summary: "List Secrets (names and keys, never values)",
        params: NsParams,
        response: { 200: ref("SecretList"), ...errors },
      },
    },
    async (req) => list((req.params as P).namespace),
  );
  app.get(
    "/v1/secrets",
    {
      schema: {
        tags,
        operationId: "listSecretsAllNamespaces",
        summary: "List Secrets of every namespace (names and keys)",
        response: { 200: ref("SecretList"), ...errors },
      },
    },
    async () => list(undefined),
  );
  app.get(
    "/v1/namespaces/:namespace/secrets/:name",
    {
      schema: {
        tags,
        operationId: "getSecret",
        summary: "Get a Secret: its keys, and its values (data) for roles that may read them",
        params: ObjParams,
        response: { 200: SecretRef, ...errors },
      },
    },
    async (req) => {
      const p = req.params as P;
      return secrets.view(await secrets.get(p.namespace, p.name!), mayReadSecretValues(identityOf(req)));
    },
  );

  const write = (createOnly: boolean) => async (req: { params: unknown; body: unknown }) => {
    const p = req.params as P;
    const body = req.body as Secret;
    if (p.name !== undefined && body.metadata.name !== p.name) {
      throw new GroveError("BadRequest", `metadata.name "${body.metadata.name}" does not match the URL's "${p.name}"`, [
        { path: "/metadata/name", message: `must be "${p.name}" as in the URL` },
      ]);
    }
    if (body.metadata.namespace !== undefined && body.metadata.namespace !== p.namespace) {
      throw new GroveError("BadRequest", `metadata.namespace does not match the URL's "${p.namespace}"`, [
        { path: "/metadata/namespace", message: `must be "${p.namespace}" as in the URL` },
      ]);
    }
    const { kv, created } = await secrets.apply(
      { ...body, metadata: { ...body.metadata, namespace: p.namespace } },
      createOnly,
    );
    return { view: secrets.view(kv, false), created };
  };
  app.post(
    "/v1/namespaces/:namespace/secrets",
    {
      schema: {
        tags,
        operationId: "createSecret",
        summary: "Create a Secret (values encrypted at rest)",
        params: NsParams,
        body: SecretRef,
        response: { 201: SecretRef, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send((await write(true)(req)).view),
  );
  app.put(
    "/v1/namespaces/:namespace/secrets/:name",
    {
      schema: {
        tags,
        operationId: "applySecret",
        summary: "Create or replace a Secret (values encrypted at rest)",
        params: ObjParams,
        body: SecretRef,
        response: { 200: SecretRef, 201: SecretRef, ...errors },
      },
    },
    async (req, reply) => {
      const r = await write(false)(req);
      return reply
        .code(r.created ? 201 : 200)
        .header("x-grove-apply-result", r.created ? "created" : "configured")
        .send(r.view);
    },
  );
  app.delete(
    "/v1/namespaces/:namespace/secrets/:name",
    {
      schema: {
        tags,
        operationId: "deleteSecret",
        summary: "Delete a Secret",
        params: ObjParams,
        response: { 200: SecretRef, ...errors },
      },
    },
    async (req) => {
      const p = req.params as P;
      return secrets.view(await secrets.delete(p.namespace, p.name!), false);
    },
  );
}
