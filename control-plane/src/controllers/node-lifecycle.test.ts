// Node lifecycle and what follows a lost node, on the in-memory store: the
// leader's presence fallback (monotonic, injected clock), suspect instances
// fenced by the node's revision, and the App controller's replacement before
// removal (replacement placed at once or after spec.disconnect.replaceAfter;
// on return the original is superseded when its replacement runs, or resumes
// and the replacement is cancelled; exits while away are kept).
import { pino } from "pino";
import {
  REPLACES_LABEL,
  nextCrashLoops,
  readyStatus,
  restartBackoffMs,
  type App,
  type Instance,
  type Node,
} from "@grove/api";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { Repository } from "../resources/repository";
import { Informer } from "./informer";
import { AppController } from "./app-controller";
import { NodeLifecycleController, markNodeUnknown } from "./node-lifecycle";

const logger = pino({ level: "silent" });

function node(name: string, ready: "True" | "False" | "Unknown" = "True"): Node {
  return {
    apiVersion: "grove/v1",
    kind: "Node",
    metadata: { name },
    spec: {},
    status: {
      allocatable: { cpuMillis: 4000, memoryBytes: 2 ** 30, pids: 1000 },
      conditions: [{ type: "Ready", status: ready, reason: ready === "True" ? "AgentConnected" : "Test" }],
    },
  };
}

function app(instances: number, disconnect?: App["spec"]["disconnect"]): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "web", namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["sleep", "1000"],
      instances,
      resources: { cpu: "100m", memory: "16Mi", pids: 16 },
      ...(disconnect ? { disconnect } : {}),
    },
  };
}

let store: MemoryStore;
let repo: Repository;
let apps: Informer<App>;
let instances: Informer<Instance>;
let nodes: Informer<Node>;
let now = 0;
const clock = () => now;

beforeEach(async () => {
  now = 1_000_000;
  store = new MemoryStore();
  repo = new Repository(store);
  apps = new Informer<App>(store, Keys.collection("apps"), logger);
  instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
  nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
  await Promise.all([apps.start(), instances.start(), nodes.start()]);
});
afterEach(async () => {
  await Promise.all([apps.stop(), instances.stop(), nodes.stop()]);
  await store.close();
});

const tick = () => new Promise((r) => setTimeout(r, 5));

async function presence(name: string): Promise<string> {
  const r = await store.txn([], [{ type: "put", key: Keys.heartbeat(name), value: { time: "x", server: "s1" } }]);
  return r.revision;
}

async function setReady(name: string, status: "True" | "False" | "Unknown"): Promise<void> {
  const n = await repo.get("Node", undefined, name);
  await repo.updateStatus("Node", n, (x) => {
    (x as Node).status!.conditions = [{ type: "Ready", status, reason: "Test" }];
  });
}

async function bind(name: string, nodeName: string, state: "Running" | "Pending" | "Exited" = "Running") {
  const inst = await repo.get("Instance", "default", name);
  return repo.update({
    ...inst,
    spec: { ...inst.spec, nodeName },
    status: { state, reason: state, nodeName, ...(state === "Exited" ? { exitCode: 3 } : {}) },
  });
}

