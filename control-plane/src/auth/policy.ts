// Who may do what: one declarative table from each HTTP route to the verb,
// resource and scope it needs, and what each role allows. The authorization
// hook (authorize.ts) looks every request up here, and a test enumerates every
// registered route and fails when one has no entry, so no route can skip it.
import { KINDS, pluralOf, type Role, type Verb } from "@grove/api";
import { resourceUrls } from "../http/resource-routes";

export type Resource =
  | "apps"
  | "instances"
  | "tasks"
  | "events"
  | "nodes"
  | "secrets"
  | "tokens"
  | "capacity"
  | "plan"
  | "stats"
  | "namespaces";

/**
 * - namespace: the route's :namespace parameter names the namespace.
 * - cluster: the whole cluster (nodes, capacity, plan, lists across namespaces).
 * - query-namespace: the ?namespace= query when given, else the whole cluster (GET /v1/stats).
 * - own-namespace: the caller's own namespace (cluster-admin: all); the handler answers only
 *   what lies in it (GET /v1/namespaces).
 * - public: no authentication (health, readiness, version, API docs, the dashboard's files).
 */
export type Scope = "namespace" | "cluster" | "query-namespace" | "own-namespace" | "public";

export interface RouteRule {
  verb: Verb;
  resource: Resource;
  scope: Scope;
  /** ?watch=1 turns a list (or get) into a watch. */
  watchable?: boolean;
}

const PUBLIC: RouteRule = { verb: "get", resource: "capacity", scope: "public" };
/** Checked by the route (observability/metrics-routes.ts), not by the authorization hook. */
const SCRAPE: RouteRule = PUBLIC;

function kindRules(): Record<string, RouteRule> {
  const out: Record<string, RouteRule> = {};
  for (const kind of KINDS) {
    const resource = pluralOf(kind) as Resource;
    const u = resourceUrls(kind);
    const ns: Scope = kind === "Node" ? "cluster" : "namespace";
    out[`GET ${u.collection}`] = { verb: "list", resource, scope: ns, watchable: true };
    out[`GET ${u.all}`] = { verb: "list", resource, scope: "cluster", watchable: true };
    out[`GET ${u.object}`] = { verb: "get", resource, scope: ns };
    out[`PUT ${u.object}`] = { verb: "update", resource, scope: ns };
    out[`DELETE ${u.object}`] = { verb: "delete", resource, scope: ns };
    if (kind !== "Node") out[`POST ${u.collection}`] = { verb: "create", resource, scope: ns };
  }
  return out;
}

/** Route ("METHOD url pattern" as fastify registers it) -> what it needs. HEAD uses its GET. */
export const ROUTE_POLICY: Readonly<Record<string, RouteRule>> = {
  "GET /healthz": PUBLIC,
  "GET /readyz": PUBLIC,
  "GET /openapi.json": PUBLIC,
  "GET /version": PUBLIC,
  // CORS preflights (http/frontend-routes.ts, only with --cors-origins): answered before any handler.
  "OPTIONS *": PUBLIC,
  ...kindRules(),
  "GET /v1/namespaces/:namespace/apps/:name/endpoints": {
    verb: "get",
    resource: "apps",
    scope: "namespace",
    watchable: true,
  },
  "GET /v1/capacity": { verb: "get", resource: "capacity", scope: "cluster" },
  "POST /v1/plan": { verb: "create", resource: "plan", scope: "cluster" },
  "GET /v1/stats": { verb: "stats", resource: "stats", scope: "query-namespace" },
  "GET /v1/namespaces/:namespace/instances/:name/logs": { verb: "logs", resource: "instances", scope: "namespace" },
  "GET /v1/namespaces/:namespace/instances/:name/stats": { verb: "stats", resource: "instances", scope: "namespace" },
  "GET /v1/namespaces/:namespace/instances/:name/exec": { verb: "exec", resource: "instances", scope: "namespace" },
  "GET /v1/namespaces/:namespace/secrets": { verb: "list", resource: "secrets", scope: "namespace" },
  "GET /v1/secrets": { verb: "list", resource: "secrets", scope: "cluster" },
  "GET /v1/namespaces/:namespace/secrets/:name": { verb: "get", resource: "secrets", scope: "namespace" },
  "POST /v1/namespaces/:namespace/secrets": { verb: "create", resource: "secrets", scope: "namespace" },
  "PUT /v1/namespaces/:namespace/secrets/:name": { verb: "update", resource: "secrets", scope: "namespace" },
  "DELETE /v1/namespaces/:namespace/secrets/:name": { verb: "delete", resource: "secrets", scope: "namespace" },
  "GET /v1/namespaces/:namespace/tokens": { verb: "list", resource: "tokens", scope: "namespace" },
  "POST /v1/namespaces/:namespace/tokens": { verb: "create", resource: "tokens", scope: "namespace" },
  "DELETE /v1/namespaces/:namespace/tokens/:name": { verb: "delete", resource: "tokens", scope: "namespace" },
  "GET /v1/tokens": { verb: "list", resource: "tokens", scope: "cluster" },
  // Rollouts (http/rollout-routes.ts): history is a read of the App, the rest change it.
  "GET /v1/namespaces/:namespace/apps/:name/revisions": { verb: "get", resource: "apps", scope: "namespace" },
  "POST /v1/namespaces/:namespace/apps/:name/rollout/undo": { verb: "update", resource: "apps", scope: "namespace" },
  "POST /v1/namespaces/:namespace/apps/:name/rollout/pause": { verb: "update", resource: "apps", scope: "namespace" },
  "POST /v1/namespaces/:namespace/apps/:name/rollout/resume": { verb: "update", resource: "apps", scope: "namespace" },
  "POST /v1/namespaces/:namespace/apps/:name/rollout/promote": { verb: "update", resource: "apps", scope: "namespace" },
  // Events (http/events.ts): read-only, watchable.
  "GET /v1/namespaces/:namespace/events": { verb: "list", resource: "events", scope: "namespace", watchable: true },
  "GET /v1/events": { verb: "list", resource: "events", scope: "cluster", watchable: true },
  // Sub-streams one replica opens on another's agents (replicas/peer-streams.ts): the admin token only.
  "GET /internal/v1/nodes/:node/streams": { verb: "exec", resource: "nodes", scope: "cluster" },
  "POST /v1/tokens": { verb: "create", resource: "tokens", scope: "cluster" },
  // Joining (http/join-routes.ts): a join token is made by a cluster-admin; the join itself carries
  // it in the body (the route checks it, single use), so it needs no bearer token.
  "POST /v1/join-tokens": { verb: "create", resource: "tokens", scope: "cluster" },
  "POST /v1/join": { verb: "create", resource: "nodes", scope: "public" },
  "DELETE /v1/tokens/:name": { verb: "delete", resource: "tokens", scope: "cluster" },
  // Namespace objects (namespaces/routes.ts): cluster-admins write them (a namespace's quota and
  // policy bind its own roles); those roles may read their own, with its usage.
  "GET /v1/namespaces": { verb: "list", resource: "namespaces", scope: "own-namespace" },
  "POST /v1/namespaces": { verb: "create", resource: "namespaces", scope: "cluster" },
  "GET /v1/namespaces/:namespace": { verb: "get", resource: "namespaces", scope: "namespace" },
  "PUT /v1/namespaces/:namespace": { verb: "update", resource: "namespaces", scope: "namespace" },
  "DELETE /v1/namespaces/:namespace": { verb: "delete", resource: "namespaces", scope: "namespace" },
  // Metrics (observability/metrics-routes.ts): the route checks the caller itself, the metrics
  // token (no API identity) or a cluster-admin token; no bearer token gets 401.
  "GET /metrics": SCRAPE,
  "GET /v1/nodes/:name/metrics": SCRAPE,
  "GET /v1/metrics/targets": SCRAPE,
};

