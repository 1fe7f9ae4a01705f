// Whole lists from the replica's informer cache: ?resourceVersion=0 ("any
// revision") is answered from the cache while it is fresh, in the store's key
// order and at the revision the cache reflects; without it, or while the cache
// may be behind etcd, the list is read from the store as before.
import type { FastifyInstance } from "fastify";
import { API_VERSION, type App, type List } from "@grove/api";
import { Informer } from "../controllers/informer";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { buildHttpServer } from "./server";

// See server.test.ts: @fastify/static's content-disposition is an ES module Jest cannot load.
jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "s3cret-token";

function app(name: string, namespace = "default"): App {
  return {
    apiVersion: API_VERSION,
    kind: "App",
    metadata: { name, namespace },
    spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 0 },
  };
}

describe("lists from the informer cache", () => {
  let store: MemoryStore;
  let repo: Repository;
  let informer: Informer<App>;
  let server: FastifyInstance;
  let base: string;
  /** While true the cache passes for stale (the informer's own staleness needs etcd to go away). */
  let stale = false;

  beforeEach(async () => {
    store = new MemoryStore();
    repo = new Repository(store);
    // Created in an order unlike the key order, across two namespaces.
    for (const [n, ns] of [
      ["zeta", "default"],
      ["alpha", "default"],
      ["mid", "other"],
      ["beta", "default"],
    ] as const)
      await repo.create(app(n, ns));
    informer = new Informer<App>(store, Keys.collection("apps"));
    await informer.start();
    stale = false;
    const cache = {
      get isFresh() {
        return !stale && informer.isFresh;
      },
      get revision() {
        return informer.revision;
      },
      list: () => informer.list(),
      get: (key: string) => informer.get(key),
    };
    server = await buildHttpServer({ repo, store, adminToken: TOKEN, listCaches: { App: cache } });
    base = await server.listen({ host: "127.0.0.1", port: 0 });
  });
  afterEach(async () => {
    await server.close();
    await informer.stop();
    await store.close();
  });

  async function list(url: string): Promise<List<App>> {
    const res = await fetch(base + url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as List<App>;
  }

  it("answers ?resourceVersion=0 with what the store answers, in its order, across and within namespaces", async () => {
    for (const url of ["/v1/apps", "/v1/namespaces/default/apps", "/v1/namespaces/other/apps"]) {
      const fromStore = await list(url);
      const fromCache = await list(`${url}?resourceVersion=0`);
      expect(fromCache.items).toEqual(fromStore.items);
      expect(fromCache.metadata.resourceVersion).toBe(informer.revision);
    }
  });

  /** Until the informer shows the written object. */
  async function seen(w: { object: App }): Promise<void> {
    const key = `${w.object.metadata.namespace}/${w.object.metadata.name}`;
    for (let i = 0; informer.get(key)?.metadata.resourceVersion !== w.object.metadata.resourceVersion; i++) {
      if (i > 500) throw new Error(`the informer never showed ${key} at ${w.object.metadata.resourceVersion}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async function raw(url: string): Promise<{ type: string | null; body: string }> {
    const res = await fetch(base + url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    return { type: res.headers.get("content-type"), body: await res.text() };
  }

  it("answers byte for byte as the store's list does (the items' JSON kept between lists)", async () => {
    await seen(
      await repo.apply({ ...app("alpha"), metadata: { name: "alpha", namespace: "default", labels: { tier: "web" } } }),
    );
    for (const url of ["/v1/apps", "/v1/namespaces/default/apps", "/v1/apps?labelSelector=tier%3Dweb"]) {
      const sep = url.includes("?") ? "&" : "?";
      const fromStore = await raw(url);
      expect(await raw(`${url}${sep}resourceVersion=0`)).toEqual(fromStore);
      expect(await raw(`${url}${sep}resourceVersion=0`)).toEqual(fromStore); // kept this time
      expect(fromStore.type).toBe("application/json; charset=utf-8");
    }
  });

  it("serializes an item again once its resourceVersion changes, and only then", async () => {
    const names = (l: List<App>) => l.items.map((a) => `${a.metadata.name}:${a.spec.instances}`);
    expect(names(await list("/v1/namespaces/default/apps?resourceVersion=0"))).toContain("alpha:0");
    // The kept JSON is what answers: a change made to the cached object in place, without a new
    // resourceVersion (nothing in the server does that), does not show.
    (informer.get("default/alpha") as App).spec.instances = 9;
    expect(names(await list("/v1/namespaces/default/apps?resourceVersion=0"))).toContain("alpha:0");
    await seen(await repo.apply({ ...app("alpha"), spec: { ...app("alpha").spec, instances: 2 } }));
    expect(names(await list("/v1/namespaces/default/apps?resourceVersion=0"))).toContain("alpha:2");
  });

  it("serves the cache, not the store: a write the cache never saw is not in the answer", async () => {
    await informer.stop(); // the cache no longer follows the store (and still passes for fresh)
    await repo.create(app("gamma"));
    const cached = await list("/v1/namespaces/default/apps?resourceVersion=0");
    const direct = await list("/v1/namespaces/default/apps");
    expect(direct.items.map((a) => a.metadata.name)).toContain("gamma");
    expect(cached.items.map((a) => a.metadata.name)).not.toContain("gamma");
    expect(BigInt(cached.metadata.resourceVersion!)).toBeLessThan(BigInt(direct.metadata.resourceVersion!));
  });

  it("reads the store while the cache may be behind etcd", async () => {
    await informer.stop(); // the cache no longer follows the store
    await repo.create(app("gamma"));
    stale = true;
    const answer = await list("/v1/namespaces/default/apps?resourceVersion=0");
    expect(answer.items.map((a) => a.metadata.name)).toContain("gamma");
  });

  async function get(url: string): Promise<App> {
    const res = await fetch(base + url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as App;
  }

  it("answers a get with ?resourceVersion=0 from the cache, and one without from the store", async () => {
    await informer.stop(); // the cache no longer follows the store (and still passes for fresh)
    const before = await get("/v1/namespaces/default/apps/alpha");
    await repo.apply({ ...app("alpha"), metadata: { name: "alpha", namespace: "default", labels: { v: "2" } } });
    expect(await get("/v1/namespaces/default/apps/alpha?resourceVersion=0")).toEqual(before);
    const direct = await get("/v1/namespaces/default/apps/alpha");
    expect(direct.metadata.labels).toEqual({ v: "2" });
  });

  it("serves ?resourceVersion=N from the cache only once it has reached N; etcd answers before (read-your-writes)", async () => {
    await informer.stop();
    const written = await repo.apply<App>({
      ...app("alpha"),
      metadata: { name: "alpha", namespace: "default", labels: { v: "2" } },
    });
    const rv = written.object.metadata.resourceVersion!;
    const one = await get(`/v1/namespaces/default/apps/alpha?resourceVersion=${rv}`);
    expect(one.metadata.labels).toEqual({ v: "2" });
    const all = await list(`/v1/namespaces/default/apps?resourceVersion=${rv}`);
    expect(all.items.find((a) => a.metadata.name === "alpha")?.metadata.labels).toEqual({ v: "2" });
    // An object the cache does not hold is read from etcd, not answered 404.
    await repo.create(app("gamma"));
    expect((await get("/v1/namespaces/default/apps/gamma?resourceVersion=0")).metadata.name).toBe("gamma");
  });

  it("serves ?resourceVersion=N from the cache when it is that far", async () => {
    const cachedRevision = informer.revision;
    await informer.stop();
    await repo.create(app("gamma"));
    const all = await list(`/v1/namespaces/default/apps?resourceVersion=${cachedRevision}`);
    expect(all.metadata.resourceVersion).toBe(cachedRevision);
    expect(all.items.map((a) => a.metadata.name)).not.toContain("gamma");
  });
});
