// ?limit= and ?continue= on the list routes, and the api client following
// continue tokens, over a MemoryStore (the real-etcd version is
// test/src/large-list.test.ts).
import type { FastifyInstance } from "fastify";
import { API_VERSION, GroveClient, GroveError, type App, type ErrorBody, type List } from "@grove/api";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { buildHttpServer } from "./server";
import { encodeContinue } from "./continue-token";

// See server.test.ts: @fastify/static's content-disposition is an ES module Jest cannot load.
jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "s3cret-token";

function app(name: string): App {
  return {
    apiVersion: API_VERSION,
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 0 },
  };
}
const name = (i: number) => `app-${String(i).padStart(3, "0")}`;

describe("paged lists", () => {
  let store: MemoryStore;
  let repo: Repository;
  let server: FastifyInstance;
  let base: string;
  let client: GroveClient;

  beforeEach(async () => {
    store = new MemoryStore();
    repo = new Repository(store);
    server = await buildHttpServer({ repo, store, adminToken: TOKEN });
    base = await server.listen({ host: "127.0.0.1", port: 0 });
    client = new GroveClient({ server: base, token: TOKEN });
    for (let i = 0; i < 23; i++) await repo.create(app(name(i)));
  });
  afterEach(async () => {
    await server.close();
  });

  async function get(url: string): Promise<{ status: number; body: List<App> & ErrorBody }> {
    const res = await fetch(base + url, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, body: (await res.json()) as List<App> & ErrorBody };
  }

  it("pages with limit and continue at one revision; a write between pages is not in the list", async () => {
    const first = await get("/v1/namespaces/default/apps?limit=10");
    expect(first.status).toBe(200);
    expect(first.body.items.map((a) => a.metadata.name)).toEqual([...Array(10).keys()].map(name));
    expect(first.body.metadata.remainingItemCount).toBe(13);
    expect(first.body.metadata.continue).toMatch(/^[A-Za-z0-9_-]+$/);
    await repo.create(app("app-005a")); // would sort into the second page
    await repo.delete("App", "default", name(15));
    const seen = [...first.body.items];
    let token = first.body.metadata.continue;
    while (token !== undefined) {
      const page = await get(`/v1/namespaces/default/apps?limit=10&continue=${token}`);
      expect(page.status).toBe(200);
      expect(page.body.metadata.resourceVersion).toBe(first.body.metadata.resourceVersion);
      seen.push(...page.body.items);
      token = page.body.metadata.continue;
    }
    expect(seen.map((a) => a.metadata.name)).toEqual([...Array(23).keys()].map(name));
    // Without limit: the whole current list, no continue.
    const all = await get("/v1/namespaces/default/apps");
    expect(all.body.items).toHaveLength(23);
    expect(all.body.metadata.continue).toBeUndefined();
    expect(all.body.items.map((a) => a.metadata.name)).toContain("app-005a");
  });

  it("the last page has no continue, and continue without limit returns the rest", async () => {
    const first = await get("/v1/apps?limit=20");
    const rest = await get(`/v1/apps?continue=${first.body.metadata.continue}`);
    expect(rest.body.items.map((a) => a.metadata.name)).toEqual([name(20), name(21), name(22)]);
    expect(rest.body.metadata.continue).toBeUndefined();
    expect((await get("/v1/apps?limit=23")).body.metadata.continue).toBeUndefined();
  });

  it("a bad token or limit is 400 naming the parameter; an expired token is 410 Gone", async () => {
    const bad = await get("/v1/namespaces/default/apps?limit=5&continue=garbage");
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("BadRequest");
    expect(bad.body.message).toMatch(/continue/);
    const other = await get(
      `/v1/namespaces/default/apps?continue=${encodeContinue("/grove/nodes/", { revision: "3", startKey: "/grove/nodes/a" })}`,
    );
    expect(other.status).toBe(400);
    expect(other.body.message).toMatch(/continue token.*different list/);
    const zero = await get("/v1/apps?limit=0");
    expect(zero.status).toBe(400);
    expect(zero.body.message).toMatch(/limit/);
    const first = await get("/v1/apps?limit=5");
    const both = await get(`/v1/apps?continue=${first.body.metadata.continue}&resourceVersion=3`);
    expect(both.status).toBe(400);
    expect(both.body.message).toMatch(/continue and resourceVersion/);

    await repo.delete("App", "default", name(0));
    store.compact(store.revision);
    const gone = await get(`/v1/apps?limit=5&continue=${first.body.metadata.continue}`);
    expect(gone.status).toBe(410);
    expect(gone.body.code).toBe("Gone");
    expect(gone.body.message).toMatch(/continue token has expired.*List again without continue/);
  });

  it("the api client follows continue tokens transparently, and pages on request", async () => {
    const all = await client.list("App", { pageSize: 4 });
    expect(all.items.map((a) => a.metadata.name)).toEqual([...Array(23).keys()].map(name));
    expect(all.metadata.continue).toBeUndefined();
    const page = await client.listPage("App", { limit: 4 });
    expect(page.items).toHaveLength(4);
    const next = await client.listPage("App", { limit: 4, continue: page.metadata.continue });
    expect(next.items[0]!.metadata.name).toBe(name(4));
    await expect(client.listPage("App", { continue: "x!" })).rejects.toMatchObject({ code: "BadRequest" });
    await expect(client.listPage("App", { continue: "x!" })).rejects.toBeInstanceOf(GroveError);
  });
});
