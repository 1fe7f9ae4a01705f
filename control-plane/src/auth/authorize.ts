// The one authentication and authorization hook: every request is looked up
// in the route table (policy.ts), its caller identified by bearer token and
// checked against its role, before any handler runs and before a WebSocket
// upgrade. A route missing from the table is refused (fail closed). Every
// mutating request, exec or logs session and refused request is audited.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { GroveError, tokenFromWebSocketProtocols, type Verb } from "@grove/api";
import { isPublicPath } from "../http/auth";
import type { AuditLog } from "./audit";
import { IdentityLimits, type Session } from "./limits";
import { denial, ruleFor, type Identity, type RouteRule } from "./policy";
import type { TokenService } from "./tokens";

interface Decision {
  identity?: Identity;
  rule?: RouteRule;
  verb?: Verb;
  namespace?: string;
  reason?: string;
  audited?: boolean;
}

const decisions = new WeakMap<FastifyRequest, Decision>();

/** Who made the request (set by the hook for every non-public route). */
export function identityOf(req: FastifyRequest): Identity {
  const id = decisions.get(req)?.identity;
  if (!id) throw new GroveError("Unauthorized", "no identity on this request");
  return id;
}

const MUTATING = new Set(["POST", "PUT", "DELETE", "PATCH"]);
const registered = new WeakMap<FastifyInstance, string[]>();

/** Every route registered after installAuthorization, as "METHOD url" (the test enumerates them). */
export function registeredRoutes(app: FastifyInstance): readonly string[] {
  return registered.get(app) ?? [];
}

export function installAuthorization(
  app: FastifyInstance,
  tokens: TokenService,
  audit?: AuditLog,
  limits: IdentityLimits = new IdentityLimits(),
): void {
  const routes: string[] = [];
  registered.set(app, routes);
  // A route without a rule cannot even be registered: the server does not start.
  app.addHook("onRoute", (r) => {
    for (const method of [r.method].flat()) {
      if (!ruleFor(method, r.url))
        throw new Error(`${method} ${r.url} has no entry in the authorization table (auth/policy.ts)`);
      routes.push(`${method} ${r.url}`);
    }
  });
  app.addHook("onRequest", async (req, reply) => {
    const url = req.routeOptions.url;
    const rule = url !== undefined ? ruleFor(req.method, url) : undefined;
    if (rule?.scope === "public" || (url === undefined && isPublicPath(req.url))) return;
    const d: Decision = { ...(rule ? { rule } : {}) };
    decisions.set(req, d);
    const token = bearerToken(req);
    if (!token) {
      d.reason = "missing bearer token";
      throw new GroveError("Unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'");
    }
    const identity = await tokens.identify(token);
    if (!identity) {
      d.reason = "invalid bearer token";
      throw new GroveError("Unauthorized", "invalid bearer token");
    }
    d.identity = identity;
    if (url === undefined) return; // no such route: 404 for whoever is authenticated
    if (!rule) {
      d.reason = "route has no authorization rule";
      throw new GroveError("Forbidden", `${req.method} ${url} has no authorization rule`);
    }
    const q = req.query as { watch?: string; namespace?: string };
    d.verb = rule.watchable && (q.watch === "1" || q.watch === "true") ? "watch" : rule.verb;
    const params = req.params as { namespace?: string };
    d.namespace =
      rule.scope === "namespace"
        ? params.namespace
        : rule.scope === "query-namespace"
          ? q.namespace
          : rule.scope === "own-namespace"
            ? identity.namespace
            : undefined;
    const why = denial(identity, d.verb, rule.resource, d.namespace);
    if (why) {
      d.reason = why;
      throw new GroveError("Forbidden", why);
    }
    limits.take(identity);
    const session = sessionOf(d.verb, q as { follow?: string });
    if (session) {
      const release = limits.acquire(identity, session);
      reply.raw.once("close", release);
      // An upgraded exec never finishes its HTTP response: its socket's end is the session's.
      if (session === "execs") req.raw.socket?.once("close", release);
    }
    if (audit && d.verb === "exec") {
      // An upgraded exec answers no HTTP response (onResponse does not run): record the session when it ends.
      req.raw.socket?.once("close", () => record(audit, req, d, 101));
    }
  });

  if (!audit) return;
  app.addHook("onResponse", async (req, reply) => {
    const d = decisions.get(req);
    if (!d) return;
    const code = reply.statusCode;
    if (MUTATING.has(req.method) || d.verb === "exec" || d.verb === "logs" || code === 401 || code === 403) {
      record(audit, req, d, code);
    }
  });
}

/**
 * The Authorization header's bearer token; for a WebSocket upgrade without one (a browser cannot
 * set it), the token offered as a subprotocol (@grove/api EXEC_TOKEN_PROTOCOL_PREFIX).
 */
function bearerToken(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (header) return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (req.headers.upgrade?.toLowerCase() !== "websocket") return undefined;
  return tokenFromWebSocketProtocols(req.headers["sec-websocket-protocol"]);
}

function sessionOf(verb: Verb, q: { follow?: string }): Session | undefined {
  if (verb === "watch") return "watches";
  if (verb === "exec") return "execs";
  if (verb === "logs" && (q.follow === "1" || q.follow === "true")) return "follows";
  return undefined;
}

/**
 * The peer's address as the audit names it: the socket's (no proxy is trusted, so never what an
 * X-Forwarded-For header claims), an IPv4 client of a dual-stack listener ("::ffff:10.0.0.5")
 * as the IPv4 address it is.
 */
function clientAddress(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1]! : ip;
}

function record(audit: AuditLog, req: FastifyRequest, d: Decision, code: number): void {
  if (d.audited) return;
  d.audited = true;
  const params = req.params as { namespace?: string; name?: string };
  const namespace = d.namespace ?? params.namespace;
  audit.write({
    time: new Date().toISOString(),
    requestId: String(req.id),
    user: d.identity?.name ?? "anonymous",
    ...(d.identity ? { role: d.identity.role } : {}),
    ...(d.identity?.namespace ? { userNamespace: d.identity.namespace } : {}),
    verb: d.verb ?? d.rule?.verb ?? req.method.toLowerCase(),
    resource: d.rule?.resource ?? req.routeOptions.url ?? "unknown",
    ...(namespace ? { namespace } : {}),
    ...(params.name ? { name: params.name } : {}),
    code,
    source: clientAddress(req.ip),
    ...(d.reason ? { reason: d.reason } : {}),
  });
}
