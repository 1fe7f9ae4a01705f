// The HTTP API's span and latency per request. Installed before the routes
// and the authorization hook: the span starts in the first onRequest hook
// (continuing a W3C `traceparent` the client sent), every route handler runs
// with it active (so store calls nest under it and leave it for the
// controllers), and onResponse ends it and observes the latency histogram by
// route pattern (never the raw URL: bounded labels) and status code.
import type { FastifyInstance, FastifyRequest, RouteHandlerMethod } from "fastify";
import { extractTraceContext, runInSpan, SpanKind, SpanStatusCode, startSpan, type Span } from "@grove/common";
import type { ControlPlaneMetrics } from "./metrics";

const spans = new WeakMap<FastifyRequest, Span>();

export function installHttpTelemetry(app: FastifyInstance, metrics: ControlPlaneMetrics | undefined): void {
  app.addHook("onRequest", async (req) => {
    // One info line per request (fastify's own two are off: http/server.ts), at its start: a watch or
    // a log follow is seen while it lasts. The request itself, for fastify's req serializer (method,
    // url, host, remoteAddress, remotePort): a plain object lost its remoteAddress there.
    req.log.info({ req }, "incoming request");
    // Read at every level: node then keeps the peer's address (net.Socket caches it on first read),
    // so an exec's audit record, written once its socket has closed, still names its source
    // (tenancy.test.ts "audit").
    const client = req.ip;
    const route = req.routeOptions.url ?? "unmatched";
    const span = startSpan(
      `${req.method} ${route}`,
      extractTraceContext(req.headers),
      { "http.request.method": req.method, "http.route": route, "client.address": client },
      SpanKind.SERVER,
    );
    if (span) spans.set(req, span);
  });
  app.addHook("onRoute", (r) => {
    // WebSocket routes (exec) run their own handler: the upgrade is the request.
    if ((r as { websocket?: boolean }).websocket) return;
    const handler = r.handler as RouteHandlerMethod;
    r.handler = function (this: FastifyInstance, req, reply) {
      return runInSpan(spans.get(req), () => handler.call(this, req, reply));
    } as RouteHandlerMethod;
  });
  app.addHook("onResponse", async (req, reply) => {
    const code = reply.statusCode;
    // Its completion is news when refused or failed; otherwise the histogram above says enough.
    const done = { res: { statusCode: code }, responseTime: reply.elapsedTime };
    if (code >= 400) req.log.info(done, "request completed");
    else req.log.debug(done, "request completed");
    metrics?.httpDuration.observe(
      { route: req.routeOptions.url ?? "unmatched", method: req.method, code: String(code) },
      reply.elapsedTime / 1000,
    );
    const span = spans.get(req);
    if (!span) return;
    span.setAttribute("http.response.status_code", code);
    if (code >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
}
