import * as http from "node:http";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { ClientError, GroveClient } from "./client";
import { GroveError } from "./errors";
import type { App, WatchEvent } from "./schemas";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

const APP: App = {
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name: "hello", namespace: "default" },
  spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 1 },
};

describe("GroveClient", () => {
  let server: http.Server;
  let base: string;
  let handler: Handler;
  const seen: { method?: string; url?: string; auth?: string; body: string }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
        handler(req, res, body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    seen.length = 0;
  });

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const client = () => new GroveClient({ server: base + "/", token: "s3cret" });
  const failure = async (p: Promise<unknown>): Promise<unknown> =>
    p.then(
      () => undefined,
      (e: unknown) => e,
    );

  it("sends the bearer token to the namespaced path and tells created from replaced", async () => {
    handler = (req, res, body) =>
      json(res, req.url?.endsWith("/hello") && seen.length === 1 ? 201 : 200, JSON.parse(body));
    const first = await client().apply(APP);
    const second = await client().apply(APP);
    expect(first).toEqual({ object: APP, created: true });
    expect(second.created).toBe(false);
    expect(seen[0]).toMatchObject({ method: "PUT", url: "/v1/namespaces/default/apps/hello", auth: "Bearer s3cret" });
    expect(JSON.parse(seen[0]?.body ?? "")).toEqual(APP);
  });

  it("uses cluster-scoped and all-namespace paths", async () => {
    handler = (_req, res) =>
      json(res, 200, { apiVersion: "grove/v1", kind: "List", metadata: { resourceVersion: "7" }, items: [] });
    await client().list("Node", { namespace: "ignored" });
    await client().list("App", { allNamespaces: true });
    await client().list("Instance", { namespace: "team-a" });
    await client().get("Node", "n1");
    await client().delete("Instance", "hello-0", "team-a");
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      "GET /v1/nodes?limit=500",
      "GET /v1/apps?limit=500",
      "GET /v1/namespaces/team-a/instances?limit=500",
      "GET /v1/nodes/n1",
      "DELETE /v1/namespaces/team-a/instances/hello-0",
    ]);
  });

  it("sends a label selector on lists and watches", async () => {
    handler = (_req, res) =>
      json(res, 200, { apiVersion: "grove/v1", kind: "List", metadata: { resourceVersion: "7" }, items: [] });
    await client().list("App", { namespace: "team-a", labelSelector: "tier=web,!legacy" });
    expect(seen.map((s) => s.url)).toEqual([
      "/v1/namespaces/team-a/apps?limit=500&labelSelector=tier%3Dweb%2C%21legacy",
    ]);
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.end();
    };
    const w = await client().watch("Instance", { allNamespaces: true, labelSelector: "app=web" });
    w.close();
    expect(seen[1]?.url).toBe("/v1/instances?watch=1&labelSelector=app%3Dweb");
  });

  it("list follows continue tokens page by page and starts over when the snapshot expired (410)", async () => {
    let expiredOnce = false;
    handler = (req, res) => {
      const q = new URL(req.url ?? "", "http://x").searchParams;
      const token = q.get("continue");
      if (token === "p2" && !expiredOnce) {
        expiredOnce = true;
        return json(res, 410, { code: "Gone", message: "the continue token has expired" });
      }
      const page = token === null ? 1 : token === "p2" ? 2 : 3;
      const rv = expiredOnce ? "9" : "7";
      json(res, 200, {
        apiVersion: "grove/v1",
        kind: "NodeList",
        metadata: { resourceVersion: rv, ...(page < 3 ? { continue: `p${page + 1}`, remainingItemCount: 1 } : {}) },
        items: [{ metadata: { name: `n${page}` } }],
      });
    };
    const list = await client().list("Node", { pageSize: 1 });
    expect(list.items.map((n) => n.metadata.name)).toEqual(["n1", "n2", "n3"]);
    expect(list.metadata).toEqual({ resourceVersion: "9" });
    expect(seen.map((s) => s.url)).toEqual([
      "/v1/nodes?limit=1",
      "/v1/nodes?limit=1&continue=p2",
      "/v1/nodes?limit=1",
      "/v1/nodes?limit=1&continue=p2",
      "/v1/nodes?limit=1&continue=p3",
    ]);
  });

  it("maps 401 to Unauthorized with a hint about the token", async () => {
    handler = (_req, res) => json(res, 401, { code: "Unauthorized", message: "missing or invalid bearer token" });
    const err = await failure(client().get("App", "hello"));
    expect(err).toBeInstanceOf(GroveError);
    expect((err as GroveError).code).toBe("Unauthorized");
    expect((err as GroveError).message).toMatch(/rejected the token.*missing or invalid bearer token/);
  });

  it("maps 409 Conflict and keeps the server's message and details", async () => {
    const details = [{ path: "/metadata/resourceVersion", message: "stale" }];
    handler = (_req, res) =>
      json(res, 409, { code: "Conflict", message: "resourceVersion 3 is stale (now 5)", details });
    const err = (await failure(
      client().apply({ ...APP, metadata: { ...APP.metadata, resourceVersion: "3" } }),
    )) as GroveError;
    expect(err).toBeInstanceOf(GroveError);
    expect(err.code).toBe("Conflict");
    expect(err.status).toBe(409);
    expect(err.message).toBe("resourceVersion 3 is stale (now 5)");
    expect(err.details).toEqual(details);
  });

  it("says the store is down on 503 StoreUnavailable", async () => {
    handler = (_req, res) => json(res, 503, { code: "StoreUnavailable", message: "etcd: context deadline exceeded" });
    const err = (await failure(client().list("App"))) as GroveError;
    expect(err.code).toBe("StoreUnavailable");
    expect(err.message).toMatch(/store \(etcd\) is unavailable/);
    expect(err.message).toContain("etcd: context deadline exceeded");
  });

  it("derives a code from the status when the body is not an API error", async () => {
    handler = (_req, res) => {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("no such route");
    };
    const err = (await failure(client().get("App", "x"))) as GroveError;
    expect(err.code).toBe("NotFound");
    expect(err.message).toMatch(/HTTP 404 .*no such route/);
    handler = (_req, res) => json(res, 502, { oops: true });
    expect(((await failure(client().get("App", "x"))) as GroveError).code).toBe("Internal");
  });

  it("reports a 200 with a non-JSON body as BadResponse", async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.end("<html>");
    };
    const err = (await failure(client().get("App", "x"))) as ClientError;
    expect(err).toBeInstanceOf(ClientError);
    expect(err.code).toBe("BadResponse");
  });

  it("reports health without a token", async () => {
    handler = (req, res) => json(res, req.url === "/healthz" ? 200 : 503, {});
    expect(await client().health()).toEqual({ healthy: true, ready: false });
    expect(seen.every((s) => s.auth === undefined)).toBe(true);
  });

  it("times out when the server does not answer", async () => {
    handler = () => undefined; // never answers
    const slow = new GroveClient({ server: base, token: "t", timeoutMs: 100 });
    const err = (await failure(slow.list("App"))) as ClientError;
    expect(err).toBeInstanceOf(ClientError);
    expect(err.code).toBe("Timeout");
    expect(err.message).toMatch(/cannot reach the control plane at http:\/\/127\.0\.0\.1:\d+: no answer within 100 ms/);
  });

  it("streams watch events split across chunks and stops on close()", async () => {
    let streamRes: http.ServerResponse | undefined;
    handler = (_req, res) => {
      streamRes = res;
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      const added = JSON.stringify({ type: "ADDED", object: APP });
      res.write(added.slice(0, 10));
      res.write(added.slice(10) + "\n\n");
      res.write(JSON.stringify({ type: "DELETED", object: APP }) + "\n");
    };
    const watch = await client().watch("App", { namespace: "default", resourceVersion: "12" });
    expect(seen[0]?.url).toBe("/v1/namespaces/default/apps?watch=1&resourceVersion=12");
    const events: WatchEvent<App>[] = [];
    for await (const event of watch) {
      events.push(event);
      if (events.length === 2) watch.close();
    }
    expect(events.map((e) => e.type)).toEqual(["ADDED", "DELETED"]);
    expect(events[0]?.object).toEqual(APP);
    streamRes?.end();
  });

  it("keeps a watch open longer than the request timeout", async () => {
    let streamRes: http.ServerResponse | undefined;
    handler = (_req, res) => {
      streamRes = res;
      res.writeHead(200);
      res.write("\n");
      setTimeout(() => res.end(JSON.stringify({ type: "MODIFIED", object: APP }) + "\n"), 250);
    };
    const quick = new GroveClient({ server: base, token: "t", timeoutMs: 100 });
    const events: string[] = [];
    for await (const e of await quick.watch("App")) events.push(e.type);
    expect(events).toEqual(["MODIFIED"]);
    streamRes?.end();
  });

  it("maps an error answer to a watch request", async () => {
    handler = (_req, res) => json(res, 401, { code: "Unauthorized", message: "bad token" });
    expect(((await failure(client().watch("Node"))) as GroveError).code).toBe("Unauthorized");
  });
});

describe("GroveClient against nothing", () => {
  it("reports connection refused as Unreachable with the URL", async () => {
    // A port nothing listens on and nothing can take meanwhile: the local end
    // of a connection to a throw-away server (a port probed and closed could
    // be bound by another process before the client connects).
    const accepted: net.Socket[] = [];
    const holder = net.createServer((s) => accepted.push(s));
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const held = net.connect((holder.address() as AddressInfo).port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => held.once("connect", resolve).once("error", reject));
    const port = held.localPort!;
    try {
      const c = new GroveClient({ server: `http://127.0.0.1:${port}`, token: "t" });
      const err = (await c.list("App").then(
        () => undefined,
        (e: unknown) => e,
      )) as ClientError;
      expect(err).toBeInstanceOf(ClientError);
      expect(err.code).toBe("Unreachable");
      expect(err.message).toBe(`cannot reach the control plane at http://127.0.0.1:${port}: ECONNREFUSED`);
      await expect(c.health()).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      held.destroy();
      for (const s of accepted) s.destroy();
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