describe("NodeLifecycleController", () => {
  let lc: NodeLifecycleController;
  beforeEach(() => {
    lc = new NodeLifecycleController(store, nodes, instances, logger, { presenceStaleMs: 15_000, clock });
  });
  afterEach(() => lc.stop());

  it("marks a Ready node Unknown when its presence key has not changed for the stale time, by its own clock", async () => {
    await repo.create(node("n1"));
    await repo.create(node("n2"));
    await presence("n1");
    await presence("n2");
    await tick();
    await lc.checkPresence(); // first sight: the clock starts now, whatever the keys' wall times say
    for (let s = 1; s <= 16; s++) {
      now += 1_000;
      if (s % 5 === 0) await presence("n2"); // n2's replica refreshes; n1's does not
      await lc.checkPresence();
      if (s === 15) expect(readyStatus(await repo.get("Node", undefined, "n1"))).toBe("True");
    }
    expect(readyStatus(await repo.get("Node", undefined, "n1"))).toBe("Unknown");
    expect(readyStatus(await repo.get("Node", undefined, "n2"))).toBe("True");
    const n1 = await repo.get("Node", undefined, "n1");
    expect(n1.status?.conditions?.[0]).toMatchObject({ reason: "NodePresenceLost" });
    expect(await store.get(Keys.heartbeat("n1"))).toBeUndefined();
  });

  it("does not count time it could not look (paused, or the store down) as time the key stood still", async () => {
    await repo.create(node("n1"));
    await presence("n1");
    await tick();
    await lc.checkPresence();
    now += 1_000;
    await lc.checkPresence();
    now += 60_000; // this process was stopped for a minute
    await lc.checkPresence();
    expect(readyStatus(await repo.get("Node", undefined, "n1"))).toBe("True");
    now += 1_000;
    await lc.checkPresence();
    expect(readyStatus(await repo.get("Node", undefined, "n1"))).toBe("True");
  });

  it("marks the instances of a deleted node Unknown", async () => {
    await repo.create(node("n1"));
    const c = new AppController(repo, apps, instances, nodes, logger);
    await repo.create(app(1));
    await new Promise((r) => setTimeout(r, 20));
    await c.idle();
    c.stop();
    await bind("web-0", "n1");
    await repo.delete("Node", undefined, "n1");
    await tick();
    await lc.sync("n1");
    const w0 = await repo.get("Instance", "default", "web-0");
    expect(w0.status).toMatchObject({ state: "Unknown", message: "node n1 was deleted; the instance was Running" });
  });

  it("does not mark a node whose presence moved (re-registered elsewhere) since it was judged", async () => {
    await repo.create(node("n1"));
    const rev = await presence("n1");
    await presence("n1"); // another replica took the stream
    expect(await markNodeUnknown(store, { node: "n1", modRevision: rev }, "AgentDisconnected", "gone")).toBe(false);
    expect(readyStatus(await repo.get("Node", undefined, "n1"))).toBe("True");
  });

  it("marks the unfinished instances of a node that is not Ready Unknown, and leaves others alone", async () => {
    await repo.create(node("n1"));
    await repo.create(node("n2"));
    const c = new AppController(repo, apps, instances, nodes, logger, { now: () => Date.now(), monotonic: clock });
    await repo.create(app(3));
    await new Promise((r) => setTimeout(r, 20));
    await c.idle();
    c.stop(); // only the lifecycle controller acts below
    await bind("web-0", "n1");
    await bind("web-1", "n1", "Exited");
    await bind("web-2", "n2");
    await setReady("n1", "Unknown");
    await tick();
    await lc.sync("n1");
    await lc.sync("n2");
    const w0 = await repo.get("Instance", "default", "web-0");
    expect(w0.status).toMatchObject({ state: "Unknown", reason: "NodeNotReady" });
    expect(w0.status?.message).toContain("the instance was Running");
    expect((await repo.get("Instance", "default", "web-1")).status?.state).toBe("Exited");
    expect((await repo.get("Instance", "default", "web-2")).status?.state).toBe("Running");
  });

  it("writes nothing when the node came back between its judgement and the write (node revision fence)", async () => {
    lc.stop(); // only the explicit sync below acts
    await repo.create(node("n1", "Unknown"));
    const c = new AppController(repo, apps, instances, nodes, logger);
    await repo.create(app(1));
    await new Promise((r) => setTimeout(r, 20));
    await c.idle();
    c.stop();
    await bind("web-0", "n1");
    await tick();
    // The agent re-registers: Ready is written, but our informer has not seen it yet.
    const realGet = nodes.get.bind(nodes);
    const stale = realGet("n1")!;
    await setReady("n1", "True");
    nodes.get = (k: string) => (k === "n1" ? stale : realGet(k));
    await expect(lc.sync("n1")).rejects.toThrow("changed while marking them Unknown");
    expect((await repo.get("Instance", "default", "web-0")).status?.state).toBe("Running");
  });
});

