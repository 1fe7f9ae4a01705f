// The rollout routes over the in-memory store: history, undo (to the
// revision before, to a named one, refusals), pause/resume, promote, and
// their place in /openapi.json. The revisions are written as the App
// controller records them (RevisionStore.record).
import type { FastifyInstance } from "fastify";
import { API_VERSION, templateHash, type App, type ErrorBody } from "@grove/api";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { RevisionStore } from "../controllers/revisions";
import { buildHttpServer } from "./server";

// As in server.test.ts: @fastify/swagger-ui's content-disposition is an ES module Jest cannot load.
jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "t0ken";

describe("rollout routes", () => {
  let store: MemoryStore;
  let repo: Repository;
  let revisions: RevisionStore;
  let server: FastifyInstance;
  let base: string;

  beforeEach(async () => {
    store = new MemoryStore();
    repo = new Repository(store);
    revisions = new RevisionStore(store);
    server = await buildHttpServer({ repo, store, adminToken: TOKEN });
    base = await server.listen({ host: "127.0.0.1", port: 0 });
  });
  afterEach(async () => {
    await server.close();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const url = "/v1/namespaces/default/apps/web";

  /** Applies the App with this command and records its revision, as the controller would. */
  async function version(cmd: string): Promise<App> {
    const spec = { rootfs: "busybox", command: ["sh", "-c", cmd], instances: 3, update: { canary: 1 } };
    const { object } = await repo.apply({
      apiVersion: API_VERSION,
      kind: "App",
      metadata: { name: "web", namespace: "default" },
      spec,
    } as App);
    await revisions.record(object);
    return object;
  }

  it("lists revisions and undoes to the one before, or a named one, keeping instances", async () => {
    await version("v1");
    await version("v2");
    await version("v3");
    const h = await call("GET", `${url}/revisions`);
    expect(h.status).toBe(200);
    expect(h.body.current).toBe(3);
    expect(h.body.items.map((r: { revision: number }) => r.revision)).toEqual([1, 2, 3]);
    expect(h.body.items[0].template.command).toEqual(["sh", "-c", "v1"]);

    const undo = await call("POST", `${url}/rollout/undo`, {});
    expect(undo.status).toBe(200);
    expect(undo.body.spec.command).toEqual(["sh", "-c", "v2"]);
    expect(undo.body.spec.instances).toBe(3);
    expect(undo.body.spec.update).toEqual({ canary: 1 });

    const to1 = await call("POST", `${url}/rollout/undo`, { toRevision: 1 });
    expect(to1.body.spec.command).toEqual(["sh", "-c", "v1"]);
    await revisions.record(to1.body as App);
    expect((await call("GET", `${url}/revisions`)).body.current).toBe(1); // not a new number

    const missing = await call("POST", `${url}/rollout/undo`, { toRevision: 9 });
    expect([missing.status, (missing.body as ErrorBody).code]).toEqual([404, "NotFound"]);
    expect(missing.body.message).toContain("kept: 1, 2, 3");
    const same = await call("POST", `${url}/rollout/undo`, { toRevision: 1 });
    expect([same.status, same.body.details?.[0]?.path]).toEqual([400, "/toRevision"]);
  });

  it("pauses and resumes through spec.update.paused, and promotes only a canary under way", async () => {
    const a = await version("v1");
    const paused = await call("POST", `${url}/rollout/pause`, {});
    expect(paused.body.spec.update).toEqual({ canary: 1, paused: true });
    const resumed = await call("POST", `${url}/rollout/resume`, {});
    expect(resumed.body.spec.update).toEqual({ canary: 1 });

    const none = await call("POST", `${url}/rollout/promote`, {});
    expect([none.status, none.body.code]).toEqual([400, "BadRequest"]);
    await repo.updateStatus("App", await repo.get("App", "default", "web"), (x) => {
      x.status = {
        rollout: {
          revision: 2,
          templateHash: templateHash(a),
          generation: 3,
          from: 1,
          progressedAt: new Date(0).toISOString(),
          updatedAvailable: 1,
        },
      };
    });
    const promoted = await call("POST", `${url}/rollout/promote`, {});
    expect(promoted.status).toBe(200);
    expect(promoted.body.status.rollout.promoted).toBe(true);
    expect(Date.parse(promoted.body.status.rollout.progressedAt)).toBeGreaterThan(0); // a fresh deadline
  });

  it("publishes the routes with operation ids and response schemas", async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, unknown> }>>;
    };
    const p = "/v1/namespaces/{namespace}/apps/{name}";
    expect(doc.paths[`${p}/revisions`]?.get?.operationId).toBe("listAppRevisions");
    for (const [verb, id] of [
      ["undo", "undoAppRollout"],
      ["pause", "pauseAppRollout"],
      ["resume", "resumeAppRollout"],
      ["promote", "promoteAppCanary"],
    ]) {
      expect(doc.paths[`${p}/rollout/${verb}`]?.post?.operationId).toBe(id);
      expect(doc.paths[`${p}/rollout/${verb}`]?.post?.responses?.["200"]).toBeDefined();
    }
  });
});
