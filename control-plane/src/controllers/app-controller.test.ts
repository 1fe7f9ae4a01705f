// The App controller's decision when an App changes: resources only → resize
// in place (same uid, same node, the node's allocation rewritten); anything
// else, or a growth that does not fit on the node, or the Replace policy →
// a new instance. Runs the real controller over the in-memory store.
import { pino } from "pino";
import {
  CONFIG_HASH_LABEL,
  TEMPLATE_HASH_LABEL,
  newInstance,
  templateChange,
  type App,
  type Instance,
  type Node,
} from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys, type TxnOp } from "../store/store";
import { Repository } from "../resources/repository";
import { Informer } from "./informer";
import { resizeFits, resizeStatus } from "../scheduling/resize";
import { AppController } from "./app-controller";

const MiB = 2 ** 20;
const logger = pino({ level: "silent" });

const node = (name: string, memoryBytes: number): Node => ({
  apiVersion: "grove/v1",
  kind: "Node",
  metadata: { name },
  spec: {},
  status: {
    allocatable: { cpuMillis: 2000, memoryBytes, pids: 1000 },
    conditions: [{ type: "Ready", status: "True" }],
  },
});

function app(spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "web", namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["sleep", "1000"],
      instances: 1,
      resources: { cpu: "250m", memory: "64Mi", pids: 32 },
      ...spec,
    },
  };
}

describe("templateChange", () => {
  const a = { ...app(), metadata: { ...app().metadata, uid: "u1" } };
  const inst = newInstance(a, 0, 0, 0);
  it("is none for the same template, resources when only resources changed, other otherwise", () => {
    expect(templateChange(inst, a)).toBe("none");
    expect(templateChange(inst, { ...a, spec: { ...a.spec, resources: { cpu: "500m", memory: "128Mi" } } })).toBe(
      "resources",
    );
    expect(templateChange(inst, { ...a, spec: { ...a.spec, command: ["sleep", "2000"] } })).toBe("other");
    expect(
      templateChange(inst, {
        ...a,
        spec: { ...a.spec, command: ["sleep", "2000"], resources: { memory: "128Mi" } },
      }),
    ).toBe("other");
  });
  it("treats an instance without the config hash (made before resizes existed) as needing a replacement", () => {
    const old = { ...inst, metadata: { ...inst.metadata, labels: { [TEMPLATE_HASH_LABEL]: "0123456789" } } };
    expect(templateChange(old, { ...a, spec: { ...a.spec, resources: { memory: "128Mi" } } })).toBe("other");
  });
  it("does not count the update policy as a template change", () => {
    expect(templateChange(inst, { ...a, spec: { ...a.spec, updatePolicy: { resources: "Replace" } } })).toBe("none");
  });
});

describe("resizeFits", () => {
  const n = node("n1", 256 * MiB);
  const r = (cpuMillis: number, memoryMiB: number, pids = 32) => ({ cpuMillis, memoryBytes: memoryMiB * MiB, pids });
  it("fits a growth into the node's free room and returns the node's allocation afterwards", () => {
    expect(resizeFits(n, r(750, 192), r(250, 64), r(500, 128))).toEqual({ fits: true, allocated: r(1000, 256) });
  });
  it("refuses a growth beyond the node's allocatable, naming the resource", () => {
    expect(resizeFits(n, r(750, 192), r(250, 64), r(500, 160))).toEqual({
      fits: false,
      reason: "memory: insufficient",
    });
  });
  it("always fits a shrink, even on an over-committed node", () => {
    expect(resizeFits(n, r(750, 400), r(250, 200), r(250, 100))).toEqual({ fits: true, allocated: r(750, 300) });
  });
});

describe("resizeStatus", () => {
  const r = (memoryMiB: number) => ({ cpuMillis: 250, memoryBytes: memoryMiB * MiB, pids: 32 });
  it("says Resizing, from the limits the container has, when they differ from the new size", () => {
    expect(resizeStatus({ state: "Running", pid: 7, appliedResources: r(64) }, r(16), r(128))).toEqual({
      state: "Running",
      pid: 7,
      appliedResources: r(64),
      reason: "Resizing",
      message: "resizing in place from cpu 250m, memory 64Mi, pids 32 to cpu 250m, memory 128Mi, pids 32",
    });
  });
  it("clears a refused resize when the App goes back to the size the container has", () => {
    const refused = { state: "Running" as const, reason: "ResizeFailed", message: "EBUSY", appliedResources: r(64) };
    expect(resizeStatus(refused, r(16), r(64))).toEqual({
      state: "Running",
      reason: "Running",
      appliedResources: r(64),
    });
  });
  it("leaves instances that do not run alone", () => {
    const pending = { state: "Pending" as const, reason: "Scheduled" };
    expect(resizeStatus(pending, r(64), r(128))).toBe(pending);
  });
});

