// The HTTP API of the control plane: /v1 resources, health, OpenAPI and docs.
// A thin adapter over the Repository; errors are mapped to statuses in one
// place (errors.ts).
import Fastify, { LogController, type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import websocket from "@fastify/websocket";
import type { Logger } from "pino";
import { API_VERSION, EXEC_SUBPROTOCOL, type App, type HostPortPolicy, type Task } from "@grove/api";
import type { Repository } from "../resources/repository";
import type { HostPortRange } from "../scheduler";
import type { Store } from "../store/store";
import { registerAppRoutes } from "./apps";
import { registerEndpointRoutes } from "./endpoints";
import { addEventSchemas, registerEventRoutes } from "./events";
import { installAuthorization } from "../auth/authorize";
import type { AuditLog } from "../auth/audit";
import { registerTokenRoutes } from "../auth/token-routes";
import { TokenService } from "../auth/tokens";
import type { IdentityLimits } from "../auth/limits";
import { registerSecretRoutes } from "../secrets/routes";
import type { SecretService } from "../secrets/secret-store";
import { installErrorHandling } from "./errors";
import { installManifestBodyParsers } from "./manifest-bodies";
import { registerHealthRoutes } from "./health";
import { registerInstanceRoutes } from "./instances";
import { registerNodeRoutes } from "./nodes";
import { registerOperationRoutes, type AgentStreams } from "./logs-exec-stats-routes";
import { registerSchedulingRoutes } from "./scheduling";
import { registerRolloutRoutes } from "./rollout-routes";
import { registerTaskRoutes } from "./tasks";
import { registerPeerStreamRoute, type LocalStreams } from "../replicas/peer-streams";
import type { ListCache, RouteContext } from "./resource-routes";
import type { WorkloadCache, WorkloadCaches } from "../namespaces/workload-source";
import { addSharedSchemas } from "./schemas";
import { addResponseSchemas } from "./response-schemas";
import { installCors, registerFrontendRoutes } from "./frontend-routes";
import { installGracefulClose } from "./graceful-close";
import { WatchRegistry } from "./watch-stream";
import { installNamespaces } from "../namespaces/setup";
import { installHttpTelemetry } from "../observability/http-telemetry";
import { registerMetricsRoutes, type MetricsRouteOptions } from "../observability/metrics-routes";

export interface HttpServerOptions {
  repo: Repository;
  store: Store;
  /** The bootstrap cluster-admin token (other identities: tokens). */
  adminToken: string;
  /** A pino logger, or false (the default) for none. */
  logger?: Logger | false;
  /** The agent gateway: logs, exec and stats of instances (routes absent without it). */
  agents?: AgentStreams;
  /** This replica's own agents' streams, served to the other replicas (replicas/peer-streams.ts). */
  peerStreams?: LocalStreams;
  /** Which fixed host ports Apps may publish (refused at apply and plan); unchecked without it. */
  hostPorts?: HostPortPolicy;
  /** The scheduler loop's range of dynamic host ports, so a plan hands out the ports the loop would. */
  dynamicHostPorts?: HostPortRange;
  /** Tokens and their roles (auth/tokens.ts); default: a TokenService over the store with adminToken. */
  tokens?: TokenService;
  /** Where mutations, sessions and refusals are recorded (none without it). */
  audit?: AuditLog;
  /** Per-identity limits (auth/limits.ts defaults without). */
  limits?: IdentityLimits;
  /** Secrets (routes absent without them). */
  secrets?: SecretService;
  /** Serve HTTPS with this certificate (chain) and key (PEM); plain HTTP without (unit tests). */
  https?: { certPem: string; keyPem: string };
  /** Metrics (GET /metrics, a node's agent's) and per-request latency and spans (observability/). */
  observability?: MetricsRouteOptions;
  /** More routes (the join routes: join-routes.ts). */
  routes?: Array<(app: FastifyInstance) => void>;
  /** Origins (e.g. "https://paas.example.com") whose pages may call the API: CORS; none by default. */
  corsOrigins?: readonly string[];
  /** How long a watch that asked for bookmarks (?allowWatchBookmarks=1) stays silent at most (default 10 s). */
  watchBookmarkMs?: number;
  /** Informer caches that `?resourceVersion=0` lists are served from (resource-routes.ts, listFromCache). */
  listCaches?: RouteContext["listCaches"];
  /** How long close() lets requests in flight finish before it drops them (graceful-close.ts; default 10 s). */
  shutdownDrainMs?: number;
}

/** The App and Task informers among the list caches, for quota checks (namespaces/workload-source.ts). */
function workloadCaches(caches: RouteContext["listCaches"]): WorkloadCaches {
  const usable = <T>(c: ListCache | undefined) => (c?.waitFor ? (c as unknown as WorkloadCache<T>) : undefined);
  const apps = usable<App>(caches?.App);
  const tasks = usable<Task>(caches?.Task);
  return { ...(apps ? { App: apps } : {}), ...(tasks ? { Task: tasks } : {}) };
}

export async function buildHttpServer(opts: HttpServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.https ? { https: { cert: opts.https.certPem, key: opts.https.keyPem } } : {}),
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    // Fastify's two info lines per request ("incoming request", "request completed") were ~5% of
    // the server's CPU under api-load (pino's writes; every line also goes through the log pipe).
    // observability/http-telemetry.ts logs one instead (its completion only at debug level, or
    // at info when refused or failed); the latency histogram and spans measure every request.
    // (The top-level disableRequestLogging option is deprecated: warning FSTDEP023.)
    logController: new LogController({ disableRequestLogging: true }),
    ajv: {
      // Reject what does not match instead of quietly fixing it: no type
      // coercion, no removal of unknown fields, and every problem at once.
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true },
    },
  }) as unknown as FastifyInstance;

  installErrorHandling(app);
  installManifestBodyParsers(app);
  // First: its onRequest hook starts the request's span before authorization, and its onRoute hook wraps every handler.
  installHttpTelemetry(app, opts.observability?.metrics);
  // grove exec (1 MiB frames at most). Registered before the auth hook: its own
  // onRequest hook must see an upgrade first, so that a refused one (401) has
  // its socket closed after the answer.
  await app.register(websocket, {
    options: {
      maxPayload: 1024 * 1024,
      // A browser offers the token as a second subprotocol (authorize.ts reads it); only this one is echoed.
      handleProtocols: (offered: Set<string>) => (offered.has(EXEC_SUBPROTOCOL) ? EXEC_SUBPROTOCOL : false),
    },
  });
  // Before the authorization hook, so that preflights are answered and refusals carry CORS headers.
  await installCors(app, opts.corsOrigins ?? []);
  if (!opts.adminToken) throw new Error("the HTTP API needs a non-empty admin token");
  const tokens = opts.tokens ?? new TokenService(opts.store, opts.adminToken);
  installAuthorization(app, tokens, opts.audit, opts.limits);
  addSharedSchemas(app);
  addEventSchemas(app);
  addResponseSchemas(app);

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Grove API",
        version: API_VERSION,
        description:
          "Desired state of a Grove cluster. Every object carries metadata.resourceVersion (the store's " +
          "mod revision); writes that name a stale one answer 409 Conflict.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    refResolver: {
      // Name components after the schemas' $id (App, AppList, ErrorBody) rather than def-N.
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`),
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  const watches = new WatchRegistry();
  const ctx: RouteContext = {
    repo: opts.repo,
    watches,
    ...(opts.hostPorts ? { hostPorts: opts.hostPorts } : {}),
    ...(opts.dynamicHostPorts ? { dynamicHostPorts: opts.dynamicHostPorts } : {}),
    ...(opts.watchBookmarkMs !== undefined ? { watchBookmarkMs: opts.watchBookmarkMs } : {}),
    ...(opts.listCaches ? { listCaches: opts.listCaches } : {}),
  };
  ctx.admission = installNamespaces(app, opts.store, opts.repo, workloadCaches(opts.listCaches));
  registerHealthRoutes(app, opts.store);
  await registerFrontendRoutes(app);
  registerAppRoutes(app, ctx);
  registerInstanceRoutes(app, ctx);
  registerNodeRoutes(app, ctx);
  registerTaskRoutes(app, ctx);
  registerEndpointRoutes(app, ctx);
  registerRolloutRoutes(app, ctx);
  registerSchedulingRoutes(app, ctx);
  registerEventRoutes(app, {
    store: opts.store,
    watches,
    ...(opts.watchBookmarkMs !== undefined ? { bookmarkMs: opts.watchBookmarkMs } : {}),
  });
  if (opts.agents) registerOperationRoutes(app, ctx, opts.agents);
  if (opts.peerStreams) registerPeerStreamRoute(app, opts.peerStreams);
  registerTokenRoutes(app, tokens);
  if (opts.secrets) registerSecretRoutes(app, opts.secrets);
  if (opts.observability) registerMetricsRoutes(app, tokens, opts.observability, opts.agents);
  for (const register of opts.routes ?? []) register(app);

  // Open watch streams would hold close() until every client left.
  app.addHook("preClose", async () => watches.closeAll());
  // Nor may a connection that sends nothing (or half a request): close() drops it.
  installGracefulClose(app, opts.shutdownDrainMs);
  return app;
}
