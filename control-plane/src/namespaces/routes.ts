// /v1/namespaces and /v1/namespaces/{ns}: Namespace objects (cluster-admins
// write them; a namespace's own roles may read theirs, with its usage), and
// the restricted level's rule on exec: only as the App's own user.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { API_VERSION, DEFAULT_POLICY_LEVEL, GroveError, NAME_PATTERN, Namespace } from "@grove/api";
import { identityOf } from "../auth/authorize";
import { boundNamespaces } from "../auth/policy";
import { ErrorBodyRef } from "../http/schemas";
import type { Repository } from "../resources/repository";
import type { NamespaceService } from "./namespace-service";

const NameParam = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
const Params = Type.Object({ namespace: NameParam });
const NamespaceRef = Type.Unsafe({ $ref: "Namespace#" });
const errors = { "4xx": ErrorBodyRef, "5xx": ErrorBodyRef };
// Open: the answer's serializer keeps fields a newer server adds.
const NamespaceList = Type.Object(
  {
    apiVersion: Type.String(),
    kind: Type.Literal("NamespaceList"),
    metadata: Type.Object({ resourceVersion: Type.String() }, { additionalProperties: true }),
    items: Type.Array(NamespaceRef),
  },
  { additionalProperties: true },
);
const tags = ["namespaces"];
const EXEC_ROUTE = "/v1/namespaces/:namespace/instances/:name/exec";

export function registerNamespaceRoutes(app: FastifyInstance, namespaces: NamespaceService, repo: Repository): void {
  app.addSchema(Namespace);

  app.get(
    "/v1/namespaces",
    {
      schema: {
        tags,
        summary: "List Namespace objects with their quota usage (a namespaced role: its own namespace's only)",
        operationId: "listNamespaces",
        response: { 200: NamespaceList, ...errors },
      },
    },
    async (req) => {
      const who = identityOf(req);
      // A tenant's list holds its own Namespace (if it has an object) and nothing else.
      const bound = boundNamespaces(who);
      const r = await namespaces.list((name) => who.role === "cluster-admin" || bound.includes(name));
      return {
        apiVersion: API_VERSION,
        kind: "NamespaceList",
        metadata: { resourceVersion: r.revision },
        items: r.items,
      };
    },
  );
  app.get(
    "/v1/namespaces/:namespace",
    {
      schema: {
        tags,
        summary: "Get a Namespace: its policy, quota (status.hard) and usage (status.used)",
        operationId: "readNamespace",
        params: Params,
        response: { 200: NamespaceRef, ...errors },
      },
    },
    async (req) => namespaces.describe((req.params as { namespace: string }).namespace),
  );
  const write = (createOnly: boolean) => async (req: FastifyRequest) => {
    const body = req.body as Namespace;
    const url = (req.params as { namespace?: string }).namespace;
    if (url !== undefined && body.metadata.name !== url) {
      throw new GroveError("BadRequest", `metadata.name "${body.metadata.name}" does not match the URL's "${url}"`, [
        { path: "/metadata/name", message: `must be "${url}" as in the URL` },
      ]);
    }
    if (body.metadata.namespace !== undefined) {
      throw new GroveError("BadRequest", "Namespace is cluster-scoped: metadata.namespace must not be set", [
        { path: "/metadata/namespace", message: "must not be set" },
      ]);
    }
    return namespaces.apply(body, createOnly);
  };
  app.post(
    "/v1/namespaces",
    {
      schema: {
        tags,
        summary: `Create a Namespace (policy ${DEFAULT_POLICY_LEVEL} unless given)`,
        operationId: "createNamespace",
        body: NamespaceRef,
        response: { 201: NamespaceRef, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send((await write(true)(req)).object),
  );
  app.put(
    "/v1/namespaces/:namespace",
    {
      schema: {
        tags,
        summary: "Create or replace a Namespace's spec (policy, quota, hostPortRange) and labels",
        operationId: "replaceNamespace",
        params: Params,
        body: NamespaceRef,
        response: { 200: NamespaceRef, 201: NamespaceRef, ...errors },
      },
    },
    async (req, reply) => {
      const r = await write(false)(req);
      return reply
        .code(r.created ? 201 : 200)
        .header("x-grove-apply-result", r.created ? "created" : "configured")
        .send(r.object);
    },
  );
  app.delete(
    "/v1/namespaces/:namespace",
    {
      schema: {
        tags,
        summary: "Delete a Namespace: 409 while it holds objects, unless ?cascade=true (deletes them too)",
        params: Params,
        querystring: Type.Object({ cascade: Type.Optional(Type.String({ enum: ["1", "true", "0", "false"] })) }),
        operationId: "deleteNamespace",
        response: { 200: NamespaceRef, ...errors },
      },
    },
    async (req) => {
      const q = req.query as { cascade?: string };
      return namespaces.delete(
        (req.params as { namespace: string }).namespace,
        q.cascade === "1" || q.cascade === "true",
      );
    },
  );

  // Runs after authorization and before the WebSocket upgrade: a refused exec is a plain 403.
  app.addHook("preHandler", async (req) => {
    if (req.routeOptions.url !== EXEC_ROUTE) return;
    const user = (req.query as { user?: string }).user;
    if (user === undefined || user === "") return;
    const p = req.params as { namespace: string; name: string };
    const ns = await namespaces.get(p.namespace);
    if (!ns || (ns.value.spec?.policy ?? DEFAULT_POLICY_LEVEL) !== "restricted") return;
    const inst = await repo.tryGet("Instance", p.namespace, p.name);
    const own = inst?.spec.security?.user;
    if (own !== undefined && user === own) return;
    throw new GroveError(
      "Forbidden",
      `namespace ${p.namespace} is restricted: exec runs only as the App's user (${own ?? "the image's default"}), not ${JSON.stringify(user)}`,
      [{ path: "/user", message: "must be left out or be the App's security.user" }],
    );
  });
}