describe("AppController: resources changes", () => {
  let store: MemoryStore;
  let repo: Repository;
  let apps: Informer<App>;
  let instances: Informer<Instance>;
  let nodes: Informer<Node>;
  let controller: AppController;

  beforeEach(async () => {
    store = new MemoryStore();
    repo = new Repository(store);
    apps = new Informer<App>(store, Keys.collection("apps"), logger);
    instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
    nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    await Promise.all([apps.start(), instances.start(), nodes.start()]);
    controller = new AppController(repo, apps, instances, nodes, logger);
  });
  afterEach(async () => {
    controller.stop();
    await Promise.all([apps.stop(), instances.stop(), nodes.stop()]);
    await store.close();
  });

  const settle = async () => {
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 5));
      await controller.idle();
    }
  };

  /** Creates the App and node, lets the controller make instance 0, binds it to n1 as Running. */
  async function running(spec: Partial<App["spec"]>, nodeMemory = 256 * MiB): Promise<Instance> {
    await repo.create(node("n1", nodeMemory));
    await repo.create(app(spec));
    await settle();
    const inst = (await repo.list("Instance")).items[0]!;
    const bound = await repo.update({
      ...inst,
      spec: { ...inst.spec, nodeName: "n1" },
      status: { state: "Running", reason: "Running", nodeName: "n1", pid: 4242 },
    });
    await settle();
    return bound;
  }

  async function changeApp(spec: Partial<App["spec"]>): Promise<void> {
    const cur = await repo.get("App", "default", "web");
    await repo.update({ ...cur, spec: { ...cur.spec, ...spec } });
    await settle();
  }

  it("resizes a running instance in place when only resources changed: same uid, node allocation updated", async () => {
    const before = await running({});
    await changeApp({ resources: { cpu: "500m", memory: "128Mi", pids: 64 } });
    const after = await repo.get("Instance", "default", "web-0");
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.spec.nodeName).toBe("n1");
    expect(after.spec.restarts).toBe(0);
    expect(after.spec.resources).toEqual({ cpuMillis: 500, memoryBytes: 128 * MiB, pids: 64 });
    expect(after.metadata.labels?.[CONFIG_HASH_LABEL]).toBe(before.metadata.labels?.[CONFIG_HASH_LABEL]);
    expect(after.metadata.labels?.[TEMPLATE_HASH_LABEL]).not.toBe(before.metadata.labels?.[TEMPLATE_HASH_LABEL]);
    expect(after.status).toMatchObject({ state: "Running", reason: "Resizing", pid: 4242 });
    expect(after.status?.message).toBe(
      "resizing in place from cpu 250m, memory 64Mi, pids 32 to cpu 500m, memory 128Mi, pids 64",
    );
    const n1 = await repo.get("Node", undefined, "n1");
    expect(n1.status?.allocated).toEqual({ cpuMillis: 500, memoryBytes: 128 * MiB, pids: 64 });
    // Nothing more happens on the next sync.
    controller.resyncAll();
    await settle();
    expect((await repo.get("Instance", "default", "web-0")).metadata.resourceVersion).toBe(
      after.metadata.resourceVersion,
    );
  });

  it("replaces the instance when the image or command changed", async () => {
    // Recreate: replaced under the same name at once (Rolling, the default, is rollout.test.ts's).
    const before = await running({ update: { strategy: "Recreate" } });
    await changeApp({ command: ["sleep", "2000"], resources: { cpu: "500m", memory: "128Mi", pids: 64 } });
    const after = await repo.get("Instance", "default", "web-0");
    expect(after.metadata.uid).not.toBe(before.metadata.uid);
    expect(after.spec.nodeName).toBeUndefined();
    expect(after.spec.command).toEqual(["sleep", "2000"]);
    expect(after.status?.state).toBe("Pending");
  });

  it("replaces the instance when the growth does not fit on its node, and says why", async () => {
    const before = await running({}, 100 * MiB);
    await changeApp({ resources: { cpu: "250m", memory: "128Mi", pids: 32 } });
    const after = await repo.get("Instance", "default", "web-0");
    expect(after.metadata.uid).not.toBe(before.metadata.uid);
    expect(after.spec.nodeName).toBeUndefined();
    expect(after.spec.resources.memoryBytes).toBe(128 * MiB);
    expect(after.status?.message).toBe(
      `waiting for the scheduler: replaces ${before.metadata.uid}, not resized in place: ` +
        "cpu 250m, memory 128Mi, pids 32 does not fit on node n1 (memory: insufficient)",
    );
  });

  it("replaces the instance under the Replace policy", async () => {
    const before = await running({ updatePolicy: { resources: "Replace" }, update: { strategy: "Recreate" } });
    await changeApp({ resources: { cpu: "500m", memory: "128Mi", pids: 64 } });
    const after = await repo.get("Instance", "default", "web-0");
    expect(after.metadata.uid).not.toBe(before.metadata.uid);
    expect(after.spec.nodeName).toBeUndefined();
  });

  it("a binding that lands between the fit check and the write makes the resize re-plan (node revision guard)", async () => {
    const before = await running({}, 200 * MiB);
    const db: App = app({ resources: { cpu: "100m", memory: "100Mi", pids: 10 } });
    db.metadata = { name: "db", namespace: "default" };
    await repo.create(db);
    await settle();
    const pendingDb = await repo.get("Instance", "default", "db-0"); // unbound: nothing on n1 yet
    expect(pendingDb.spec.nodeName).toBeUndefined();

    // The scheduler binds db-0 to n1 (instance and node in one transaction) just before the
    // resize's transaction, after its fit check passed on the informers' older view.
    const nodeKey = Keys.object("nodes", undefined, "n1");
    const realTxn = store.txn.bind(store);
    let raced = false;
    store.txn = async (compares, ops) => {
      if (!raced && ops.some((op) => op.type === "put" && op.key === nodeKey)) {
        raced = true;
        const n1 = await repo.get("Node", undefined, "n1");
        const { resourceVersion: _a, ...dbMeta } = pendingDb.metadata;
        const { resourceVersion: _b, ...nodeMeta } = n1.metadata;
        const bindOps: TxnOp<unknown>[] = [
          {
            type: "put",
            key: Keys.object("instances", "default", "db-0"),
            value: { ...pendingDb, metadata: dbMeta, spec: { ...pendingDb.spec, nodeName: "n1" } },
          },
          {
            type: "put",
            key: nodeKey,
            value: {
              ...n1,
              metadata: nodeMeta,
              status: { ...n1.status, allocated: { cpuMillis: 350, memoryBytes: 164 * MiB, pids: 42 } },
            },
          },
        ];
        expect((await realTxn([], bindOps)).succeeded).toBe(true);
      }
      return realTxn(compares, ops);
    };

    await changeApp({ resources: { cpu: "250m", memory: "128Mi", pids: 32 } });
    expect(raced).toBe(true);
    // The failed write is retried after the work queue's backoff (200 ms).
    let after = await repo.get("Instance", "default", "web-0");
    for (let i = 0; i < 100 && after.metadata.uid === before.metadata.uid; i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await repo.get("Instance", "default", "web-0");
    }
    // 100 MiB (db) + 128 MiB > 200 MiB: the guarded write failed, the retry saw db-0 and replaced.
    expect(after.metadata.uid).not.toBe(before.metadata.uid);
    expect(after.status?.message).toContain("does not fit on node n1 (memory: insufficient)");
    const n1 = await repo.get("Node", undefined, "n1");
    expect(n1.status?.allocated?.memoryBytes).toBeLessThanOrEqual(200 * MiB);
  });

  it("counts the node's other instances: a growth that fits the node alone but not beside them replaces", async () => {
    const before = await running({}, 200 * MiB);
    const db: App = { ...app({ resources: { cpu: "100m", memory: "100Mi", pids: 10 } }) };
    db.metadata = { name: "db", namespace: "default" };
    await repo.create(db);
    await settle();
    const dbInst = await repo.get("Instance", "default", "db-0");
    await repo.update({ ...dbInst, spec: { ...dbInst.spec, nodeName: "n1" }, status: { state: "Running" } });
    await settle();
    await changeApp({ resources: { cpu: "250m", memory: "128Mi", pids: 32 } });
    const after = await repo.get("Instance", "default", "web-0");
    // 100 MiB (db) + 128 MiB > 200 MiB: replaced, not resized.
    expect(after.metadata.uid).not.toBe(before.metadata.uid);
    expect(after.spec.nodeName).toBeUndefined();
    expect(after.status?.message).toContain("memory: insufficient");
  });
});
