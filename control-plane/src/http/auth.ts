// Bearer-token authentication for every route but health, readiness and docs.
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { GroveError } from "@grove/api";

// /v1/join: a joining agent has no bearer token; the join token in the body is its credential.
const PUBLIC_PATHS = new Set(["/healthz", "/readyz", "/openapi.json", "/v1/join"]);

export function isPublicPath(url: string): boolean {
  const path = url.split("?")[0] ?? "";
  return PUBLIC_PATHS.has(path) || path === "/docs" || path.startsWith("/docs/");
}

/** Compares digests so neither the content nor the length of the token leaks through timing. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

export function installBearerAuth(app: FastifyInstance, adminToken: string): void {
  if (!adminToken) throw new Error("the HTTP API needs a non-empty admin token");
  app.addHook("onRequest", async (req) => {
    if (isPublicPath(req.url)) return;
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) throw new GroveError("Unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'");
    if (!tokenMatches(match[1]!, adminToken)) throw new GroveError("Unauthorized", "invalid bearer token");
  });
}
