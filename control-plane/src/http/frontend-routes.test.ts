// The API's front-end features on a real socket: /version, CORS (off by
// default, then for listed origins only, watch streams included), label
// selectors on lists and watches, bookmarks on idle watches, the exec
// WebSocket's token as a subprotocol, and the dashboard's files under a strict CSP.
import * as fs from "node:fs";
import * as path from "node:path";
import type { FastifyInstance } from "fastify";
import WebSocket from "ws";
import { API_VERSION, EXEC_SUBPROTOCOL, EXEC_TOKEN_PROTOCOL_PREFIX, type App } from "@grove/api";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import type { AgentStreams } from "./logs-exec-stats-routes";
import { parseCorsOrigins, UI_CONTENT_SECURITY_POLICY } from "./frontend-routes";
import { buildHttpServer } from "./server";

jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "ui-test-token";
const auth = { authorization: `Bearer ${TOKEN}` };
const ORIGIN = "https://paas.example.com";

function app(name: string, labels: Record<string, string>): App {
  return {
    apiVersion: API_VERSION,
    kind: "App",
    metadata: { name, namespace: "default", labels },
    spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 1 },
  };
}

async function start(extra: { corsOrigins?: string[]; watchBookmarkMs?: number } = {}) {
  const store = new MemoryStore();
  const repo = new Repository(store);
  const server = await buildHttpServer({ repo, store, adminToken: TOKEN, agents: {} as AgentStreams, ...extra });
  const base = await server.listen({ host: "127.0.0.1", port: 0 });
  return { server, base, repo };
}

interface Line {
  type: string;
  object: { metadata: { name?: string; resourceVersion?: string } };
}

/** Reads NDJSON lines of a watch until `until` says enough (or the time runs out). */
async function readWatch(res: Response, until: (lines: Line[]) => boolean, ms = 10_000) {
  const lines: Line[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const deadline = setTimeout(() => void reader.cancel(), ms);
  try {
    while (!until(lines)) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Line);
        buf = buf.slice(nl + 1);
      }
    }
  } finally {
    clearTimeout(deadline);
    await reader.cancel().catch(() => undefined);
  }
  return lines;
}

