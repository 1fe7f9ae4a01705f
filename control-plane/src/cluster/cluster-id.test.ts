import { MemoryStore } from "../store/memory-store";
import { CLUSTER_KEY, ensureClusterId } from "./cluster-id";

describe("ensureClusterId", () => {
  it("creates an id in a new store and returns the same one afterwards", async () => {
    const store = new MemoryStore();
    const first = await ensureClusterId(store);
    expect(first).toEqual({ state: "ok", id: expect.stringMatching(/^[0-9a-f-]{36}$/), created: true });
    const again = await ensureClusterId(store);
    expect(again).toEqual({ state: "ok", id: first.state === "ok" ? first.id : "", created: false });
  });

  it("of two concurrent first starts, both end up with the one id that was written", async () => {
    const store = new MemoryStore();
    const [a, b] = await Promise.all([ensureClusterId(store), ensureClusterId(store)]);
    const stored = (await store.get<{ id: string }>(CLUSTER_KEY))?.value.id;
    expect(a.state === "ok" && a.id).toBe(stored);
    expect(b.state === "ok" && b.id).toBe(stored);
  });

  it("calls a store with objects but no id suspect and writes nothing, unless told to assign one", async () => {
    const store = new MemoryStore();
    await store.create("/grove/apps/default/web", { kind: "App" });
    await store.create("/grove/nodes/h1", { kind: "Node" });
    expect(await ensureClusterId(store)).toEqual({ state: "suspect", holds: ["apps", "nodes"] });
    expect(await store.get(CLUSTER_KEY)).toBeUndefined();
    const assigned = await ensureClusterId(store, { assign: true });
    expect(assigned).toMatchObject({ state: "ok", created: true });
  });
});
