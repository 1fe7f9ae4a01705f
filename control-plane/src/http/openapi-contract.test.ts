// /openapi.json is good enough for generated clients: every operation has an
// operationId (unique) and a schema for its success answer, so openapi-typescript
// and friends give every call a name and a typed result.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { KeyRing } from "../secrets/key-ring";
import { SecretService } from "../secrets/secret-store";
import type { AgentStreams } from "./logs-exec-stats-routes";
import { buildHttpServer } from "./server";

jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

interface Operation {
  operationId?: string;
  responses?: Record<string, { content?: Record<string, { schema?: unknown }>; description?: string }>;
}

test("every operation in /openapi.json has a unique operationId and a 2xx answer with a schema", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-openapi-"));
  const store = new MemoryStore();
  const app = await buildHttpServer({
    repo: new Repository(store),
    store,
    adminToken: "t",
    // Only the document is read: no call reaches the agents.
    agents: {} as AgentStreams,
    secrets: new SecretService(store, KeyRing.openOrCreate(path.join(dir, "keys.json"))),
    routes: [],
  });
  try {
    await app.ready();
    const doc = app.swagger() as { paths: Record<string, Record<string, Operation>> };
    const problems: string[] = [];
    const ids = new Map<string, string>();
    let operations = 0;
    for (const [p, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        operations++;
        const where = `${method.toUpperCase()} ${p}`;
        if (!op.operationId) problems.push(`${where}: no operationId`);
        else if (ids.has(op.operationId))
          problems.push(`${where}: operationId ${op.operationId} also on ${ids.get(op.operationId)}`);
        else ids.set(op.operationId, where);
        const ok = Object.entries(op.responses ?? {}).filter(([code]) => /^2/.test(code) || code === "101");
        if (ok.length === 0) problems.push(`${where}: no 2xx response`);
        for (const [code, r] of ok) {
          const schemas = Object.values(r.content ?? {}).map((c) => c.schema);
          if (code !== "204" && code !== "101" && (schemas.length === 0 || schemas.some((s) => s === undefined)))
            problems.push(`${where}: ${code} has no schema`);
        }
      }
    }
    expect(problems).toEqual([]);
    // The operations the issue names are among them.
    for (const id of [
      "planApply",
      "getCapacity",
      "getStats",
      "getEndpoints",
      "getInstanceLogs",
      "getVersion",
      "listApps",
    ])
      expect([...ids.keys()]).toContain(id);
    expect(operations).toBeGreaterThan(40);
  } finally {
    await app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