describe("front-end features of the API", () => {
  let s: { server: FastifyInstance; base: string; repo: Repository };
  beforeAll(async () => {
    s = await start({ corsOrigins: [ORIGIN], watchBookmarkMs: 200 });
  });
  afterAll(async () => s.server.close());

  it("answers GET /version without a token", async () => {
    const res = await fetch(`${s.base}/version`);
    expect(res.status).toBe(200);
    const v = (await res.json()) as { version: string; apiVersion: string; node: string };
    expect(v).toEqual({
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      apiVersion: API_VERSION,
      node: process.version,
    });
  });

  it("sends CORS headers to listed origins only, on preflights, refusals and watch streams", async () => {
    const pre = await fetch(`${s.base}/v1/apps`, {
      method: "OPTIONS",
      headers: {
        origin: ORIGIN,
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(pre.headers.get("access-control-allow-headers")).toMatch(/authorization/);
    const refused = await fetch(`${s.base}/v1/apps`, { headers: { origin: ORIGIN } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const other = await fetch(`${s.base}/v1/apps`, { headers: { ...auth, origin: "https://evil.example" } });
    expect(other.status).toBe(200);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const watch = await fetch(`${s.base}/v1/apps?watch=1`, { headers: { ...auth, origin: ORIGIN } });
    expect(watch.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    await watch.body?.cancel();
  });

  it("sends no CORS headers when no origins are configured", async () => {
    const plain = await start();
    try {
      const res = await fetch(`${plain.base}/v1/apps`, { headers: { ...auth, origin: ORIGIN } });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await plain.server.close();
    }
  }, 60_000);

  it("refuses a malformed --cors-origins value naming it", () => {
    expect(parseCorsOrigins("https://a.example, http://localhost:3000")).toEqual([
      "https://a.example",
      "http://localhost:3000",
    ]);
    expect(() => parseCorsOrigins("*", "--cors-origins")).toThrow(/--cors-origins: "\*" is not an origin/);
    expect(() => parseCorsOrigins("https://a.example/path", "--cors-origins")).toThrow(/not an origin/);
  });

  it("filters lists and watches by ?labelSelector=; an object that leaves the selection is DELETED", async () => {
    await s.repo.apply(app("web-a", { tier: "web" }));
    await s.repo.apply(app("db-a", { tier: "db" }));
    const list = (await (await fetch(`${s.base}/v1/apps?labelSelector=tier%3Dweb`, { headers: auth })).json()) as {
      items: App[];
    };
    expect(list.items.map((a) => a.metadata.name)).toEqual(["web-a"]);
    const notDb = (await (
      await fetch(`${s.base}/v1/namespaces/default/apps?labelSelector=tier!%3Ddb`, { headers: auth })
    ).json()) as {
      items: App[];
    };
    expect(notDb.items.map((a) => a.metadata.name)).toEqual(["web-a"]);
    const bad = await fetch(`${s.base}/v1/apps?labelSelector=tier%3D%3Db%20c`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/^labelSelector: /);

    const watch = await fetch(`${s.base}/v1/apps?watch=1&labelSelector=tier%3Dweb`, { headers: auth });
    const done = readWatch(watch, (l) => l.length >= 3);
    await new Promise((r) => setTimeout(r, 100));
    await s.repo.apply(app("db-a", { tier: "db", x: "1" })); // not selected: nothing
    await s.repo.apply(app("db-a", { tier: "web" })); // enters: ADDED
    await s.repo.apply(app("web-a", { tier: "gone" })); // leaves: DELETED
    const lines = await done;
    expect(lines.map((l) => `${l.type} ${l.object.metadata.name}`)).toEqual([
      "ADDED web-a",
      "ADDED db-a",
      "DELETED web-a",
    ]);
  });

  it("sends BOOKMARK lines on an idle watch that asked for them, and none otherwise", async () => {
    const rv = (await s.repo.list("App")).resourceVersion;
    const t0 = performance.now();
    const res = await fetch(`${s.base}/v1/apps?watch=1&allowWatchBookmarks=1&resourceVersion=${rv}`, { headers: auth });
    const lines = await readWatch(res, (l) => l.length >= 2);
    expect(lines.map((l) => l.type)).toEqual(["BOOKMARK", "BOOKMARK"]);
    expect(lines[0]!.object).toEqual({ metadata: { resourceVersion: rv } });
    // Two bookmarks at a 200 ms period take at least 400 ms.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(350);
    const events = await fetch(`${s.base}/v1/events?watch=1&allowWatchBookmarks=1`, { headers: auth });
    expect((await readWatch(events, (l) => l.length >= 1)).map((l) => l.type)).toEqual(["BOOKMARK"]);
    const quiet = await fetch(`${s.base}/v1/apps?watch=1&resourceVersion=${rv}`, { headers: auth });
    expect(await readWatch(quiet, (l) => l.length >= 1, 800)).toEqual([]);
  });

  it("takes the exec WebSocket's token from its subprotocol, and refuses a wrong one", async () => {
    const url = `${s.base.replace("http", "ws")}/v1/namespaces/default/instances/nope-0/exec?command=true`;
    const status = (protocols: string[]) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url, protocols);
        ws.on("unexpected-response", (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on("open", () => reject(new Error("opened")));
        ws.on("error", () => undefined);
      });
    const enc = (t: string) => EXEC_TOKEN_PROTOCOL_PREFIX + Buffer.from(t).toString("base64url");
    // Authenticated: the instance does not exist (404), rather than 401.
    expect(await status([EXEC_SUBPROTOCOL, enc(TOKEN)])).toBe(404);
    expect(await status([EXEC_SUBPROTOCOL, enc("wrong")])).toBe(401);
    expect(await status([EXEC_SUBPROTOCOL])).toBe(401);
  });

  it("serves the dashboard under a strict Content-Security-Policy with no inline script", async () => {
    const res = await fetch(`${s.base}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(UI_CONTENT_SECURITY_POLICY);
    expect(UI_CONTENT_SECURITY_POLICY).toMatch(/script-src 'self'(;|$)/);
    expect(UI_CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-inline|unsafe-eval/);
    const html = await res.text();
    expect(html).toMatch(/<script type="module" src="main.js"><\/script>/);
    // Every script element loads a file; no inline code, no inline style.
    expect(html.match(/<script[^>]*>[^<]+<\/script>/g)).toBeNull();
    expect(html).not.toMatch(/ style=| on[a-z]+=/);
    const redirect = await fetch(`${s.base}/ui`, { redirect: "manual" });
    expect([301, 302]).toContain(redirect.status);
    const built = path.join(__dirname, "..", "..", "ui", "dist", "main.js");
    if (fs.existsSync(built)) expect((await fetch(`${s.base}/ui/main.js`)).status).toBe(200);
  });
});