describe("App controller: replacement before removal", () => {
  let lc: NodeLifecycleController;
  let c: AppController;
  const settle = async () => {
    for (let i = 0; i < 20; i++) {
      await tick();
      await c.idle();
      await lc.idle();
    }
  };
  const list = async () =>
    (await repo.list("Instance")).items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));

  beforeEach(async () => {
    lc = new NodeLifecycleController(store, nodes, instances, logger, { clock });
    c = new AppController(repo, apps, instances, nodes, logger, { now: () => Date.now(), monotonic: clock });
    lc.start();
    await repo.create(node("n1"));
    await repo.create(node("n2"));
  });
  afterEach(() => {
    c.stop();
    lc.stop();
  });

  /** web with `n` instances, all bound to n1 and Running. */
  async function runningOnN1(n: number, disconnect?: App["spec"]["disconnect"]) {
    await repo.create(app(n, disconnect));
    await settle();
    for (let i = 0; i < n; i++) await bind(`web-${i}`, "n1");
    await settle();
  }

  /** The agent of n1 re-registers and reports its instances as `state`. */
  async function n1Returns(state: "Running" | "Exited") {
    await setReady("n1", "True");
    for (const inst of (await repo.list("Instance")).items) {
      if (inst.spec.nodeName !== "n1" || inst.status?.state !== "Unknown") continue;
      await repo.updateStatus("Instance", inst, (i) => {
        (i as Instance).status = {
          ...(i as Instance).status!,
          state,
          reason: state,
          ...(state === "Exited" ? { exitCode: 7 } : {}),
        };
      });
    }
    await settle();
  }

  it("places a replacement for each Unknown instance at once, keeping the original recorded", async () => {
    await runningOnN1(2);
    expect((await repo.get("App", "default", "web")).status).toMatchObject({ instances: 2, running: 2 });
    await setReady("n1", "Unknown");
    await settle();
    const all = await list();
    expect(all.map((i) => i.status?.state)).toEqual(["Unknown", "Pending", "Unknown", "Pending"]);
    const [w0, r0, w1, r1] = all as [Instance, Instance, Instance, Instance];
    expect(r0.metadata.name).toMatch(/^web-0-[0-9a-f]{5}$/);
    expect(r0.spec.index).toBe(0);
    expect(r0.metadata.labels?.[REPLACES_LABEL]).toBe(w0.metadata.uid);
    expect(r1.metadata.labels?.[REPLACES_LABEL]).toBe(w1.metadata.uid);
    expect(r0.spec.nodeName).toBeUndefined();
    // Nothing more: one replacement per original.
    c.resyncAll();
    await settle();
    expect(await list()).toHaveLength(4);
    expect((await repo.get("App", "default", "web")).status).toMatchObject({ instances: 2, running: 0, unknown: 2 });
  });

  it("waits spec.disconnect.replaceAfter (monotonic) before placing a replacement", async () => {
    await runningOnN1(1, { replaceAfter: "30s" });
    await setReady("n1", "Unknown");
    await settle();
    expect(await list()).toHaveLength(1);
    now += 29_000;
    c.resyncAll();
    await settle();
    expect(await list()).toHaveLength(1);
    now += 2_000;
    c.resyncAll();
    await settle();
    expect(await list()).toHaveLength(2);
  });

  it("on return stops an original whose replacement runs (Superseded), and counts one per index", async () => {
    await runningOnN1(1);
    await setReady("n1", "Unknown");
    await settle();
    const r = (await list())[1]!;
    await bind(r.metadata.name, "n2");
    await settle();
    expect((await repo.get("App", "default", "web")).status).toMatchObject({ instances: 1, running: 1 });
    await n1Returns("Running");
    const [orig, repl] = (await list()) as [Instance, Instance];
    expect(orig.status).toMatchObject({ state: "Exited", reason: "Superseded" });
    expect(orig.status?.message).toContain(repl.metadata.name);
    expect(repl.status?.state).toBe("Running");
    expect((await repo.get("App", "default", "web")).status).toMatchObject({ instances: 1, running: 1 });
    expect((await repo.get("App", "default", "web")).status?.unknown).toBeUndefined();
    // The superseded original is not restarted and stays listed for a while.
    c.resyncAll();
    await settle();
    expect(await list()).toHaveLength(2);
  });

  it("on return cancels a replacement that is not running yet; the original resumes", async () => {
    await runningOnN1(1);
    await setReady("n1", "Unknown");
    await settle();
    expect(await list()).toHaveLength(2);
    await n1Returns("Running");
    const all = await list();
    expect(all).toHaveLength(1);
    expect(all[0]!.metadata.name).toBe("web-0");
    expect(all[0]!.status?.state).toBe("Running");
  });

  it("keeps the exit of an original that ended while away, and does not restart it (its replacement does)", async () => {
    await runningOnN1(1);
    await setReady("n1", "Unknown");
    await settle();
    const r = (await list())[1]!;
    await bind(r.metadata.name, "n2");
    await n1Returns("Exited");
    const [orig, repl] = (await list()) as [Instance, Instance];
    expect(orig.status).toMatchObject({ state: "Exited", exitCode: 7 });
    expect(orig.metadata.name).toBe("web-0");
    expect(repl.status?.state).toBe("Running");
    expect(repl.spec.restarts).toBe(0);
  });

  it("restarts in place an original that ended while away when its replacement never ran (the replacement is cancelled)", async () => {
    await runningOnN1(1);
    await setReady("n1", "Unknown");
    await settle();
    expect(await list()).toHaveLength(2); // the replacement waits, unplaced
    const before = await repo.get("Instance", "default", "web-0");
    await n1Returns("Exited");
    expect((await list()).map((i) => i.metadata.uid)).toEqual([before.metadata.uid]); // replacement cancelled
    now += 2_000; // the crash-loop backoff (1 s), on the controller's clock
    c.resyncAll();
    await settle();
    const all = await list();
    expect(all).toHaveLength(1);
    expect(all[0]!.metadata.name).toBe("web-0");
    expect(all[0]!.metadata.uid).not.toBe(before.metadata.uid);
    expect(all[0]!.spec.restarts).toBe(before.spec.restarts + 1);
  });

  it("deletes retired originals after their retention", async () => {
    c.stop();
    c = new AppController(
      repo,
      apps,
      instances,
      nodes,
      logger,
      { now: () => Date.now(), monotonic: clock },
      {
        retiredRetentionMs: 60_000,
      },
    );
    await runningOnN1(1);
    await setReady("n1", "Unknown");
    await settle();
    await bind((await list())[1]!.metadata.name, "n2");
    await n1Returns("Running");
    expect(await list()).toHaveLength(2);
    now += 61_000;
    c.resyncAll();
    await settle();
    const left = await list();
    expect(left).toHaveLength(1);
    expect(left[0]!.metadata.name).toMatch(/^web-0-/);
  });
});

