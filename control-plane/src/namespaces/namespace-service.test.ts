import { API_VERSION, GroveError, type Namespace } from "@grove/api";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { NamespaceService } from "./namespace-service";

const ns = (spec: Namespace["spec"]): Namespace => ({
  apiVersion: API_VERSION,
  kind: "Namespace",
  metadata: { name: "team-a" },
  spec,
});

describe("NamespaceService.apply", () => {
  let service: NamespaceService;
  beforeEach(() => {
    const store = new MemoryStore();
    service = new NamespaceService(store, new Repository(store));
  });

  it("takes a quota of cpu 0 as a number (the quota parser threw a plain Error: 500 Internal)", async () => {
    const { object } = await service.apply(ns({ quota: { cpu: 0, memory: 0 } }), true);
    expect(object.status?.hard).toEqual({ cpuMillis: 0, memoryBytes: 0 });
  });

  it("refuses what namespaceSpecProblems names with ValidationFailed, nothing written", async () => {
    const err = await service.apply(ns({ hostPortRange: { first: 2, last: 1 } }), true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GroveError);
    expect((err as GroveError).code).toBe("ValidationFailed");
    expect((err as GroveError).details).toEqual([
      { path: "/spec/hostPortRange/first", message: "must be at most last (1)" },
    ]);
    expect(await service.get("team-a")).toBeUndefined();
  });
});
