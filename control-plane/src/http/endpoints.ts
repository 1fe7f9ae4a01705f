// GET /v1/namespaces/{ns}/apps/{name}/endpoints: the App's ready instances
// with their IPs and published ports, for PaaS routers. With ?watch=1 the
// answer is NDJSON: the whole list once (ADDED), then again whenever it
// changes (MODIFIED), until the client hangs up.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { NAME_PATTERN, endpointsOf, type Endpoints, type Instance } from "@grove/api";
import { objectKey } from "../controllers/informer";
import type { RouteContext } from "./resource-routes";
import { errorResponse } from "./errors";
import { ref } from "./response-schemas";
import { ErrorBodyRef } from "./schemas";

const NameParam = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });

export function registerEndpointRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get(
    "/v1/namespaces/:namespace/apps/:name/endpoints",
    {
      schema: {
        tags: ["apps"],
        operationId: "getEndpoints",
        summary:
          "Endpoints of an App (ready instances: Running and passing their readiness check; IPs, published ports); ?watch=1 streams the list on change",
        params: Type.Object({ namespace: NameParam, name: NameParam }),
        querystring: Type.Object({ watch: Type.Optional(Type.String({ enum: ["1", "true", "0", "false"] })) }),
        response: { 200: ref("Endpoints"), "4xx": ErrorBodyRef, "5xx": ErrorBodyRef },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const { namespace, name } = req.params as { namespace: string; name: string };
      const { watch } = req.query as { watch?: string };
      await ctx.repo.get("App", namespace, name); // 404 when there is no such App
      if (watch === "1" || watch === "true") {
        await streamEndpoints(reply, ctx, namespace, name);
        return reply;
      }
      const list = await ctx.repo.list("Instance", namespace);
      return endpointsOf(name, namespace, list.items, list.resourceVersion);
    },
  );
}

async function streamEndpoints(reply: FastifyReply, ctx: RouteContext, namespace: string, app: string): Promise<void> {
  const list = await ctx.repo.list("Instance", namespace);
  const current = new Map<string, Instance>(list.items.map((i) => [objectKey(i), i]));
  const fingerprint = (e: Endpoints) => JSON.stringify(e.endpoints);
  let last = endpointsOf(app, namespace, current.values(), list.resourceVersion);
  let lastPrint = fingerprint(last);
  let ended = false;
  const out: string[] = [JSON.stringify({ type: "ADDED", object: last }) + "\n"];
  // Set once the headers are out; lines before that wait in `out`.
  const conn: { raw?: NodeJS.WritableStream } = {};
  const write = (line: string) => (conn.raw ? conn.raw.write(line) : out.push(line));
  const end = () => {
    if (ended) return;
    ended = true;
    ctx.watches.remove(end);
    void watch.close().catch(() => undefined);
    conn.raw?.end();
  };
  const watch = await ctx.repo.watch("Instance", namespace, String(BigInt(list.resourceVersion) + 1n), {
    onEvent: (ev) => {
      if (ended) return;
      const key = objectKey(ev.object);
      if (ev.type === "DELETED") current.delete(key);
      else current.set(key, ev.object);
      if (ev.object.spec.app !== app) return;
      const next = endpointsOf(app, namespace, current.values(), ev.object.metadata.resourceVersion);
      const print = fingerprint(next);
      if (print === lastPrint) return;
      last = next;
      lastPrint = print;
      write(JSON.stringify({ type: "MODIFIED", object: next }) + "\n");
    },
    onRelist: (items, rv) => {
      current.clear();
      for (const i of items) current.set(objectKey(i), i);
      const next = endpointsOf(app, namespace, current.values(), rv);
      if (fingerprint(next) !== lastPrint) {
        last = next;
        lastPrint = fingerprint(next);
        write(JSON.stringify({ type: "MODIFIED", object: next }) + "\n");
      }
    },
    onError: (err) => {
      write(JSON.stringify({ type: "ERROR", object: errorResponse(err).body }) + "\n");
      end();
    },
  });
  reply.hijack();
  reply.raw.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-cache" });
  reply.raw.flushHeaders();
  for (const line of out.splice(0)) reply.raw.write(line);
  conn.raw = reply.raw;
  if (ended) {
    reply.raw.end();
    return;
  }
  ctx.watches.add(end);
  reply.raw.on("close", end);
}