describe("App controller: drain", () => {
  let c: AppController;
  const settle = async () => {
    for (let i = 0; i < 20; i++) {
      await tick();
      await c.idle();
    }
  };
  const list = async () =>
    (await repo.list("Instance")).items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  beforeEach(async () => {
    c = new AppController(repo, apps, instances, nodes, logger, { now: () => Date.now(), monotonic: clock });
    await repo.create(node("n1"));
    await repo.create(node("n2"));
  });
  afterEach(() => c.stop());

  async function drain(timeout?: string) {
    const n = await repo.get("Node", undefined, "n1");
    await repo.update({ ...n, spec: { unschedulable: true, drain: timeout ? { timeout } : {} } });
    await settle();
  }

  it("moves instances make before break, at most maxUnavailable at a time", async () => {
    const a = app(3);
    a.spec.maxUnavailable = 2;
    await repo.create(a);
    await settle();
    for (let i = 0; i < 3; i++) await bind(`web-${i}`, "n1");
    await settle();
    await drain();
    let all = await list();
    // Two replacements (the budget), the originals all still Running.
    const repl = all.filter((i) => i.metadata.labels?.[REPLACES_LABEL]);
    expect(repl).toHaveLength(2);
    expect(all.filter((i) => i.spec.nodeName === "n1").every((i) => i.status?.state === "Running")).toBe(true);
    // One replacement runs: its original stops (Drained), and the third move starts.
    await bind(repl[0]!.metadata.name, "n2");
    await settle();
    all = await list();
    const orig = all.find((i) => i.metadata.uid === repl[0]!.metadata.labels?.[REPLACES_LABEL])!;
    expect(orig.status).toMatchObject({ state: "Exited", reason: "Drained" });
    expect(orig.status?.message).toContain(`${repl[0]!.metadata.name} (`);
    expect(all.filter((i) => i.metadata.labels?.[REPLACES_LABEL])).toHaveLength(3);
    expect(all.filter((i) => i.spec.nodeName === "n1" && i.status?.state === "Running")).toHaveLength(2);
  });

  it("stops an instance whose replacement did not run within the drain's timeout", async () => {
    await repo.create(app(1));
    await settle();
    await bind("web-0", "n1");
    await settle();
    await drain("30s");
    expect(await list()).toHaveLength(2);
    now += 29_000;
    c.resyncAll();
    await settle();
    expect((await repo.get("Instance", "default", "web-0")).status?.state).toBe("Running");
    now += 2_000;
    c.resyncAll();
    await settle();
    expect((await repo.get("Instance", "default", "web-0")).status).toMatchObject({
      state: "Exited",
      reason: "DrainTimeout",
    });
  });

  it("uncordon ends the drain: a move whose replacement does not run yet is cancelled", async () => {
    await repo.create(app(1));
    await settle();
    await bind("web-0", "n1");
    await settle();
    await drain();
    expect(await list()).toHaveLength(2);
    const n = await repo.get("Node", undefined, "n1");
    await repo.update({ ...n, spec: {} });
    await settle();
    const all = await list();
    expect(all.map((i) => [i.metadata.name, i.status?.state])).toEqual([["web-0", "Running"]]);
  });
});

describe("crash-loop backoff", () => {
  const inst = (crashLoops: number, ranMs: number): Instance =>
    ({
      spec: { restarts: 9, crashLoops },
      status: {
        state: "Exited",
        startedAt: new Date(0).toISOString(),
        finishedAt: new Date(ranMs).toISOString(),
      },
    }) as Instance;
  it("grows with consecutive short runs and resets after a run of 10 minutes", () => {
    expect(restartBackoffMs(inst(0, 0))).toBe(1000);
    expect(restartBackoffMs(inst(3, 0))).toBe(8000);
    expect(restartBackoffMs(inst(9, 0))).toBe(60_000);
    expect(nextCrashLoops(inst(6, 5_000))).toBe(7);
    expect(nextCrashLoops(inst(6, 10 * 60_000))).toBe(0);
  });
});