/** The rule of a registered route; undefined = not in the table (refused). */
export function ruleFor(method: string, url: string): RouteRule | undefined {
  // The API docs (swagger-ui registers its pages and assets under /docs).
  if (url === "/docs" || url.startsWith("/docs/")) return PUBLIC;
  // The dashboard's static files (http/frontend-routes.ts); what it shows comes from the API with a token.
  if (url === "/ui" || url.startsWith("/ui/")) return PUBLIC;
  return ROUTE_POLICY[`${method === "HEAD" ? "GET" : method} ${url}`];
}

const ALL: readonly Verb[] = ["get", "list", "watch", "create", "update", "delete", "exec", "logs", "stats"];
const READ: readonly Verb[] = ["get", "list", "watch"];

/** What a namespaced role may do to each resource of its namespace. */
const NAMESPACE_ROLES: Record<Exclude<Role, "cluster-admin">, Partial<Record<Resource, readonly Verb[]>>> = {
  "namespace-admin": {
    apps: ALL,
    instances: ALL,
    tasks: ALL,
    events: READ,
    secrets: ALL,
    tokens: ALL,
    stats: ["stats"],
    namespaces: ["get", "list"],
  },
  edit: {
    apps: ALL,
    instances: ALL,
    tasks: ALL,
    events: READ,
    secrets: ALL,
    stats: ["stats"],
    namespaces: ["get", "list"],
  },
  // Logs and exec are left out: logs often carry what Secrets hold, exec reaches them.
  view: {
    apps: READ,
    instances: [...READ, "stats"],
    tasks: READ,
    events: READ,
    secrets: ["get", "list"],
    stats: ["stats"],
    namespaces: ["get", "list"],
  },
};

export interface Identity {
  /** "admin" for the bootstrap token, else the token's name. */
  name: string;
  role: Role;
  /** The namespace a namespaced role is bound to (its token's home); none for cluster-admin. */
  namespace?: string;
  /** Further namespaces the role holds in (a token bound to several namespaces). */
  namespaces?: readonly string[];
}

/** Every namespace a namespaced identity's role holds in: its home first. */
export function boundNamespaces(who: Identity): string[] {
  return who.namespace === undefined ? [] : [who.namespace, ...(who.namespaces ?? [])];
}

/** undefined when allowed; else why not (the 403's message). */
export function denial(
  who: Identity,
  verb: Verb,
  resource: Resource,
  namespace: string | undefined,
): string | undefined {
  if (who.role === "cluster-admin") return undefined;
  const where = namespace === undefined ? "the whole cluster" : `namespace ${namespace}`;
  const bound = boundNamespaces(who);
  const inWhat = bound.length === 1 ? `namespace ${bound[0]}` : `namespaces ${bound.join(", ")}`;
  const refused = `${who.name} (role ${who.role} in ${inWhat}) may not ${verb} ${resource} in ${where}`;
  if (namespace === undefined || !bound.includes(namespace)) return refused;
  const verbs = NAMESPACE_ROLES[who.role][resource] ?? [];
  return verbs.includes(verb) ? undefined : refused;
}

/** Whether a GET of a Secret answers its values (view sees names and keys only). */
export function mayReadSecretValues(who: Identity): boolean {
  return who.role !== "view";
}
