// Every route the server registers has an entry in the authorization table,
// and a route without one cannot be registered at all.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Fastify from "fastify";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { buildHttpServer } from "../http/server";
import type { AgentStreams } from "../http/logs-exec-stats-routes";
import { KeyRing } from "../secrets/key-ring";
import { SecretService } from "../secrets/secret-store";
import { installAuthorization, registeredRoutes } from "./authorize";
import { denial, ruleFor } from "./policy";
import { TokenService } from "./tokens";

jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

test("every registered route of the server has an entry in the authorization table", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-policy-"));
  const store = new MemoryStore();
  const app = await buildHttpServer({
    repo: new Repository(store),
    store,
    adminToken: "t",
    // Only registration is exercised: no call reaches the agents.
    agents: {} as AgentStreams,
    secrets: new SecretService(store, KeyRing.openOrCreate(path.join(dir, "keys.json"))),
  });
  try {
    await app.ready();
    const routes = registeredRoutes(app);
    // The routes that matter most are among those enumerated.
    for (const r of [
      "GET /v1/namespaces/:namespace/instances/:name/exec",
      "GET /v1/namespaces/:namespace/instances/:name/logs",
      "GET /v1/stats",
      "POST /v1/plan",
      "PUT /v1/nodes/:name",
      "GET /v1/namespaces/:namespace/secrets/:name",
      "POST /v1/namespaces/:namespace/tokens",
    ]) {
      expect(routes).toContain(r);
    }
    const missing = routes.filter((r) => {
      const [method, url] = r.split(" ");
      return ruleFor(method!, url!) === undefined;
    });
    expect(missing).toEqual([]);
    expect(routes.length).toBeGreaterThan(30);
  } finally {
    await app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a route without an entry cannot be registered", async () => {
  const app = Fastify();
  installAuthorization(app, new TokenService(new MemoryStore(), "t"));
  expect(() => app.get("/v1/unlisted", async () => "x")).toThrow(/no entry in the authorization table/);
  await app.close();
});

test("namespaced roles stay in their namespace and within their verbs", () => {
  const edit = { name: "a", role: "edit" as const, namespace: "team-a" };
  const view = { name: "v", role: "view" as const, namespace: "team-a" };
  expect(denial(edit, "create", "apps", "team-a")).toBeUndefined();
  expect(denial(edit, "exec", "instances", "team-a")).toBeUndefined();
  expect(denial(edit, "get", "apps", "team-b")).toMatch(/may not get apps in namespace team-b/);
  expect(denial(edit, "list", "apps", undefined)).toMatch(/whole cluster/);
  expect(denial(edit, "create", "tokens", "team-a")).toBeDefined();
  expect(denial(view, "logs", "instances", "team-a")).toBeDefined();
  expect(denial(view, "get", "apps", "team-a")).toBeUndefined();
  expect(denial({ name: "admin", role: "cluster-admin" }, "update", "nodes", undefined)).toBeUndefined();
});

test("a token bound to several namespaces holds its role in each of them and nowhere else", () => {
  const edit = { name: "ab", role: "edit" as const, namespace: "team-a", namespaces: ["team-b"] };
  expect(denial(edit, "create", "apps", "team-a")).toBeUndefined();
  expect(denial(edit, "delete", "secrets", "team-b")).toBeUndefined();
  expect(denial(edit, "get", "apps", "team-c")).toMatch(
    /\(role edit in namespaces team-a, team-b\) may not get apps in namespace team-c/,
  );
  expect(denial(edit, "list", "apps", undefined)).toMatch(/whole cluster/);
  expect(denial(edit, "create", "tokens", "team-b")).toBeDefined();
});

test("TokenService: further namespaces are stored, shown and part of the identity; none for a cluster-admin token", async () => {
  const tokens = new TokenService(new MemoryStore(), "t");
  const t = await tokens.create("ab", "view", "team-a", ["team-b", "team-a"]);
  expect(t).toMatchObject({ name: "ab", namespace: "team-a", namespaces: ["team-b"], role: "view" });
  expect(await tokens.identify(t.token!)).toEqual({
    name: "ab",
    role: "view",
    namespace: "team-a",
    namespaces: ["team-b"],
  });
  expect((await tokens.list("team-a"))[0]).toEqual({ ...t, token: undefined, createdAt: t.createdAt });
  await expect(tokens.create("c", "cluster-admin", undefined, ["team-b"])).rejects.toThrow(/give no namespaces/);
});
