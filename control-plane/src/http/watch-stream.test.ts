import http from "node:http";
import type { FastifyInstance } from "fastify";
import { API_VERSION, type App } from "@grove/api";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import type { Watch, WatchHandlers } from "../store/store";
import { buildHttpServer } from "./server";

// See server.test.ts: @fastify/static's content-disposition is an ES module Jest cannot load.
jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "watch-token";

/** A MemoryStore that counts the watches open on it. */
class CountingStore extends MemoryStore {
  open = 0;
  override async watch<T>(prefix: string, from: string, handlers: WatchHandlers<T>): Promise<Watch> {
    const w = await super.watch(prefix, from, handlers);
    this.open++;
    let closed = false;
    return {
      get resumeRevision() {
        return w.resumeRevision;
      },
      close: async () => {
        if (!closed) this.open--;
        closed = true;
        await w.close();
      },
    };
  }
}

function app(name: string, instances: number): App {
  return {
    apiVersion: API_VERSION,
    kind: "App",
    metadata: { name },
    spec: { rootfs: "busybox", command: ["sleep", "1"], instances },
  };
}

interface Line {
  type: string;
  object: { metadata: { name: string; resourceVersion: string }; spec?: { instances?: number } };
}

/** Opens a watch and collects its NDJSON lines. */
function openWatch(base: string, path: string) {
  const lines: Line[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  let buffer = "";
  let req!: http.ClientRequest;
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req = http.get(base + path, { headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          lines.push(JSON.parse(buffer.slice(0, nl)) as Line);
          buffer = buffer.slice(nl + 1);
        }
        if (waiter && lines.length >= waiter.n) waiter.resolve();
      });
      resolve(res);
    });
    req.on("error", reject);
  });
  const waitFor = (n: number) =>
    new Promise<void>((resolve, reject) => {
      if (lines.length >= n) return resolve();
      const timer = setTimeout(() => reject(new Error(`only ${lines.length} of ${n} lines arrived`)), 5000);
      waiter = {
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
    });
  return { lines, response, waitFor, close: () => req.destroy() };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

describe("watch streams", () => {
  let store: CountingStore;
  let repo: Repository;
  let server: FastifyInstance;
  let base: string;

  beforeEach(async () => {
    store = new CountingStore();
    repo = new Repository(store);
    server = await buildHttpServer({ repo, store, adminToken: TOKEN });
    base = await server.listen({ host: "127.0.0.1", port: 0 });
  });
  afterEach(async () => {
    await server.close();
  });

  it("sends ADDED for what exists, then ADDED, MODIFIED and DELETED as things change", async () => {
    await repo.create(app("existing", 1));
    const w = openWatch(base, "/v1/namespaces/default/apps?watch=1");
    const res = await w.response;
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/application\/x-ndjson/);
    await w.waitFor(1);

    await repo.create(app("web", 1));
    await repo.apply(app("web", 3));
    await repo.create({ ...app("elsewhere", 1), metadata: { name: "elsewhere", namespace: "other" } });
    const deleted = await repo.delete("App", "default", "web");
    await w.waitFor(4);

    expect(w.lines.map((l) => [l.type, l.object.metadata.name, l.object.metadata.resourceVersion])).toEqual([
      ["ADDED", "existing", "2"],
      ["ADDED", "web", "3"],
      ["MODIFIED", "web", "4"],
      ["DELETED", "web", "6"],
    ]);
    expect(w.lines[2]!.object.spec!.instances).toBe(3);
    expect(deleted.metadata.name).toBe("web");
    w.close();
  });

  it("streams only the changes after a given resourceVersion", async () => {
    await repo.create(app("a", 1)); // 2
    await repo.apply(app("a", 2)); // 3
    const w = openWatch(base, "/v1/apps?watch=true&resourceVersion=2");
    await w.waitFor(1);
    await repo.create(app("b", 1)); // 4
    await w.waitFor(2);
    expect(w.lines.map((l) => [l.type, l.object.metadata.name, l.object.metadata.resourceVersion])).toEqual([
      ["MODIFIED", "a", "3"],
      ["ADDED", "b", "4"],
    ]);
    w.close();
  });

  it("closes the store watch when the client goes away", async () => {
    const w = openWatch(base, "/v1/apps?watch=1");
    await w.response;
    await until(() => store.open === 1);
    w.close();
    await until(() => store.open === 0);
  });

  it("ends open streams when the server closes", async () => {
    const w = openWatch(base, "/v1/nodes?watch=1");
    const res = await w.response;
    await until(() => store.open === 1);
    const ended = new Promise<void>((resolve) => res.on("end", resolve));
    await server.close();
    await ended;
    expect(store.open).toBe(0);
  });
});
