// Operations on running instances, served by their node's agent over its
// Connect stream (grpc/sub-streams.ts); no port on the node is reached:
//   GET /v1/namespaces/{ns}/instances/{name}/logs?follow=1&tail=N  chunked text/plain
//   GET /v1/namespaces/{ns}/instances/{name}/exec?command=..&tty=1   WebSocket (framing: @grove/api ExecChannel)
//   GET /v1/namespaces/{ns}/instances/{name}/stats                   InstanceStats
//   GET /v1/stats[?namespace=ns]                                     StatsList (grove top)
// All of them take the bearer token like every other route.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { Type, type Static } from "@sinclair/typebox";
import {
  ExecChannel,
  GroveError,
  NAME_PATTERN,
  execFrame,
  type ExecExit,
  type Instance,
  type InstanceStats,
  type StatsList,
  MAX_ARG_LENGTH,
  MAX_ARGS,
  MAX_PATH_LENGTH,
  MAX_USER_LENGTH,
} from "@grove/api";
import type { ContainerStats__Output, LogsOptions } from "@grove/proto";
import { endError, type SubStream, type SubStreamHandlers, type SubStreamRequest } from "../grpc/sub-streams";
import type { RouteContext } from "./resource-routes";
import { errorResponse } from "./errors";
import { ErrorBodyRef } from "./schemas";
import { LogText, ref } from "./response-schemas";

/** What these routes need from the agent gateway. */
export interface AgentStreams {
  openStream(node: string, req: SubStreamRequest, handlers: SubStreamHandlers): Promise<SubStream>;
  stats(node: string, uid: string): Promise<ContainerStats__Output[]>;
}

const NameParam = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
const InstanceParams = Type.Object({ namespace: NameParam, name: NameParam });
const Flag = Type.String({ enum: ["1", "true", "0", "false"] });
/** An exec argument (and user, workingDir): bounded as a command entry, and no NUL (execve cannot pass one). */
const ExecArg = { maxLength: MAX_ARG_LENGTH, pattern: "^[^\\u0000]*$" };
const errors = { "4xx": ErrorBodyRef, "5xx": ErrorBodyRef };

function on(flag: string | undefined): boolean {
  return flag === "1" || flag === "true";
}

/** The instance and the node it runs on; 404 / 409 when there is none. */
async function placed(ctx: RouteContext, namespace: string, name: string): Promise<{ inst: Instance; node: string }> {
  const inst = await ctx.repo.get("Instance", namespace, name);
  const node = inst.status?.nodeName ?? inst.spec.nodeName;
  if (!node) {
    throw new GroveError(
      "Conflict",
      `instance ${name} in namespace ${namespace} is not placed on a node yet (${inst.status?.state ?? "Pending"})`,
    );
  }
  return { inst, node };
}

function toApiStats(s: ContainerStats__Output, node: string, inst: Instance | undefined): InstanceStats {
  const out: InstanceStats = {
    namespace: s.namespace,
    name: s.name,
    app: inst?.spec.app ?? "",
    uid: s.uid,
    nodeName: node,
    cpuUsageNs: Number(s.cpuUsageNs),
    memoryBytes: Number(s.memoryBytes),
    memoryPeakBytes: Number(s.memoryPeakBytes),
    pids: Number(s.pids),
    oomKills: Number(s.oomKills),
    sampledAt: new Date(Number(s.sampledAtMs) || Date.now()).toISOString(),
  };
  if (inst) out.limits = { ...inst.spec.resources };
  return out;
}

const LogsQuery = Type.Object({
  follow: Type.Optional(Flag),
  tail: Type.Optional(Type.String({ pattern: "^-?[0-9]+$", description: "last N lines; -1: all (default)" })),
  previous: Type.Optional(Flag),
  sinceSeconds: Type.Optional(
    Type.String({ pattern: "^[0-9]+$", description: "only lines that arrived in the last N seconds" }),
  ),
  sinceTime: Type.Optional(
    Type.String({ format: "date-time", description: "only lines that arrived at or after this time (RFC 3339)" }),
  ),
  timestamps: Type.Optional(Flag),
});

