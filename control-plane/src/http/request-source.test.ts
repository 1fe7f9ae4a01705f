// What the HTTP API says about each request, in its log and its audit trail:
// - one "incoming request" line of its own per request (Fastify's own two are
//   off through its logController, without the deprecated top-level option's
//   warning), and "request completed" at info only when refused or failed;
// - the audit record's source is the peer's address: IPv4 and IPv6 loopback,
//   an IPv4 client of a dual-stack listener without the ::ffff: prefix (the
//   log line keeps the socket's form), and
//   never what an X-Forwarded-For header claims (no proxy is trusted).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { AuditLog, type AuditRecord } from "../auth/audit";
import { buildHttpServer } from "./server";

// As in server.test.ts: @fastify/static's ES-module dependency, which Jest's CommonJS runtime cannot load.
jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "s3cret-token";

// Building the server (swagger and all) takes seconds on a loaded machine; nothing here measures time.
jest.setTimeout(30_000);

let dir: string;
let audit: AuditLog;
let lines: Record<string, unknown>[];
let server: FastifyInstance | undefined;
let warnings: jest.SpyInstance;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-request-source-"));
  audit = new AuditLog({ file: path.join(dir, "audit.log") });
  lines = [];
  // Fastify's deprecations go through process.emitWarning (process-warning).
  warnings = jest.spyOn(process, "emitWarning");
});

afterEach(async () => {
  warnings.mockRestore();
  await server?.close();
  server = undefined;
  audit.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(host: string): Promise<number> {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const store = new MemoryStore();
  server = await buildHttpServer({
    repo: new Repository(store),
    store,
    adminToken: TOKEN,
    audit,
    logger: pino({ level: "info" }, sink),
  });
  await server.listen({ host, port: 0 });
  return (server.server.address() as { port: number }).port;
}

const records = (): AuditRecord[] =>
  fs
    .readFileSync(path.join(dir, "audit.log"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);

/** A refused request (401: audited) from the client's side of `url`, claiming to come from elsewhere. */
async function refused(url: string): Promise<void> {
  const res = await fetch(`${url}/v1/apps`, { headers: { "x-forwarded-for": "203.0.113.9" } });
  expect(res.status).toBe(401);
}

it("logs one line per request, its completion at info only when refused, and no deprecation warning", async () => {
  const port = await start("127.0.0.1");
  expect(warnings.mock.calls).toEqual([]);
  const ok = await fetch(`http://127.0.0.1:${port}/v1/apps`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(ok.status).toBe(200);
  await refused(`http://127.0.0.1:${port}`);
  const msgs = lines.map((l) => l.msg).filter((m) => m === "incoming request" || m === "request completed");
  // Fastify's own lines would add an "incoming request" and a "request completed" to each.
  expect(msgs).toEqual(["incoming request", "incoming request", "request completed"]);
  expect(lines.find((l) => l.msg === "incoming request")).toMatchObject({
    req: { method: "GET", url: "/v1/apps", remoteAddress: "127.0.0.1" },
  });
  expect(lines.find((l) => l.msg === "request completed")).toMatchObject({ res: { statusCode: 401 } });
});

it("records the peer's IPv4 and IPv6 loopback address as the source, not X-Forwarded-For", async () => {
  const port = await start("::");
  await refused(`http://127.0.0.1:${port}`);
  await refused(`http://[::1]:${port}`);
  expect(records().map((r) => [r.code, r.source])).toEqual([
    [401, "127.0.0.1"],
    [401, "::1"],
  ]);
  // The log line keeps the socket's own form (fastify's req serializer).
  expect(
    lines.filter((l) => l.msg === "incoming request").map((l) => (l.req as { remoteAddress: string }).remoteAddress),
  ).toEqual(["::ffff:127.0.0.1", "::1"]);
});

it("records an IPv4-only listener's and an IPv6-only listener's clients alike", async () => {
  let port = await start("127.0.0.1");
  await refused(`http://127.0.0.1:${port}`);
  await server!.close();
  port = await start("::1");
  await refused(`http://[::1]:${port}`);
  expect(records().map((r) => r.source)).toEqual(["127.0.0.1", "::1"]);
});
