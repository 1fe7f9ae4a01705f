import type { FastifyInstance } from "fastify";
import {
  API_VERSION,
  GroveError,
  WELL_KNOWN_RESERVED_PORTS,
  parseHostPortRanges,
  type App,
  type ErrorBody,
} from "@grove/api";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { buildHttpServer } from "./server";

// @fastify/swagger-ui serves files through @fastify/static, which requires
// content-disposition 3, an ES module. Node loads it with require(esm); Jest's
// CommonJS runtime cannot, so the tests stand in for its one function (used only
// for file downloads, which the docs page does not do).
jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "s3cret-token";
const auth = { authorization: `Bearer ${TOKEN}` };

function app(name: string, instances = 1, extra: Record<string, unknown> = {}): App {
  return {
    apiVersion: API_VERSION,
    kind: "App",
    metadata: { name },
    spec: { rootfs: "busybox", command: ["sleep", "1000"], instances, ...extra },
  };
}

interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json<T = any>(): T; // eslint-disable-line @typescript-eslint/no-explicit-any
}

// Requests go over a real socket on 127.0.0.1: fastify.inject needs
// light-my-request, whose `cookie` dependency is an ES module that Jest's
// CommonJS runtime cannot load.
async function call(
  base: string,
  opts: { method: string; url: string; headers?: Record<string, string>; payload?: unknown },
): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined;
  if (opts.payload !== undefined) {
    body = typeof opts.payload === "string" ? opts.payload : JSON.stringify(opts.payload);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(base + opts.url, { method: opts.method, headers, body });
  const text = await res.text();
  return {
    statusCode: res.status,
    headers: Object.fromEntries(res.headers.entries()),
    body: text,
    json: () => JSON.parse(text),
  };
}

