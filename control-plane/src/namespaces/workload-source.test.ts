// Quota checks read the namespace's Apps and Tasks from the replica's informer
// caches only when the caches provably hold every quota-checked write the
// admission key's revision covers; otherwise (a cache behind, e.g. a write by
// another replica it has not seen) from etcd, and a refusal read from a cache
// is checked again against etcd.
import { API_VERSION, GroveError, type App, type Namespace, type Task } from "@grove/api";
import { Informer } from "../controllers/informer";
import { Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { NamespaceAdmission } from "./admission";
import { NamespaceService } from "./namespace-service";
import { nextRecord, revisionsNeeded, type AdmissionRecord, type WorkloadCache } from "./workload-source";

const NS = "team-a";

function app(name: string, instances = 1): App {
  return {
    apiVersion: API_VERSION,
    kind: "App",
    metadata: { name, namespace: NS },
    spec: { rootfs: "busybox", command: ["sleep", "1000"], instances, resources: { cpu: "100m", memory: "16Mi" } },
  };
}

function namespace(instances: number): Namespace {
  return {
    apiVersion: API_VERSION,
    kind: "Namespace",
    metadata: { name: NS },
    spec: { policy: "privileged", quota: { instances } },
  };
}

async function refusal(p: Promise<unknown>): Promise<GroveError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GroveError);
  return err as GroveError;
}

describe("the admission record's chain", () => {
  const used = { cpuMillis: 0, memoryBytes: 0, instances: 0, hostPorts: 0 };
  const kv = (value: AdmissionRecord, modRevision: string) => ({ key: "k", value, modRevision });

  it("needs the Namespace's revision of both kinds while no quota-checked write was made", () => {
    expect(revisionsNeeded(undefined, "7")).toEqual({ App: 7n, Task: 7n });
  });

  it("needs the last write's revision of its kind and carries each kind's last earlier one forward", () => {
    const first = nextRecord(undefined, used, { kind: "Task", metadata: { name: "t", namespace: NS } });
    expect(first).toEqual({ used, wrote: { kind: "Task", key: `${NS}/t` }, earlier: {} });
    expect(revisionsNeeded(kv(first, "20"), "7")).toEqual({ App: 7n, Task: 20n });
    const second = nextRecord(kv(first, "20"), used, { kind: "App", metadata: { name: "a", namespace: NS } });
    expect(second.earlier).toEqual({ Task: "20" });
    expect(revisionsNeeded(kv(second, "30"), "7")).toEqual({ App: 30n, Task: 20n });
    // The Namespace changed since: what existed before its quota counts too.
    expect(revisionsNeeded(kv(second, "30"), "40")).toEqual({ App: 40n, Task: 40n });
  });

  it("reads etcd after a record of an older server, which says not what it wrote, and then needs its revision of both", () => {
    expect(revisionsNeeded(kv({ used }, "20"), "7")).toBeUndefined();
    const next = nextRecord(kv({ used }, "20"), used, { kind: "App", metadata: { name: "a", namespace: NS } });
    expect(revisionsNeeded(kv(next, "30"), "7")).toEqual({ App: 30n, Task: 20n });
  });
});

describe("quota checks over the informer caches", () => {
  let store: MemoryStore;
  let repo: Repository;
  let namespaces: NamespaceService;
  let apps: Informer<App>;
  let tasks: Informer<Task>;
  let admission: NamespaceAdmission;

  beforeEach(async () => {
    store = new MemoryStore();
    repo = new Repository(store);
    namespaces = new NamespaceService(store, repo);
    apps = new Informer<App>(store, Keys.collection("apps"));
    tasks = new Informer<Task>(store, Keys.collection("tasks"));
    await Promise.all([apps.start(), tasks.start()]);
    admission = new NamespaceAdmission(repo, namespaces, { App: apps, Task: tasks });
    await namespaces.apply(namespace(3), true);
  });
  afterEach(async () => {
    await Promise.all([apps.stop(), tasks.stop()]);
    await store.close();
  });

  it("admits from the caches without listing the namespace in the store, and refuses past the quota", async () => {
    const lists = jest.spyOn(repo, "list");
    const listed = (kind: string) => lists.mock.calls.filter((c) => c[0] === kind).length;
    // The first: the App cache has seen no revision since the Namespace's (no App was written after it).
    await admission.create(app("a"));
    expect(listed("App")).toBe(1);
    await admission.create(app("b"));
    await admission.create(app("c"));
    expect(listed("App")).toBe(1);
    const err = await refusal(admission.create(app("d")));
    expect(err.code).toBe("QuotaExceeded");
    expect(err.message).toMatch(/quota instances exceeded: requested 1, used 3/);
    expect((await repo.list("App", NS)).items).toHaveLength(3);
  });

  it("does not trust a cache that has not seen another replica's quota-checked write: it reads etcd and refuses", async () => {
    await admission.create(app("a"));
    await apps.stop(); // this replica's App cache stops following the store (and still passes for fresh)
    const otherReplica = new NamespaceAdmission(repo, namespaces);
    await otherReplica.create(app("b"));
    await otherReplica.create(app("c"));
    const err = await refusal(admission.create(app("d")));
    expect(err.code).toBe("QuotaExceeded");
    expect((await repo.list("App", NS)).items.map((a) => a.metadata.name)).toEqual(["a", "b", "c"]);
  });

  it("checks a refusal read from a cache again against etcd (a scale-down the cache has not seen yet)", async () => {
    await admission.create(app("a", 3));
    // A cache at the admission key's revision whose copy of "a" is still the larger one.
    const frozen = apps.list();
    const lagging: WorkloadCache<App> = {
      isFresh: true,
      get revision() {
        return apps.revision;
      },
      list: () => frozen,
      waitFor: (key, rev, ms) => apps.waitFor(key, rev, ms),
    };
    const withLagging = new NamespaceAdmission(repo, namespaces, { App: lagging, Task: tasks });
    await admission.apply(app("a", 1)); // a scale-down: no admission key write
    const created = await withLagging.create(app("b", 2));
    expect(created.metadata.name).toBe("b");
  });
});
