// What browsers and generated clients need beyond the resources: GET /version,
// CORS for front ends on other origins (off unless origins are listed), and the
// operator dashboard's static files at /ui (control-plane/ui) under a strict
// Content-Security-Policy: scripts and styles from this origin only, no inline code.
import * as fs from "node:fs";
import * as path from "node:path";
import type { FastifyInstance } from "fastify";
import cors from "@fastify/cors";
import type { FastifyStaticOptions } from "@fastify/static";
import { Type } from "@sinclair/typebox";
import { API_VERSION } from "@grove/api";

/** control-plane/ (from src/http in tests, dist/http when built). */
const PACKAGE_DIR = path.resolve(__dirname, "..", "..");

export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const VersionInfo = Type.Object(
  {
    version: Type.String({ description: "grove-server's version" }),
    apiVersion: Type.Literal(API_VERSION),
    node: Type.String({ description: "the Node.js version the server runs on" }),
  },
  { $id: "VersionInfo" },
);

function serverVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** "https://a.example,http://localhost:3000" -> the origins; each must be scheme://host[:port] and nothing more. */
export function parseCorsOrigins(text: string, what = "cors origins"): string[] {
  const out: string[] = [];
  for (const raw of text.split(",")) {
    const v = raw.trim();
    if (v === "") continue;
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new Error(`${what}: ${JSON.stringify(v)} is not an origin (scheme://host[:port])`);
    }
    if ((u.protocol !== "https:" && u.protocol !== "http:") || u.origin !== v.replace(/\/$/, "")) {
      throw new Error(`${what}: ${JSON.stringify(v)} is not an origin (scheme://host[:port], no path, query or *)`);
    }
    out.push(u.origin);
  }
  if (out.length === 0) throw new Error(`${what}: no origin given`);
  return out;
}

/**
 * CORS for these origins (exact "https://host:port" strings); nothing when the list is empty.
 * Registered before the authorization hook so that preflights and refusals carry the headers too.
 */
export async function installCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  await app.register(cors, {
    origin: [...origins],
    methods: ["GET", "HEAD", "POST", "PUT", "DELETE"],
    allowedHeaders: ["authorization", "content-type"],
    exposedHeaders: ["x-grove-apply-result"],
    maxAge: 600,
  });
}

export async function registerFrontendRoutes(app: FastifyInstance): Promise<void> {
  const version = { version: serverVersion(), apiVersion: API_VERSION, node: process.version };
  app.addSchema(VersionInfo);
  app.get(
    "/version",
    {
      schema: {
        tags: ["cluster"],
        operationId: "getVersion",
        summary: "grove-server's version and the API version it serves (no token needed)",
        security: [],
        response: { 200: Type.Unsafe({ $ref: "VersionInfo#" }) },
      },
    },
    async () => version,
  );

  app.get("/ui", { schema: { hide: true } }, async (_req, reply) => reply.redirect("/ui/", 301));
  const uiDir = path.join(PACKAGE_DIR, "ui");
  // Loaded when a server is built, as @fastify/swagger-ui loads it: its content-disposition
  // dependency is an ES module that Jest's CommonJS runtime cannot load at import time.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fastifyStatic = (require("@fastify/static") as typeof import("@fastify/static")).default;
  const options: FastifyStaticOptions = {
    // Hand-written files (index.html, style.css) and the compiled scripts (npm run build).
    root: [path.join(uiDir, "public"), path.join(uiDir, "dist")],
    prefix: "/ui/",
    index: "index.html",
    wildcard: true,
    decorateReply: false,
    schemaHide: true,
    setHeaders: (res) => {
      res.header("content-security-policy", UI_CONTENT_SECURITY_POLICY);
      res.header("x-content-type-options", "nosniff");
      res.header("referrer-policy", "no-referrer");
      res.header("cache-control", "no-cache");
    },
  };
  await app.register(fastifyStatic, options);
}
