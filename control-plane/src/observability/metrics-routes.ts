// GET /metrics                  grove-server's own metrics (this replica)
// GET /v1/nodes/{name}/metrics  a node's agent's metrics, asked over its gRPC
//                               stream (a METRICS sub-stream): nodes open no
//                               port, like logs, exec and stats
// GET /v1/metrics/targets       every node's metrics as Prometheus HTTP service
//                               discovery targets (http_sd_configs)
//
// Both in Prometheus' text format, for a scraper holding the metrics token
// (<data-dir>/metrics-token, read-only, good for nothing else) or a
// cluster-admin token. The authorization table (auth/policy.ts) lists them as
// checked by the route itself, because the metrics token is no API identity.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { GroveError, NAME_PATTERN } from "@grove/api";
import { tokenMatches } from "../http/auth";
import type { TokenService } from "../auth/tokens";
import type { AgentStreams } from "../http/logs-exec-stats-routes";
import { endError } from "../grpc/sub-streams";
import type { ControlPlaneMetrics } from "./metrics";

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
/** How long a node's metrics may take (its agent reads every container's cgroups). */
const AGENT_METRICS_TIMEOUT_MS = 10_000;

export interface MetricsRouteOptions {
  metrics: ControlPlaneMetrics;
  /** The scrape-only token (ensureToken(dataDir, "metrics-token")). */
  metricsToken: string;
  /** The cluster's node names (the nodes informer), for the discovery targets. */
  nodeNames?: () => string[];
}

async function authorizeScrape(req: FastifyRequest, tokens: TokenService, metricsToken: string): Promise<void> {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  if (!match) throw new GroveError("Unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'");
  const token = match[1]!;
  if (metricsToken && tokenMatches(token, metricsToken)) return;
  const who = await tokens.identify(token);
  if (!who) throw new GroveError("Unauthorized", "invalid bearer token");
  if (who.role !== "cluster-admin") {
    throw new GroveError("Forbidden", `${who.name} (role ${who.role}) may not read metrics: use the metrics token`);
  }
}

/** A node's agent metrics text over a METRICS sub-stream. */
export function agentMetricsOver(agents: AgentStreams, node: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let cancel: (() => void) | undefined;
    const timer = setTimeout(() => {
      cancel?.();
      reject(new GroveError("NodeUnavailable", `the agent of node ${node} did not answer a metrics request in time`));
    }, AGENT_METRICS_TIMEOUT_MS);
    agents
      .openStream(
        node,
        { kind: "METRICS", instanceUid: "" },
        {
          onOutput: () => undefined,
          onEnd: (end) => {
            clearTimeout(timer);
            const err = endError(end, `metrics from node ${node}`);
            if (err) reject(err);
            else resolve(end.metrics);
          },
          onBroken: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        },
      )
      .then(
        (s) => (cancel = () => s.cancel()),
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
  });
}

export function registerMetricsRoutes(
  app: FastifyInstance,
  tokens: TokenService,
  o: MetricsRouteOptions,
  agents: AgentStreams | undefined,
): void {
  const text = (reply: FastifyReply, body: string) => reply.header("content-type", METRICS_CONTENT_TYPE).send(body);
  // Before validation, like the authorization hook: an unauthenticated caller learns nothing from a 400.
  const onRequest = async (req: FastifyRequest) => authorizeScrape(req, tokens, o.metricsToken);
  app.get(
    "/metrics",
    { onRequest, schema: { tags: ["metrics"], summary: "grove-server's metrics (Prometheus text format)" } },
    async (_req, reply) => text(reply, await o.metrics.render()),
  );
  if (!agents) return;
  app.get<{ Params: { name: string } }>(
    "/v1/nodes/:name/metrics",
    {
      onRequest,
      schema: {
        tags: ["metrics"],
        summary: "a node's agent metrics (Prometheus text format), through its stream",
        params: Type.Object({ name: Type.String({ pattern: NAME_PATTERN, maxLength: 63 }) }),
      },
    },
    async (req, reply) => text(reply, await agentMetricsOver(agents, req.params.name)),
  );
  const nodeNames = o.nodeNames;
  if (!nodeNames) return;
  // Prometheus HTTP SD: one target per node, scraped through the server Prometheus asked (its Host header).
  app.get(
    "/v1/metrics/targets",
    { onRequest, schema: { tags: ["metrics"], summary: "every node's agent metrics as Prometheus http_sd targets" } },
    async (req) =>
      nodeNames()
        .sort()
        .map((node) => ({
          targets: [req.headers.host ?? req.hostname],
          labels: { __metrics_path__: `/v1/nodes/${node}/metrics`, node },
        })),
  );
}
