// The Task routes over the in-memory store: create, apply and get; bad Tasks
// refused with the field path and nothing written; the OpenAPI document names
// their operations and response schemas.
import type { FastifyInstance } from "fastify";
import { API_VERSION, type ErrorBody, type Task } from "@grove/api";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { buildHttpServer } from "./server";

// As in server.test.ts: @fastify/swagger-ui's content-disposition is an ES module Jest cannot load.
jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "task-token";
const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

function task(name: string, spec: Record<string, unknown>): Task {
  return { apiVersion: API_VERSION, kind: "Task", metadata: { name }, spec: spec as Task["spec"] };
}

describe("Task routes", () => {
  let store: MemoryStore;
  let repo: Repository;
  let server: FastifyInstance;
  let base: string;

  beforeEach(async () => {
    store = new MemoryStore();
    repo = new Repository(store);
    server = await buildHttpServer({ repo, store, adminToken: TOKEN });
    base = await server.listen({ host: "127.0.0.1", port: 0 });
  });
  afterEach(async () => {
    await server.close();
  });

  const send = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(base + url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };

  it("creates, applies and lists Tasks", async () => {
    const created = await send(
      "POST",
      "/v1/namespaces/default/tasks",
      task("once", { rootfs: "busybox", command: ["true"] }),
    );
    expect(created.status).toBe(201);
    const applied = await send(
      "PUT",
      "/v1/namespaces/default/tasks/twice",
      task("twice", { rootfs: "busybox", command: ["true"], retries: 1 }),
    );
    expect(applied.status).toBe(201);
    const list = await send("GET", "/v1/tasks");
    expect((list.body as { kind: string; items: Task[] }).kind).toBe("TaskList");
    expect((list.body as { items: Task[] }).items.map((t) => t.metadata.name)).toEqual(["once", "twice"]);
  });

  it("refuses a bad Task with the field's path and writes nothing", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ rootfs: "busybox", command: ["true"], retries: -1 }, "/spec/retries"],
      [{ rootfs: "busybox", command: [] }, "/spec/command"],
      [{ fromApp: "web" }, "/spec/command"],
      [{ fromApp: "web", command: ["./migrate"] }, "/spec/fromApp"],
    ];
    for (const [spec, path] of cases) {
      const res = await send("PUT", "/v1/namespaces/default/tasks/bad", task("bad", spec));
      expect(res.status).toBe(400);
      const err = res.body as ErrorBody;
      expect(err.code).toBe("ValidationFailed");
      expect(err.details?.map((d) => d.path)).toContain(path);
    }
    expect((await send("GET", "/v1/namespaces/default/tasks/bad")).status).toBe(404);
    expect((await repo.list("Task")).items).toEqual([]);
  });

  it("accepts fromApp naming an App of the Task's namespace", async () => {
    await repo.create({
      apiVersion: API_VERSION,
      kind: "App",
      metadata: { name: "web", namespace: "default" },
      spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 0 },
    });
    const ok = await send(
      "PUT",
      "/v1/namespaces/default/tasks/mig",
      task("mig", { fromApp: "web", command: ["./migrate"] }),
    );
    expect(ok.status).toBe(201);
    const elsewhere = await send(
      "PUT",
      "/v1/namespaces/other/tasks/mig",
      task("mig", { fromApp: "web", command: ["x"] }),
    );
    expect(elsewhere.status).toBe(400);
  });

  it("publishes the Task operations with their response schemas in /openapi.json", async () => {
    const doc = (await (await fetch(base + "/openapi.json")).json()) as {
      paths: Record<string, Record<string, { operationId?: string; responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, unknown> };
    };
    const object = doc.paths["/v1/namespaces/{namespace}/tasks/{name}"]!;
    expect(object.get?.operationId).toBe("getTask");
    expect(object.put?.operationId).toBe("applyTask");
    expect(object.delete?.operationId).toBe("deleteTask");
    expect(doc.paths["/v1/namespaces/{namespace}/tasks"]!.post?.operationId).toBe("createTask");
    expect(doc.paths["/v1/namespaces/{namespace}/tasks"]!.get?.operationId).toBe("listTasks");
    expect(doc.paths["/v1/tasks"]!.get?.operationId).toBe("listTasksAllNamespaces");
    expect(JSON.stringify(object.get?.responses["200"])).toContain("Task");
    expect(doc.components.schemas.Task).toBeDefined();
    expect(doc.components.schemas.TaskList).toBeDefined();
  });
});
