// The API's string rules and bounds at the HTTP edge (api/src/string-rules.ts): NUL,
// unpaired surrogates and control characters in labels are 400 ValidationFailed naming
// the field, in JSON and YAML bodies alike; over-long strings, lists and maps too; and
// nothing is stored.
import type { FastifyInstance } from "fastify";
import { API_VERSION, MAX_ARG_LENGTH, MAX_ARGS, MAX_ENV_VARS, type ErrorBody } from "@grove/api";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { buildHttpServer } from "./server";

jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

const TOKEN = "s3cret-token";
let server: FastifyInstance;
let base: string;

beforeEach(async () => {
  const store = new MemoryStore();
  server = await buildHttpServer({ repo: new Repository(store), store, adminToken: TOKEN });
  base = await server.listen({ host: "127.0.0.1", port: 0 });
});
afterEach(async () => {
  await server.close();
});

async function send(method: string, url: string, body?: string, contentType = "application/json") {
  const res = await fetch(base + url, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { "content-type": contentType } : {}) },
    body,
  });
  return { status: res.status, body: (await res.json()) as ErrorBody };
}

const app = (spec: Record<string, unknown>, labels?: Record<string, string>) => ({
  apiVersion: API_VERSION,
  kind: "App",
  metadata: { name: "a", ...(labels ? { labels } : {}) },
  spec: { rootfs: "busybox", command: ["true"], instances: 0, ...spec },
});

async function expectRefused(body: string, pointer: string, message: RegExp, contentType?: string) {
  const a = await send("PUT", "/v1/namespaces/default/apps/a", body, contentType);
  expect({ status: a.status, code: a.body.code }).toEqual({ status: 400, code: "ValidationFailed" });
  expect(a.body.details).toEqual(expect.arrayContaining([{ path: pointer, message: expect.stringMatching(message) }]));
  expect((await send("GET", "/v1/namespaces/default/apps/a")).status).toBe(404);
}

describe("strings no process or label can hold", () => {
  test("a NUL in a command entry (JSON) and in an env value (YAML)", async () => {
    await expectRefused(JSON.stringify(app({ command: ["sh", "-c", "echo \u0000"] })), "/spec/command/2", /NUL/);
    await expectRefused(
      'apiVersion: grove/v1\nkind: App\nmetadata: {name: a}\nspec:\n  rootfs: busybox\n  instances: 0\n  command: ["true"]\n  env: {A: "x\\0y"}\n',
      "/spec/env/A",
      /NUL/,
      "application/yaml",
    );
  });

  test("an unpaired surrogate (a JSON \\ud800 escape)", async () => {
    const body = JSON.stringify(app({ workingDir: "/x" })).replace('"/x"', '"/\\ud800"');
    await expectRefused(body, "/spec/workingDir", /unpaired UTF-16 surrogate/);
  });

  test("a control character in a label value; and a Task's env", async () => {
    await expectRefused(JSON.stringify(app({}, { team: "a\u001b[2J" })), "/metadata/labels/team", /control character/);
    const task = {
      apiVersion: API_VERSION,
      kind: "Task",
      metadata: { name: "t" },
      spec: { rootfs: "busybox", command: ["true"], env: { A: "\u0000" } },
    };
    const a = await send("PUT", "/v1/namespaces/default/tasks/t", JSON.stringify(task));
    expect([a.status, a.body.code, a.body.details?.[0]?.path]).toEqual([400, "ValidationFailed", "/spec/env/A"]);
  });
});

describe("bounds", () => {
  test("a command entry, a command and an env over their limits", async () => {
    await expectRefused(JSON.stringify(app({ command: ["x".repeat(MAX_ARG_LENGTH + 1)] })), "/spec/command/0", /32000/);
    await expectRefused(JSON.stringify(app({ command: Array(MAX_ARGS + 1).fill("x") })), "/spec/command", /1024/);
    const env = Object.fromEntries(Array.from({ length: MAX_ENV_VARS + 1 }, (_, i) => [`V${i}`, ""]));
    await expectRefused(JSON.stringify(app({ env })), "/spec/env", /1024/);
  });

  test("at the limits, and lengths in characters: 200 characters beyond U+FFFF are a 253-character label", async () => {
    const a = await send(
      "PUT",
      "/v1/namespaces/default/apps/a",
      JSON.stringify(
        app(
          { command: Array(MAX_ARGS).fill("x".repeat(900)), env: { A: "\ud83d\ude00".repeat(MAX_ARG_LENGTH / 4) } },
          { e: "\ud83d\ude00".repeat(200) },
        ),
      ),
    );
    expect(a.status).toBe(201);
  });
});
