import { API_VERSION, GroveError, type App, type Instance, type Node, type WatchEvent } from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Repository, deepEqual, storeKey } from "./repository";

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

function app(name: string, instances = 1, extra: Partial<App["metadata"]> = {}): App {
  return {
    apiVersion: API_VERSION,
    kind: "App",
    metadata: { name, ...extra },
    spec: { rootfs: "busybox", command: ["sleep", "1000"], instances },
  };
}

function node(name: string): Node {
  return { apiVersion: API_VERSION, kind: "Node", metadata: { name }, spec: {} };
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(GroveError);
  await expect(p).rejects.toMatchObject({ code });
}

function setup() {
  const store = new MemoryStore();
  let uid = 0;
  const repo = new Repository(store, { now: () => new Date("2024-01-02T03:04:05Z"), uid: () => `uid-${++uid}` });
  return { store, repo };
}

describe("Repository", () => {
  it("creates with server-set metadata and never stores the resourceVersion", async () => {
    const { store, repo } = setup();
    const created = await repo.create(app("web", 2, { resourceVersion: "99" }));
    expect(created.metadata).toEqual({
      name: "web",
      namespace: "default",
      uid: "uid-1",
      generation: 1,
      creationTimestamp: "2024-01-02T03:04:05.000Z",
      resourceVersion: "2",
    });
    const raw = await store.get<App>("/grove/apps/default/web");
    expect(raw!.value.metadata.resourceVersion).toBeUndefined();
    expect(await repo.get("App", "default", "web")).toEqual(created);
    await expectCode(repo.create(app("web")), "AlreadyExists");
  });

  it("keeps nodes cluster-scoped and refuses a namespace on them", async () => {
    const { store, repo } = setup();
    await repo.create(node("n1"));
    expect(await store.get("/grove/nodes/n1")).toBeDefined();
    expect(storeKey("Node", "default", "n1")).toBe("/grove/nodes/n1");
    await expectCode(repo.create({ ...node("n2"), metadata: { name: "n2", namespace: "x" } }), "BadRequest");
  });

  it("rejects an unknown kind", async () => {
    const { repo } = setup();
    await expectCode(repo.create({ ...app("x"), kind: "Pod" } as unknown as App), "UnknownKind");
  });

  it("gets NotFound for a missing object and undefined from tryGet", async () => {
    const { repo } = setup();
    await expectCode(repo.get("App", "default", "nope"), "NotFound");
    expect(await repo.tryGet("App", "default", "nope")).toBeUndefined();
  });

  it("lists one namespace or all of them, with the list's revision", async () => {
    const { repo } = setup();
    await repo.create(app("a", 1, { namespace: "ns1" }));
    await repo.create(app("b", 1, { namespace: "ns2" }));
    await repo.create(node("n1"));
    const one = await repo.list("App", "ns1");
    expect(one.items.map((a) => a.metadata.name)).toEqual(["a"]);
    const all = await repo.list("App");
    expect(all.items.map((a) => `${a.metadata.namespace}/${a.metadata.name}`)).toEqual(["ns1/a", "ns2/b"]);
    expect(all.resourceVersion).toBe("4");
    expect(all.items[1]!.metadata.resourceVersion).toBe("3");
  });

  it("applies: created, then unchanged, then configured with a generation bump", async () => {
    const { repo } = setup();
    const first = await repo.apply(app("web", 1));
    expect(first.result).toBe("created");

    const again = await repo.apply(app("web", 1));
    expect(again).toEqual({ object: first.object, result: "unchanged" });

    await repo.updateStatus("App", first.object, (a) => {
      a.status = { running: 1 };
    });
    const scaled = await repo.apply(app("web", 3, { labels: { tier: "front" } }));
    expect(scaled.result).toBe("configured");
    expect(scaled.object.spec.instances).toBe(3);
    expect(scaled.object.metadata).toMatchObject({
      uid: first.object.metadata.uid,
      creationTimestamp: first.object.metadata.creationTimestamp,
      generation: 2,
      labels: { tier: "front" },
    });
    expect(scaled.object.status).toEqual({ running: 1 });

    // Labels alone change: configured, generation unchanged.
    const relabeled = await repo.apply(app("web", 3));
    expect(relabeled.result).toBe("configured");
    expect(relabeled.object.metadata.generation).toBe(2);
    expect(relabeled.object.metadata.labels).toBeUndefined();
  });

  it("applies with a resourceVersion only when it is the stored one", async () => {
    const { repo } = setup();
    const { object } = await repo.apply(app("web", 1));
    const rv = object.metadata.resourceVersion!;
    const ok = await repo.apply(app("web", 2, { resourceVersion: rv }));
    expect(ok.result).toBe("configured");
    await expectCode(repo.apply(app("web", 3, { resourceVersion: rv })), "Conflict");
    await expectCode(repo.apply(app("other", 1, { resourceVersion: "5" })), "Conflict");
    expect((await repo.get("App", "default", "web")).spec.instances).toBe(2);
  });

  it("updateStatus retries a conflict with a fresh read and leaves the spec alone", async () => {
    const { repo } = setup();
    const stale = await repo.create(app("web", 1));
    await repo.apply(app("web", 5)); // moves the object past `stale`
    const calls: number[] = [];
    const updated = await repo.updateStatus("App", stale, (a) => {
      calls.push(a.spec.instances);
      a.status = { instances: a.spec.instances };
      a.spec.instances = 100; // ignored: only status is written
    });
    expect(calls).toEqual([1, 5]);
    expect(updated.status).toEqual({ instances: 5 });
    expect(updated.spec.instances).toBe(5);
    expect(updated.metadata.generation).toBe(2);
  });

  it("updateStatus writes nothing when the status did not change", async () => {
    const { repo, store } = setup();
    const created = await repo.create(app("web", 1));
    const before = store.revision;
    const same = await repo.updateStatus("App", created, () => undefined);
    expect(same).toEqual(created);
    const skipped = await repo.updateStatus("App", created, (a) => {
      a.status = { running: 3 };
      return false;
    });
    expect(skipped).toEqual(created);
    expect(store.revision).toBe(before);
  });

  it("updateStatus gives up after the configured number of conflicts", async () => {
    /** A store where someone else always writes the key just before our update. */
    class RacingStore extends MemoryStore {
      override async update<T>(key: string, value: T, expected: string): Promise<string> {
        const kv = await super.get<T>(key);
        await super.update(key, kv!.value, kv!.modRevision);
        return super.update(key, value, expected);
      }
    }
    const store = new RacingStore();
    const repo = new Repository(store, { conflictRetries: 2 });
    await repo.create(app("web", 1));
    let calls = 0;
    const p = repo.updateStatus("App", { metadata: { name: "web" } }, (a) => {
      calls++;
      a.status = { running: calls };
    });
    await expectCode(p, "Conflict");
    expect(calls).toBe(3);
  });

  it("update is a compare-and-swap and keeps server-set metadata", async () => {
    const { repo } = setup();
    const created = await repo.create(app("web", 1));
    const changed: App = {
      ...created,
      metadata: { ...created.metadata, uid: "forged", generation: 40 },
      spec: { ...created.spec, instances: 2 },
    };
    const updated = await repo.update(changed);
    expect(updated.metadata.uid).toBe(created.metadata.uid);
    expect(updated.metadata.generation).toBe(2);
    await expectCode(repo.update(changed), "Conflict");
    const { resourceVersion: _rv, ...noVersion } = changed.metadata;
    await expectCode(repo.update({ ...changed, metadata: noVersion }), "BadRequest");
  });

  it("replace puts a new incarnation at the same key", async () => {
    const { repo } = setup();
    const inst: Instance = {
      apiVersion: API_VERSION,
      kind: "Instance",
      metadata: { name: "web-0", namespace: "default", uid: "first" },
      spec: {
        app: "web",
        appUid: "a",
        index: 0,
        rootfs: "busybox",
        command: ["true"],
        resources: { cpuMillis: 100, memoryBytes: 1, pids: 1 },
        restartPolicy: "Always",
        stopGracePeriodSeconds: 1,
        restarts: 0,
      },
      status: { state: "Failed" },
    };
    const created = await repo.create(inst);
    expect(created.metadata.uid).toBe("first");
    const next: Instance = {
      ...inst,
      metadata: { ...inst.metadata, uid: "second", resourceVersion: created.metadata.resourceVersion },
      spec: { ...inst.spec, restarts: 1 },
      status: { state: "Pending" },
    };
    const replaced = await repo.replace(next);
    expect(replaced.metadata).toMatchObject({ uid: "second", generation: 1 });
    expect(replaced.status).toEqual({ state: "Pending" });
    await expectCode(repo.replace(next), "Conflict");
  });

  it("deletes and returns the object, honouring a resourceVersion precondition", async () => {
    const { repo } = setup();
    const created = await repo.create(app("web"));
    await expectCode(repo.delete("App", "default", "web", "1"), "Conflict");
    const deleted = await repo.delete("App", "default", "web", created.metadata.resourceVersion);
    expect(deleted).toEqual(created);
    await expectCode(repo.delete("App", "default", "web"), "NotFound");
  });

  it("watches as ADDED / MODIFIED / DELETED with the event's resourceVersion", async () => {
    const { repo } = setup();
    await repo.create(app("before"));
    const list = await repo.list("App", "default");
    const events: WatchEvent<App>[] = [];
    const w = await repo.watch("App", "default", String(Number(list.resourceVersion) + 1), {
      onEvent: (e) => events.push(e),
    });
    const c = await repo.create(app("web"));
    await repo.apply(app("web", 4));
    await repo.create(app("elsewhere", 1, { namespace: "other" }));
    await repo.delete("App", "default", "web");
    await flush();
    expect(events.map((e) => [e.type, e.object.metadata.name, e.object.metadata.resourceVersion])).toEqual([
      ["ADDED", "web", c.metadata.resourceVersion],
      ["MODIFIED", "web", "4"],
      ["DELETED", "web", "6"],
    ]);
    expect(events[2]!.object.spec.instances).toBe(4);
    await w.close();
  });

  it("watch relists through onRelist after compaction", async () => {
    const { repo, store } = setup();
    await repo.create(app("a"));
    await repo.create(app("b"));
    store.compact(store.revision);
    const relists: Array<[string[], string]> = [];
    await repo.watch("App", undefined, "2", {
      onEvent: () => undefined,
      onRelist: (items, rv) => relists.push([items.map((i) => i.metadata.name), rv]),
    });
    await flush();
    expect(relists).toEqual([[["a", "b"], "3"]]);
  });
});

describe("deepEqual", () => {
  it("compares JSON values structurally, ignoring key order and undefined members", () => {
    expect(deepEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(deepEqual({ a: 1, x: undefined }, { a: 1 })).toBe(true);
    expect(deepEqual({ a: 1 }, { a: 2 })).toBe(false);
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
    expect(deepEqual({ a: [] }, { a: {} })).toBe(false);
    expect(deepEqual(null, {})).toBe(false);
  });
});