describe("HTTP API", () => {
  let store: MemoryStore;
  let repo: Repository;
  let server: FastifyInstance;
  let base: string;

  beforeEach(async () => {
    store = new MemoryStore();
    repo = new Repository(store);
    server = await buildHttpServer({
      repo,
      store,
      adminToken: TOKEN,
      hostPorts: {
        allowed: parseHostPortRanges("10000-32767"),
        reserved: new Map([...WELL_KNOWN_RESERVED_PORTS, [17480, "grove-server's HTTP API"]]),
        allowPrivileged: false,
        source: "grove-server",
      },
    });
    base = await server.listen({ host: "127.0.0.1", port: 0 });
  });
  afterEach(async () => {
    await server.close();
  });
  const inject = (opts: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }) =>
    call(base, opts);

  const put = (url: string, payload: unknown) => inject({ method: "PUT", url, headers: auth, payload });
  const post = (url: string, payload: unknown) => inject({ method: "POST", url, headers: auth, payload });
  const get = (url: string) => inject({ method: "GET", url, headers: auth });

  describe("authentication", () => {
    it("answers 401 Unauthorized without a token or with a wrong one", async () => {
      const none = await inject({ method: "GET", url: "/v1/apps" });
      expect(none.statusCode).toBe(401);
      expect(none.json<ErrorBody>().code).toBe("Unauthorized");
      const wrong = await inject({ method: "GET", url: "/v1/apps", headers: { authorization: "Bearer nope" } });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json<ErrorBody>().code).toBe("Unauthorized");
      const basic = await inject({ method: "GET", url: "/v1/apps", headers: { authorization: `Basic ${TOKEN}` } });
      expect(basic.statusCode).toBe(401);
      expect((await get("/v1/apps")).statusCode).toBe(200);
    });

    it("serves health, readiness and the OpenAPI document without a token", async () => {
      const h = await inject({ method: "GET", url: "/healthz" });
      expect([h.statusCode, h.json()]).toEqual([200, { status: "ok" }]);
      const r = await inject({ method: "GET", url: "/readyz" });
      expect([r.statusCode, r.json()]).toEqual([200, { status: "ok" }]);
      const o = await inject({ method: "GET", url: "/openapi.json" });
      expect(o.statusCode).toBe(200);
      const docs = await inject({ method: "GET", url: "/docs" });
      expect(docs.statusCode).toBeLessThan(400);
    });

    it("refuses to start without an admin token", async () => {
      await expect(buildHttpServer({ repo, store, adminToken: "" })).rejects.toThrow(/token/);
    });
  });

  it("publishes the resource schemas in /openapi.json", async () => {
    const doc = (await inject({ method: "GET", url: "/openapi.json" })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components.schemas.App.properties.spec.properties.instances.type).toBe("integer");
    expect(doc.components.schemas.AppList).toBeDefined();
    expect(doc.components.schemas.ErrorBody).toBeDefined();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/v1/namespaces/{namespace}/apps",
        "/v1/namespaces/{namespace}/apps/{name}",
        "/v1/nodes/{name}",
      ]),
    );
    expect(doc.paths["/openapi.json"]).toBeUndefined();
  });

  it("creates, gets and lists apps", async () => {
    const created = await post("/v1/namespaces/team-a/apps", {
      ...app("web", 2),
      metadata: { name: "web", uid: "forged", generation: 7 },
      status: { running: 99 },
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers["x-grove-apply-result"]).toBe("created");
    const body = created.json<App>();
    expect(body.metadata).toMatchObject({ name: "web", namespace: "team-a", generation: 1, resourceVersion: "2" });
    expect(body.metadata.uid).not.toBe("forged");
    expect(body.status).toBeUndefined();

    const again = await post("/v1/namespaces/team-a/apps", app("web"));
    expect(again.statusCode).toBe(409);
    expect(again.json<ErrorBody>().code).toBe("AlreadyExists");

    const got = await get("/v1/namespaces/team-a/apps/web");
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(body);

    await post("/v1/namespaces/team-b/apps", app("api"));
    const list = await get("/v1/namespaces/team-a/apps");
    expect(list.json()).toEqual({
      apiVersion: API_VERSION,
      kind: "AppList",
      metadata: { resourceVersion: "3" },
      items: [body],
    });
    const all = await get("/v1/apps");
    expect(all.json<{ items: App[] }>().items.map((a) => `${a.metadata.namespace}/${a.metadata.name}`)).toEqual([
      "team-a/web",
      "team-b/api",
    ]);
  });

  it("applies: 201 created, 200 unchanged, 200 configured, 409 on a stale resourceVersion", async () => {
    const url = "/v1/namespaces/default/apps/web";
    const first = await put(url, app("web", 1));
    expect([first.statusCode, first.headers["x-grove-apply-result"]]).toEqual([201, "created"]);
    const rv = first.json<App>().metadata.resourceVersion;

    const same = await put(url, app("web", 1));
    expect([same.statusCode, same.headers["x-grove-apply-result"]]).toEqual([200, "unchanged"]);
    expect(same.json<App>().metadata.resourceVersion).toBe(rv);

    const scaled = await put(url, { ...app("web", 3), metadata: { name: "web", resourceVersion: rv } });
    expect([scaled.statusCode, scaled.headers["x-grove-apply-result"]]).toEqual([200, "configured"]);
    expect(scaled.json<App>().metadata.generation).toBe(2);
    expect(scaled.json<App>().spec.instances).toBe(3);

    const stale = await put(url, { ...app("web", 5), metadata: { name: "web", resourceVersion: rv } });
    expect(stale.statusCode).toBe(409);
    expect(stale.json<ErrorBody>().code).toBe("Conflict");
    expect((await get(url)).json<App>().spec.instances).toBe(3);
  });

  it("answers ValidationFailed with the field's path for a bad spec", async () => {
    const res = await put("/v1/namespaces/default/apps/web", app("web", -1));
    expect(res.statusCode).toBe(400);
    const body = res.json<ErrorBody>();
    expect(body.code).toBe("ValidationFailed");
    expect(body.details).toEqual([{ path: "/spec/instances", message: expect.stringMatching(/>= 0/) }]);

    const many = await put("/v1/namespaces/default/apps/web", {
      apiVersion: API_VERSION,
      kind: "App",
      metadata: { name: "web" },
      spec: { rootfs: "busybox", instances: "2", replicas: 3 },
    });
    expect(many.statusCode).toBe(400);
    expect(
      many
        .json<ErrorBody>()
        .details!.map((d) => d.path)
        .sort(),
    ).toEqual(["/spec/command", "/spec/instances", "/spec/replicas"]);
  });

  it("answers ValidationFailed for a bad quantity, naming the field", async () => {
    const zero = await put("/v1/namespaces/default/apps/web", app("web", 1, { resources: { memory: "0Mi" } }));
    expect(zero.statusCode).toBe(400);
    expect(zero.json<ErrorBody>()).toMatchObject({
      code: "ValidationFailed",
      details: [{ path: "/spec/resources/memory" }],
    });
    const malformed = await put(
      "/v1/namespaces/default/apps/web",
      app("web", 1, { resources: { memory: "64MB", cpu: "1.5m" } }),
    );
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json<ErrorBody>().details!.map((d) => d.path)).toEqual([
      "/spec/resources/cpu",
      "/spec/resources/memory",
    ]);
    const ok = await put(
      "/v1/namespaces/default/apps/web",
      app("web", 1, { resources: { memory: "64Mi", cpu: "250m" } }),
    );
    expect(ok.statusCode).toBe(201);
  });

  it("refuses reserved, privileged and disallowed fixed host ports at create, apply and plan, writing nothing", async () => {
    const before = store.revision;
    for (const [hostPort, why] of [
      [7480, /reserved: it is grove-server's HTTP API/],
      [17480, /reserved: it is grove-server's HTTP API/],
      [2479, /reserved: it is the embedded etcd's client port/],
      [22, /reserved: it is sshd/],
      [443, /privileged port/],
      [40000, /outside the allowed host ports 10000-32767/],
    ] as const) {
      const spec = { ports: [{ name: "http", containerPort: 8080, hostPort }] };
      for (const res of [
        await put("/v1/namespaces/default/apps/web", app("web", 1, spec)),
        await post("/v1/namespaces/default/apps", app("web", 1, spec)),
      ]) {
        expect(res.statusCode).toBe(400);
        const body = res.json<ErrorBody>();
        expect(body.code).toBe("ValidationFailed");
        expect(body.details).toEqual([{ path: "/spec/ports/0/hostPort", message: expect.stringMatching(why) }]);
        expect(body.message).toContain("/spec/ports/0/hostPort");
      }
      const plan = await post("/v1/plan", { items: [app("ok", 1), app("web", 1, spec)] });
      expect(plan.statusCode).toBe(400);
      expect(plan.json<ErrorBody>().details).toEqual([
        { path: "/items/1/spec/ports/0/hostPort", message: expect.stringMatching(why) },
      ]);
    }
    expect(store.revision).toBe(before); // nothing was written
    const ok = await put(
      "/v1/namespaces/default/apps/web",
      app("web", 1, { ports: [{ name: "http", containerPort: 8080, hostPort: 18080 }] }),
    );
    expect(ok.statusCode).toBe(201);
  });

  it("refuses health checks naming a port the App lacks, zero thresholds and negative times, writing nothing", async () => {
    const before = store.revision;
    const spec = {
      ports: [{ name: "http", containerPort: 8080 }],
      checks: {
        readiness: { http: { port: "admin" } },
        liveness: { tcp: { port: 8080 }, failureThreshold: 0, initialDelaySeconds: -1 },
      },
    };
    const res = await put("/v1/namespaces/default/apps/web", app("web", 1, spec));
    expect(res.statusCode).toBe(400);
    const body = res.json<ErrorBody>();
    expect(body.code).toBe("ValidationFailed");
    expect(body.details?.map((d) => d.path).sort()).toEqual([
      "/spec/checks/liveness/failureThreshold",
      "/spec/checks/liveness/initialDelaySeconds",
      "/spec/checks/readiness/http/port",
    ]);
    expect(store.revision).toBe(before); // nothing was written
  });

  it("answers UnknownKind, and BadRequest when kind, apiVersion, name or namespace disagree with the URL", async () => {
    const unknown = await put("/v1/namespaces/default/apps/web", { ...app("web"), kind: "Pod" });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json<ErrorBody>().code).toBe("UnknownKind");
    expect(unknown.json<ErrorBody>().message).toMatch(/App, Instance, Node/);

    const cases: unknown[] = [
      { ...app("web"), kind: "Node" },
      { ...app("web"), apiVersion: "grove/v2" },
      app("other"),
      { ...app("web"), metadata: { name: "web", namespace: "elsewhere" } },
      [1, 2],
    ];
    for (const body of cases) {
      const res = await put("/v1/namespaces/default/apps/web", body);
      expect([res.statusCode, res.json<ErrorBody>().code]).toEqual([400, "BadRequest"]);
    }
    const nodeNs = await put("/v1/nodes/n1", {
      apiVersion: API_VERSION,
      kind: "Node",
      metadata: { name: "n1", namespace: "default" },
      spec: {},
    });
    expect([nodeNs.statusCode, nodeNs.json<ErrorBody>().code]).toEqual([400, "BadRequest"]);
    const notJson = await inject({
      method: "PUT",
      url: "/v1/namespaces/default/apps/web",
      headers: { ...auth, "content-type": "application/json" },
      payload: "{not json",
    });
    expect([notJson.statusCode, notJson.json<ErrorBody>().code]).toEqual([400, "BadRequest"]);
  });

  it("answers 404 NotFound for a missing object and an unknown route", async () => {
    const res = await get("/v1/namespaces/default/apps/missing");
    expect([res.statusCode, res.json<ErrorBody>().code]).toEqual([404, "NotFound"]);
    const route = await get("/v1/widgets");
    expect([route.statusCode, route.json<ErrorBody>().code]).toEqual([404, "NotFound"]);
  });

  it("deletes, answering the deleted object, with an optional resourceVersion precondition", async () => {
    const created = (await post("/v1/namespaces/default/apps", app("web"))).json<App>();
    const url = "/v1/namespaces/default/apps/web";
    const stale = await inject({ method: "DELETE", url: `${url}?resourceVersion=1`, headers: auth });
    expect([stale.statusCode, stale.json<ErrorBody>().code]).toEqual([409, "Conflict"]);
    const del = await inject({
      method: "DELETE",
      url: `${url}?resourceVersion=${created.metadata.resourceVersion}`,
      headers: auth,
    });
    expect(del.statusCode).toBe(200);
    expect(del.json()).toEqual(created);
    expect((await get(url)).statusCode).toBe(404);
    const again = await inject({ method: "DELETE", url, headers: auth });
    expect([again.statusCode, again.json<ErrorBody>().code]).toEqual([404, "NotFound"]);
  });

  it("lets users read and delete instances but not create or replace them", async () => {
    await repo.create({
      apiVersion: API_VERSION,
      kind: "Instance",
      metadata: { name: "web-0", namespace: "default" },
      spec: {
        app: "web",
        appUid: "u",
        index: 0,
        rootfs: "busybox",
        command: ["true"],
        resources: { cpuMillis: 100, memoryBytes: 1024, pids: 10 },
        restartPolicy: "Always",
        stopGracePeriodSeconds: 10,
        restarts: 0,
      },
      status: { state: "Pending", explain: { nodesConsidered: 3, rejected: { memory: 3 } } },
    });
    const list = await get("/v1/instances");
    expect(list.json<{ kind: string; items: unknown[] }>()).toMatchObject({ kind: "InstanceList" });
    const one = await get("/v1/namespaces/default/instances/web-0");
    expect(one.json()).toMatchObject({ status: { state: "Pending", explain: { rejected: { memory: 3 } } } });
    const create = await post("/v1/namespaces/default/instances", { kind: "Instance" });
    expect(create.statusCode).toBe(405);
    expect(create.json<ErrorBody>()).toMatchObject({
      code: "BadRequest",
      message: expect.stringMatching(/control plane/),
    });
    const replace = await put("/v1/namespaces/default/instances/web-0", { kind: "Instance" });
    expect(replace.statusCode).toBe(405);
    const del = await inject({ method: "DELETE", url: "/v1/namespaces/default/instances/web-0", headers: auth });
    expect(del.statusCode).toBe(200);
  });

  it("applies and lists cluster-scoped nodes", async () => {
    const node = { apiVersion: API_VERSION, kind: "Node", metadata: { name: "n1" }, spec: { unschedulable: true } };
    const res = await put("/v1/nodes/n1", node);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ metadata: { name: "n1" }, spec: { unschedulable: true } });
    expect(res.json().metadata.namespace).toBeUndefined();
    const list = await get("/v1/nodes");
    expect(list.json()).toMatchObject({ kind: "NodeList", items: [{ metadata: { name: "n1" } }] });
  });

  it("answers 503 StoreUnavailable when the store is down, and 500 Internal for anything unexpected", async () => {
    store.setAvailable(false);
    const ready = await inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(503);
    expect(ready.json<ErrorBody>().code).toBe("StoreUnavailable");
    const list = await get("/v1/apps");
    expect(list.statusCode).toBe(503);
    expect(list.json<ErrorBody>()).toMatchObject({
      code: "StoreUnavailable",
      message: expect.stringMatching(/store is unreachable/),
    });
    const watch = await get("/v1/apps?watch=1");
    expect(watch.statusCode).toBe(503);
    expect((await inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    store.setAvailable(true);

    jest.spyOn(repo, "get").mockRejectedValueOnce(new TypeError("boom"));
    const internal = await get("/v1/namespaces/default/apps/web");
    expect(internal.statusCode).toBe(500);
    expect(internal.json<ErrorBody>().code).toBe("Internal");
    expect(internal.body).not.toMatch(/boom/);

    jest.spyOn(repo, "get").mockRejectedValueOnce(new GroveError("Gone", "gone"));
    expect((await get("/v1/namespaces/default/apps/web")).statusCode).toBe(410);
  });

  it("ends a watch from a compacted resourceVersion with an ERROR Gone event", async () => {
    await repo.create(app("a"));
    await repo.create(app("b"));
    store.compact(store.revision);
    const res = await get("/v1/namespaces/default/apps?watch=1&resourceVersion=1");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/application\/x-ndjson/);
    const lines = res.body
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([{ type: "ERROR", object: { code: "Gone", message: expect.stringMatching(/list again/) } }]);
  });

  it("rejects a malformed watch resourceVersion", async () => {
    const res = await get("/v1/apps?watch=1&resourceVersion=abc");
    expect(res.statusCode).toBe(400);
    expect(res.json<ErrorBody>()).toMatchObject({ code: "ValidationFailed" });
  });
});
