import type { App, Instance, Node } from "@grove/api";
import { Informer } from "../controllers/informer";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { EventWatcher } from "./event-watcher";
import type { EventInput } from "./recorder";

const KEY = Keys.object("instances", "default", "web-0");

function instance(uid: string, patch: Partial<Instance["spec"]> = {}, status?: Instance["status"]): Instance {
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: { name: "web-0", namespace: "default", uid },
    spec: {
      app: "web",
      appUid: "app-uid",
      index: 0,
      rootfs: "busybox",
      command: ["/bin/sh"],
      // GREETING: a value that is also part of the instance's name, which must stay whole.
      env: { TOKEN: "s3cret-value", GREETING: "web" },
      resources: { cpuMillis: 100, memoryBytes: 1 << 26, pids: 32 },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 1,
      restarts: 0,
      ...patch,
    },
    ...(status ? { status } : {}),
  };
}

describe("EventWatcher", () => {
  let store: MemoryStore;
  let informers: [Informer<App>, Informer<Instance>, Informer<Node>];
  let recorded: EventInput[];
  let rev: string;
  let watcher: EventWatcher;

  beforeEach(async () => {
    store = new MemoryStore();
    recorded = [];
    informers = [
      new Informer<App>(store, Keys.collection("apps")),
      new Informer<Instance>(store, Keys.collection("instances")),
      new Informer<Node>(store, Keys.collection("nodes")),
    ];
    watcher = new EventWatcher({ recordEvent: (e) => recorded.push(e) }, ...informers);
    await Promise.all(informers.map((i) => i.start()));
    watcher.setActive(true);
    rev = await store.create(KEY, instance("u1"));
  });
  afterEach(async () => {
    await Promise.all(informers.map((i) => i.stop()));
    await store.close();
  });

  const put = async (inst: Instance) => {
    rev = await store.update(KEY, inst, rev);
    await informers[1].waitFor("default/web-0", rev);
  };
  const reasons = () => recorded.map((e) => e.reason);

  it("records scheduled, started, a failed check and a restart with its exit code, never an env value", async () => {
    await put(instance("u1", { nodeName: "n1" }));
    await put(instance("u1", { nodeName: "n1" }, { state: "Running", pid: 42 }));
    const check = { check: "readiness", kind: "exec", ok: false, message: "exit 1: s3cret-value", time: "t1" };
    await put(instance("u1", { nodeName: "n1" }, { state: "Running", pid: 42, lastCheck: check }));
    // The same result reported again is no new failure.
    await put(instance("u1", { nodeName: "n1" }, { state: "Running", pid: 42, ready: false, lastCheck: check }));
    const failed = { state: "Failed" as const, exitCode: 3, reason: "Failed" };
    await put(instance("u1", { nodeName: "n1" }, failed));
    await put(instance("u2", { restarts: 1 })); // the App controller's restart: same name, new uid
    expect(reasons()).toEqual(["Scheduled", "Started", "ReadinessCheckFailed", "Restarted"]);
    expect(recorded[0]).toMatchObject({ involvedObject: { kind: "App", name: "web", instance: "web-0" } });
    expect(recorded[0]!.message).toContain("n1");
    expect(recorded[1]!.source).toEqual({ component: "grove-agent", node: "n1" });
    expect(recorded[3]).toMatchObject({ type: "Warning", message: expect.stringMatching(/exit code 3/) });
    expect(JSON.stringify(recorded)).not.toContain("s3cret-value");
    expect(recorded[2]!.message).toContain("[redacted]");
    // Only the agent's text is redacted: the names the control plane writes stay whole.
    expect(recorded[1]!.message).toMatch(/^web-0 started on node n1/);
  });

  it("records an OOM kill and a stop by the control plane, and nothing while not the leader", async () => {
    await put(instance("u1", { nodeName: "n1" }, { state: "Running" }));
    await put(instance("u1", { nodeName: "n1" }, { state: "OOMKilled", reason: "OOMKilled" }));
    expect(reasons()).toEqual(["Scheduled", "Started", "OOMKilled"]);
    recorded = [];
    rev = await store.update(KEY, instance("u3", { nodeName: "n1" }, { state: "Running" }), rev);
    await informers[1].waitFor("default/web-0", rev);
    await put(instance("u3", { nodeName: "n1" }, { state: "Exited", reason: "RolledOut" }));
    expect(reasons()).toEqual(["Scheduled", "Started", "Stopped"]);
    watcher.setActive(false);
    await put(instance("u4", { nodeName: "n1", restarts: 1 }, { state: "Running" }));
    expect(reasons()).toEqual(["Scheduled", "Started", "Stopped"]);
  });

  it("records rollouts, rollbacks and lost nodes from App and Node conditions", async () => {
    const appKey = Keys.object("apps", "default", "web");
    const app = (reason?: string, message?: string): App => ({
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "web", namespace: "default", uid: "app-uid" },
      spec: { rootfs: "busybox", command: ["/bin/sh"], instances: 1 },
      ...(reason
        ? { status: { revision: "abc", conditions: [{ type: "Progressing", status: "True", reason, message }] } }
        : {}),
    });
    let appRev = await store.create(appKey, app("Updating"));
    for (const [reason, message] of [
      ["Complete", "3 of 3 instances updated"],
      ["Updating", "1 of 3 instances updated"],
      ["RolledBack", "readiness failed on web-0-abcde"],
      ["ProgressDeadlineExceeded", "no progress in 600s"],
    ] as const) {
      appRev = await store.update(appKey, app(reason, message), appRev);
      await informers[0].waitFor("default/web", appRev);
    }
    const nodeKey = Keys.object("nodes", undefined, "n1");
    const node = (status: "True" | "Unknown"): Node => ({
      apiVersion: "grove/v1",
      kind: "Node",
      metadata: { name: "n1", uid: "node-uid" },
      spec: {},
      status: {
        conditions: [{ type: "Ready", status, reason: status === "True" ? "AgentReady" : "AgentNotHeartbeating" }],
      },
    });
    let nodeRev = await store.create(nodeKey, node("True"));
    for (const st of ["Unknown", "True"] as const) {
      nodeRev = await store.update(nodeKey, node(st), nodeRev);
      await informers[2].waitFor("n1", nodeRev);
    }
    expect(recorded.map((e) => `${e.type} ${e.reason} ${e.involvedObject.kind}/${e.involvedObject.name}`)).toEqual([
      "Normal RolledOut App/web",
      "Warning RolledBack App/web",
      "Warning ProgressDeadlineExceeded App/web",
      "Warning NodeLost Node/n1",
      "Normal NodeReady Node/n1",
    ]);
    expect(recorded[0]!.message).toBe("rolled out revision abc: 3 of 3 instances updated");
    expect(recorded[1]!.message).toBe("readiness failed on web-0-abcde");
    expect(recorded[3]!.message).toMatch(/AgentNotHeartbeating/);
  });
});
