import { API_VERSION, GroveError, type Namespace } from "@grove/api";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { TokenService } from "../auth/tokens";
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

describe("NamespaceService.delete and tokens bound to several namespaces", () => {
  let store: MemoryStore;
  let service: NamespaceService;
  let tokens: TokenService;
  const named = (name: string): Namespace => ({
    apiVersion: API_VERSION,
    kind: "Namespace",
    metadata: { name },
    spec: {},
  });
  beforeEach(async () => {
    store = new MemoryStore();
    service = new NamespaceService(store, new Repository(store));
    tokens = new TokenService(store, "admin-token-for-the-test");
    await service.apply(named("team-a"), true);
  });

  it("refuses without cascade while a token of another namespace is bound to it, naming it", async () => {
    await tokens.create("ci", "namespace-admin", "team-b", ["team-a"]);
    const err = await service.delete("team-a", false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GroveError);
    expect((err as GroveError).code).toBe("Conflict");
    expect((err as GroveError).message).toContain("1 tokens of other namespaces bound to it");
    expect(await service.get("team-a")).toBeDefined();
  });

  it("with cascade, the name leaves every token bound to it, so a namespace made again under it is not theirs", async () => {
    const only = await tokens.create("ci", "namespace-admin", "team-b", ["team-a"]);
    const two = await tokens.create("deployer", "namespace-admin", "team-c", ["team-a", "team-d"]);
    await service.delete("team-a", true);
    await service.apply(named("team-a"), true);
    const who = async (t: { token?: string }) => {
      tokens = new TokenService(store, "admin-token-for-the-test"); // no cached identities
      return tokens.identify(t.token!);
    };
    expect(await who(only)).toEqual({ name: "ci", role: "namespace-admin", namespace: "team-b" });
    expect(await who(two)).toEqual({
      name: "deployer",
      role: "namespace-admin",
      namespace: "team-c",
      namespaces: ["team-d"],
    });
  });

  it("a token changed while the deletion unbinds it is read again: the change is kept and the name still leaves it", async () => {
    const t = await tokens.create("deployer", "namespace-admin", "team-c", ["team-a", "team-d"]);
    const update = store.update.bind(store);
    let raced = 0;
    // Another writer adds team-e to the token between the deletion's read and its write.
    store.update = async <T>(key: string, value: T, rev: string): Promise<string> => {
      if (raced === 0 && key.includes("/tokens/")) {
        raced++;
        const cur = (await store.get<{ namespaces?: string[] }>(key))!;
        await update(key, { ...cur.value, namespaces: [...(cur.value.namespaces ?? []), "team-e"] }, cur.modRevision);
      }
      return update(key, value, rev);
    };
    await service.delete("team-a", true);
    expect(raced).toBe(1);
    store.update = update;
    tokens = new TokenService(store, "admin-token-for-the-test");
    expect(await tokens.identify(t.token!)).toEqual({
      name: "deployer",
      role: "namespace-admin",
      namespace: "team-c",
      namespaces: ["team-d", "team-e"],
    });
  });
});