/** sinceSeconds (from this server's clock) or sinceTime, in ms since the epoch; 0: the whole log. */
function sinceOf(q: Static<typeof LogsQuery>): number {
  if (q.sinceSeconds !== undefined && q.sinceTime !== undefined) {
    throw new GroveError("BadRequest", "give sinceSeconds or sinceTime, not both", [
      { path: "/sinceTime", message: "must not be set with sinceSeconds" },
    ]);
  }
  if (q.sinceSeconds !== undefined) return Date.now() - Number(q.sinceSeconds) * 1000;
  if (q.sinceTime !== undefined) return Date.parse(q.sinceTime);
  return 0;
}

export function registerOperationRoutes(app: FastifyInstance, ctx: RouteContext, agents: AgentStreams): void {
  app.get(
    "/v1/namespaces/:namespace/instances/:name/logs",
    {
      schema: {
        tags: ["instances"],
        operationId: "getInstanceLogs",
        summary:
          "The instance's log (stdout and stderr), as chunked text/plain; follow=1 streams what is appended; " +
          "previous=1: the log kept from the instance of this name that ran before it on its node",
        params: InstanceParams,
        querystring: LogsQuery,
        produces: ["text/plain"],
        response: { 200: LogText, ...errors },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const { namespace, name } = req.params as { namespace: string; name: string };
      const q = req.query as Static<typeof LogsQuery>;
      const { inst, node } = await placed(ctx, namespace, name);
      await streamLogs(reply, ctx, agents, node, inst, {
        follow: on(q.follow) && !on(q.previous),
        tailLines: Number(q.tail ?? -1),
        previous: on(q.previous),
        namespace,
        name,
        sinceMs: sinceOf(q),
        timestamps: on(q.timestamps),
      });
      return reply;
    },
  );

  app.get(
    "/v1/namespaces/:namespace/instances/:name/stats",
    {
      schema: {
        tags: ["instances"],
        operationId: "getInstanceStats",
        summary: "Resource usage of a running instance (cpu, memory current and peak, pids, OOM kills)",
        params: InstanceParams,
        response: { 200: ref("InstanceStats"), ...errors },
      },
    },
    async (req: FastifyRequest) => {
      const { namespace, name } = req.params as { namespace: string; name: string };
      const { inst, node } = await placed(ctx, namespace, name);
      const [s] = await agents.stats(node, inst.metadata.uid ?? "");
      if (!s) throw new GroveError("Conflict", `instance ${name} in namespace ${namespace} is not running`);
      return toApiStats(s, node, inst);
    },
  );

  app.get(
    "/v1/stats",
    {
      schema: {
        tags: ["instances"],
        operationId: "getStats",
        summary: "Resource usage of every running instance, asked of every node's agent (grove top)",
        querystring: Type.Object({ namespace: Type.Optional(NameParam) }),
        response: { 200: ref("StatsList"), ...errors },
      },
    },
    async (req: FastifyRequest): Promise<StatsList> => {
      const { namespace } = req.query as { namespace?: string };
      const [nodes, instances] = await Promise.all([ctx.repo.list("Node"), ctx.repo.list("Instance")]);
      const byUid = new Map(instances.items.map((i) => [i.metadata.uid ?? "", i]));
      const result: StatsList = { items: [], unavailable: [] };
      await Promise.all(
        nodes.items.map(async (n) => {
          const node = n.metadata.name;
          try {
            for (const s of await agents.stats(node, "")) {
              if (namespace === undefined || s.namespace === namespace) {
                result.items.push(toApiStats(s, node, byUid.get(s.uid)));
              }
            }
          } catch (err) {
            result.unavailable.push({ nodeName: node, message: err instanceof Error ? err.message : String(err) });
          }
        }),
      );
      result.items.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
      result.unavailable.sort((a, b) => a.nodeName.localeCompare(b.nodeName));
      return result;
    },
  );

  app.get(
    "/v1/namespaces/:namespace/instances/:name/exec",
    {
      websocket: true,
      schema: {
        tags: ["instances"],
        operationId: "execInstance",
        summary:
          "Run a command in the running instance over a WebSocket (binary frames: channel byte + payload; " +
          "0 stdin, 1 stdout, 2 stderr, 3 resize JSON, 4 exit JSON, 5 close stdin)",
        params: InstanceParams,
        querystring: Type.Object({
          command: Type.Union([
            Type.String({ minLength: 1, ...ExecArg }),
            Type.Array(Type.String(ExecArg), { minItems: 1, maxItems: MAX_ARGS }),
          ]),
          tty: Type.Optional(Flag),
          cols: Type.Optional(Type.String({ pattern: "^[0-9]+$" })),
          rows: Type.Optional(Type.String({ pattern: "^[0-9]+$" })),
          user: Type.Optional(Type.String({ ...ExecArg, maxLength: MAX_USER_LENGTH })),
          workingDir: Type.Optional(Type.String({ ...ExecArg, maxLength: MAX_PATH_LENGTH })),
        }),
        response: errors,
      },
      // Refuse with a plain HTTP status (before the upgrade) what cannot run at all.
      preHandler: async (req: FastifyRequest) => {
        const { namespace, name } = req.params as { namespace: string; name: string };
        const { inst } = await placed(ctx, namespace, name);
        if (inst.status?.state !== "Running") {
          throw new GroveError(
            "Conflict",
            `instance ${name} in namespace ${namespace} is ${inst.status?.state ?? "Pending"}; exec needs it Running`,
          );
        }
      },
    },
    (socket: WebSocket, req: FastifyRequest) => {
      const { namespace, name } = req.params as { namespace: string; name: string };
      const q = req.query as {
        command: string | string[];
        tty?: string;
        cols?: string;
        rows?: string;
        user?: string;
        workingDir?: string;
      };
      serveExec(socket, ctx, agents, namespace, name, {
        command: Array.isArray(q.command) ? q.command : [q.command],
        env: {},
        workingDir: q.workingDir ?? "",
        user: q.user ?? "",
        tty: on(q.tty),
        cols: Number(q.cols ?? 0),
        rows: Number(q.rows ?? 0),
      });
    },
  );
}

async function streamLogs(
  reply: FastifyReply,
  ctx: RouteContext,
  agents: AgentStreams,
  node: string,
  inst: Instance,
  logs: LogsOptions,
): Promise<void> {
  const what = `logs of instance ${inst.metadata.name}`;
  // Until the agent has found the instance, its errors become the HTTP status.
  let started = false;
  let finished = false;
  const early: Buffer[] = [];
  let settle!: { resolve: () => void; reject: (e: Error) => void };
  const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  const res = reply.raw;
  const close = () => {
    if (finished) return;
    finished = true;
    ctx.watches.remove(stop);
    sub?.cancel();
  };
  const stop = () => {
    close();
    res.end();
  };
  const handlers: SubStreamHandlers = {
    onOutput: (_fd, data) => {
      if (!started) {
        if (data.length > 0) early.push(data);
        settle.resolve();
        return;
      }
      if (finished || data.length === 0) return;
      // Credit goes back only once the client has taken the bytes.
      if (res.write(data)) sub?.credit(data.length);
      else res.once("drain", () => sub?.credit(data.length));
    },
    onEnd: (end) => {
      const err = endError(end, what);
      if (!started) {
        if (err) settle.reject(err);
        else {
          finished = true;
          settle.resolve();
        }
        return;
      }
      if (finished) return;
      finished = true;
      ctx.watches.remove(stop);
      // After the headers an error can only break the stream: the client must not take it for the end.
      if (err) res.destroy(err);
      else res.end();
    },
    onBroken: (err) => {
      if (!started) return settle.reject(err);
      if (finished) return;
      finished = true;
      ctx.watches.remove(stop);
      res.destroy(err);
    },
  };
  const sub = await agents.openStream(node, { kind: "LOGS", instanceUid: inst.metadata.uid ?? "", logs }, handlers);
  // A client that leaves while the agent is still looking must not leave a follow behind.
  let clientGone = false;
  const onEarlyClose = () => {
    clientGone = true;
    sub.cancel();
    settle.resolve();
  };
  reply.raw.once("close", onEarlyClose);
  try {
    await ready;
  } catch (err) {
    sub.cancel();
    throw err;
  } finally {
    reply.raw.off("close", onEarlyClose);
  }
  reply.hijack();
  if (clientGone || res.destroyed) {
    finished = true;
    sub.cancel();
    return;
  }
  res.writeHead(200, {
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  });
  res.flushHeaders();
  started = true;
  for (const chunk of early.splice(0)) {
    if (res.write(chunk)) sub.credit(chunk.length);
    else res.once("drain", () => sub.credit(chunk.length));
  }
  if (finished) {
    // The agent ended (a log without follow) before the headers went out.
    res.end();
    return;
  }
  ctx.watches.add(stop);
  res.on("close", close);
}

function serveExec(
  socket: WebSocket,
  ctx: RouteContext,
  agents: AgentStreams,
  namespace: string,
  name: string,
  exec: NonNullable<SubStreamRequest["exec"]>,
): void {
  let sub: SubStream | undefined;
  let done = false;
  const pending: Buffer[] = [];
  const finish = (exit: ExecExit, code = 1000) => {
    if (done) return;
    done = true;
    ctx.watches.remove(onShutdown);
    if (socket.readyState === socket.OPEN) {
      socket.send(execFrame(ExecChannel.Exit, JSON.stringify(exit)));
      socket.close(code);
    }
  };
  const onShutdown = () => {
    sub?.cancel();
    finish({ error: { code: "NodeUnavailable", message: "the control plane is shutting down" } }, 1001);
  };
  const fail = (err: unknown) => {
    const { body } = errorResponse(err);
    finish({ error: { code: body.code, message: body.message } }, 1011);
  };
  const onInput = (frame: Buffer) => {
    if (!sub) {
      pending.push(frame);
      return;
    }
    const channel = frame[0];
    const payload = frame.subarray(1);
    if (channel === ExecChannel.Stdin) sub.input({ stdin: payload });
    else if (channel === ExecChannel.CloseStdin) sub.input({ closeStdin: true });
    else if (channel === ExecChannel.Resize) {
      try {
        const { cols, rows } = JSON.parse(payload.toString()) as { cols?: unknown; rows?: unknown };
        if (typeof cols === "number" && typeof rows === "number" && cols > 0 && rows > 0) sub.input({ cols, rows });
      } catch {
        // a malformed resize is ignored
      }
    }
  };
  socket.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
    const frame = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (frame.length > 0) onInput(frame);
  });
  socket.on("close", () => {
    done = true;
    ctx.watches.remove(onShutdown);
    sub?.cancel();
  });
  ctx.watches.add(onShutdown);
  const uidOf = ctx.repo.get("Instance", namespace, name).then((i) => ({
    uid: i.metadata.uid ?? "",
    node: i.status?.nodeName ?? i.spec.nodeName ?? "",
  }));
  uidOf
    .then(({ uid, node }) =>
      agents.openStream(
        node,
        { kind: "EXEC", instanceUid: uid, exec },
        {
          onOutput: (fd, data) => {
            if (done || data.length === 0 || (fd !== 1 && fd !== 2)) return;
            socket.send(execFrame(fd === 2 ? ExecChannel.Stderr : ExecChannel.Stdout, data), () =>
              sub?.credit(data.length),
            );
          },
          onEnd: (end) => {
            const err = endError(end, `exec in instance ${name}`);
            if (err) fail(err);
            else finish({ exitCode: end.exitCode, signal: end.signal });
          },
          onBroken: fail,
        },
      ),
    )
    .then((s) => {
      sub = s;
      if (done) return s.cancel();
      for (const frame of pending.splice(0)) onInput(frame);
    })
    .catch(fail);
}
