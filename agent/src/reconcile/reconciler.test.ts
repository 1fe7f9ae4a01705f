import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { InstanceSpec__Output, InstanceStatus } from "@grove/proto";
import type {
  CgroupMode,
  ContainerExit,
  ContainerHandle,
  ContainerResources,
  ContainerRuntime,
  ContainerSpec,
  RecoveredContainer,
} from "../runtime/types";
import type { PullProgress } from "../images/types";
import { isPlainName, Reconciler } from "./reconciler";
import { UsernsPool } from "./userns-pool";

// A small in-memory runtime, local to this test: it records every call,
// lets a test end a container the way the kernel would (exit code, signal,
// OOM), make start/stop fail, hold a start open, and it fails loudly when
// the reconciler overlaps two operations on the same container.
class TestRuntime implements ContainerRuntime {
  readonly cgroupMode: CgroupMode = "v2";
  readonly calls: string[] = [];
  readonly started: ContainerSpec[] = [];
  readonly startErrors = new Map<string, Error>();
  stopFailures = 0;
  staleIds: string[] = [];
  overlap: string | undefined;
  private nextPid = 1000;
  private readonly containers = new Map<
    string,
    { handle: ContainerHandle; exit?: ContainerExit; resolve: (e: ContainerExit) => void }
  >();
  private readonly busy = new Set<string>();
  private readonly startGates = new Map<string, Promise<void>>();

  /** The next start of `id` waits until the returned function is called. */
  holdStart(id: string): () => void {
    let release!: () => void;
    this.startGates.set(id, new Promise<void>((r) => (release = r)));
    return release;
  }

  async start(spec: ContainerSpec): Promise<ContainerHandle> {
    return this.exclusive(spec.id, `start ${spec.id}`, async () => {
      await this.startGates.get(spec.id);
      const failure = this.startErrors.get(spec.id);
      if (failure) throw failure;
      if (this.containers.has(spec.id)) throw new Error(`container ${spec.id} exists`);
      this.started.push(spec);
      let resolve!: (e: ContainerExit) => void;
      const exited = new Promise<ContainerExit>((r) => (resolve = r));
      const handle: ContainerHandle = {
        id: spec.id,
        pid: this.nextPid++,
        startedAt: new Date(1_700_000_000_000),
        exited,
      };
      this.containers.set(spec.id, { handle, resolve });
      return handle;
    });
  }

  /** Ends a running container as the kernel would. */
  exit(id: string, how: Partial<Omit<ContainerExit, "finishedAt">>): ContainerExit {
    const c = this.containers.get(id);
    if (!c || c.exit) throw new Error(`container ${id} is not running`);
    c.exit = {
      exitCode: how.exitCode ?? 0,
      signal: how.signal ?? 0,
      oomKilled: how.oomKilled ?? false,
      finishedAt: new Date(1_700_000_100_000),
    };
    c.resolve(c.exit);
    return c.exit;
  }

  async kill(): Promise<void> {}

  async stop(id: string, graceSeconds: number): Promise<ContainerExit> {
    return this.exclusive(id, `stop ${id} ${graceSeconds}`, async () => {
      if (this.stopFailures > 0) {
        this.stopFailures--;
        throw new Error("EBUSY: cgroup.kill");
      }
      const c = this.containers.get(id);
      if (!c) throw new Error(`no container ${id}`);
      return c.exit ?? this.exit(id, { exitCode: 143, signal: 15 });
    });
  }

  async remove(id: string): Promise<void> {
    return this.exclusive(id, `remove ${id}`, async () => {
      const c = this.containers.get(id);
      if (c && !c.exit) throw new Error(`container ${id} is running`);
      this.containers.delete(id);
    });
  }

  list(): ContainerHandle[] {
    return [...this.containers.values()].map((c) => c.handle);
  }

  async cleanupStale(): Promise<string[]> {
    this.calls.push("cleanupStale");
    return this.staleIds;
  }

  running(): string[] {
    return [...this.containers.entries()].filter(([, c]) => !c.exit).map(([id]) => id);
  }

  readonly updates: Array<{ id: string; resources: ContainerResources }> = [];
  /** The next update() calls throw these, in order. */
  readonly updateErrors: Error[] = [];
  /** Containers "a previous agent run" left running, handed out by recover(). */
  recoverable: Array<{
    id: string;
    annotations: Record<string, string>;
    resources?: ContainerResources;
    recordsLost?: boolean;
  }> = [];

  async update(id: string, resources: ContainerResources): Promise<void> {
    return this.exclusive(id, `update ${id}`, async () => {
      const c = this.containers.get(id);
      if (!c || c.exit) throw new Error(`container ${id} is not running`);
      const failure = this.updateErrors.shift();
      if (failure) throw failure;
      this.updates.push({ id, resources: { ...resources } });
    });
  }

  async recover(): Promise<RecoveredContainer[]> {
    return this.recoverable.map(({ id, annotations, resources, recordsLost }) => {
      let resolve!: (e: ContainerExit) => void;
      const exited = new Promise<ContainerExit>((r) => (resolve = r));
      const handle: ContainerHandle = { id, pid: this.nextPid++, startedAt: new Date(1_600_000_000_000), exited };
      this.containers.set(id, { handle, resolve });
      return { handle, annotations, ...(resources ? { resources } : {}), ...(recordsLost ? { recordsLost } : {}) };
    });
  }

  /** What recordSpec() was given (adoption of a container whose records were lost). */
  readonly recorded: ContainerSpec[] = [];
  async recordSpec(spec: ContainerSpec): Promise<void> {
    this.recorded.push(spec);
  }

  private async exclusive<T>(id: string, call: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy.has(id)) this.overlap ??= `${call} while another operation on ${id} was running`;
    this.busy.add(id);
    this.calls.push(call);
    try {
      await new Promise((r) => setImmediate(r));
      return await fn();
    } finally {
      this.busy.delete(id);
    }
  }
}

function spec(uid: string, overrides: Partial<InstanceSpec__Output> = {}): InstanceSpec__Output {
  return {
    uid,
    namespace: "default",
    name: `web-${uid}`,
    app: "web",
    rootfs: "busybox",
    command: ["/bin/sh", "-c", "sleep 1000"],
    env: { PORT: "8080" },
    workingDir: "/srv",
    resources: { cpuMillis: "250", memoryBytes: "67108864", pids: "64" },
    hostname: "",
    stopGraceSeconds: 7,
    ports: [],
    egress: [],
    image: "",
    imagePullSecret: "",
    entrypoint: [],
    security: null,
    stopAfterMs: "0",
    ...overrides,
  };
}

function desired(...specs: InstanceSpec__Output[]) {
  return { instances: specs, revision: "1", clusterId: "" };
}

describe("Reconciler", () => {
  let runtime: TestRuntime;
  let reports: InstanceStatus[];
  let stateDir: string;
  let reconciler: Reconciler;

  beforeEach(async () => {
    runtime = new TestRuntime();
    reports = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-"));
    reconciler = new Reconciler({
      runtime,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      onStatus: (s) => reports.push(s),
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
    });
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
    expect(runtime.overlap).toBeUndefined();
  });

  /** Lets exit callbacks run, then waits for the queue to drain. */
  async function settle(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await reconciler.idle();
  }

  const statesOf = (uid: string) => reports.filter((r) => r.uid === uid).map((r) => r.state);

  it("cleans up stale containers and creates the log directory on start", async () => {
    runtime.staleIds = ["old-1"];
    await reconciler.start();
    expect(runtime.calls).toEqual(["cleanupStale"]);
    expect(fs.statSync(path.join(stateDir, "logs")).isDirectory()).toBe(true);
    expect(reconciler.statuses()).toEqual([]);
  });

  it("starts a desired instance with the spec's settings and reports STARTING then RUNNING", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();

    expect(runtime.started).toEqual([
      {
        id: "u1",
        rootfs: "/var/lib/grove/rootfs/busybox",
        command: ["/bin/sh", "-c", "sleep 1000"],
        env: { PORT: "8080" },
        workingDir: "/srv",
        hostname: "web-u1",
        resources: { cpuMillis: 250, memoryBytes: 67108864, pids: 64 },
        logPath: path.join(stateDir, "logs", "u1.log"),
        // Read back after an agent restart (adoption).
        annotations: { "grove.instance": expect.stringContaining('"uid":"u1"') },
      },
    ]);
    expect(statesOf("u1")).toEqual(["STARTING", "RUNNING"]);
    expect(reports[1]).toMatchObject({
      uid: "u1",
      namespace: "default",
      name: "web-u1",
      pid: 1000,
      startedAtMs: 1_700_000_000_000,
    });
    expect(reconciler.statuses()).toEqual([reports[1]]);
  });

  it("uses the spec's hostname when the control plane sets one", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1", { hostname: "api-0", workingDir: "" })));
    await settle();
    expect(runtime.started[0]?.hostname).toBe("api-0");
    expect(runtime.started[0]).not.toHaveProperty("workingDir");
  });

  it("acts on a desired set received before start()", async () => {
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    expect(runtime.started).toHaveLength(0);
    await reconciler.start();
    await settle();
    expect(runtime.running()).toEqual(["u1"]);
  });

  it("stops with the grace period, then removes, an instance that leaves the desired set", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1"), spec("u2")));
    await settle();
    reconciler.setDesired(desired(spec("u2")));
    await settle();

    expect(runtime.calls.filter((c) => c.split(" ")[1] === "u1")).toEqual(["start u1", "stop u1 7", "remove u1"]);
    expect(runtime.running()).toEqual(["u2"]);
    expect(runtime.list().map((h) => h.id)).toEqual(["u2"]);
    expect(reports.filter((r) => r.uid === "u1").at(-1)).toMatchObject({
      state: "EXITED",
      reason: "Stopped",
      exitCode: 143,
      signal: 15,
    });
    expect(reconciler.statuses().map((s) => s.uid)).toEqual(["u2"]);
  });

  it("deletes the logs of an instance that leaves the desired set, keeps those still desired", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1"), spec("u2")));
    await settle();
    const logs = path.join(stateDir, "logs");
    for (const f of ["u1.log", "u1.log.1", "u2.log"]) fs.writeFileSync(path.join(logs, f), "line\n");
    reconciler.setDesired(desired(spec("u2")));
    await settle();
    expect(fs.readdirSync(logs).sort()).toEqual(["u2.log"]);
  });

  it("on the first desired set after start, deletes logs of instances removed while the agent was down", async () => {
    const logs = path.join(stateDir, "logs");
    fs.mkdirSync(logs, { recursive: true });
    for (const f of ["gone.log", "gone.log.1", "u1.log", "u1.log.1", "notes.txt"]) {
      fs.writeFileSync(path.join(logs, f), "line\n");
    }
    await reconciler.start();
    await settle();
    // No desired set yet: nothing is known to be gone.
    expect(fs.readdirSync(logs)).toHaveLength(5);
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    expect(fs.readdirSync(logs).sort()).toEqual(["notes.txt", "u1.log", "u1.log.1"]);
  });

  it("shutdown() keeps the logs of instances that are still desired", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1", { stopGraceSeconds: 0 })));
    await settle();
    fs.writeFileSync(path.join(stateDir, "logs", "u1.log"), "line\n");
    await reconciler.shutdown();
    expect(fs.existsSync(path.join(stateDir, "logs", "u1.log"))).toBe(true);
  });

  it.each([
    [{ exitCode: 0 }, { state: "EXITED", exitCode: 0, signal: 0, reason: "Completed" }],
    [{ exitCode: 3 }, { state: "FAILED", exitCode: 3, signal: 0, reason: "Error", message: "exited with code 3" }],
    [
      { exitCode: 137, signal: 9 },
      { state: "FAILED", exitCode: 137, signal: 9, message: "killed by signal 9" },
    ],
    [
      { exitCode: 137, signal: 9, oomKilled: true },
      { state: "OOM_KILLED", exitCode: 137, reason: "OOMKilled" },
    ],
  ])("maps exit %j to %j and removes the container", async (how, expected) => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    runtime.exit("u1", how);
    await settle();

    const last = reports.at(-1);
    expect(last).toMatchObject({
      uid: "u1",
      pid: 1000,
      startedAtMs: 1_700_000_000_000,
      finishedAtMs: 1_700_000_100_000,
      ...expected,
    });
    expect(statesOf("u1")).toEqual(["STARTING", "RUNNING", expected.state]);
    expect(runtime.calls).toContain("remove u1");
    expect(runtime.list()).toEqual([]);
  });

  it("never restarts a finished instance and keeps its status until its uid leaves the desired set", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    runtime.exit("u1", { exitCode: 1 });
    await settle();
    const final = reports.at(-1);

    reconciler.setDesired(desired(spec("u1")));
    await settle();
    reconciler.setDesired({ instances: [spec("u1")], revision: "2", clusterId: "" });
    await settle();

    expect(runtime.started).toHaveLength(1);
    expect(reconciler.statuses()).toEqual([final]);
    expect(reports).toHaveLength(3);

    reconciler.setDesired(desired());
    await settle();
    expect(reconciler.statuses()).toEqual([]);
    expect(runtime.calls.filter((c) => c.startsWith("stop"))).toEqual([]);
  });

  it("reports FAILED/StartFailed with the runtime's message when start throws, and does not retry", async () => {
    runtime.startErrors.set("u1", new Error("pivot_root /var/lib/grove/rootfs/busybox: EINVAL"));
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    reconciler.setDesired(desired(spec("u1")));
    await settle();

    expect(statesOf("u1")).toEqual(["STARTING", "FAILED"]);
    expect(reports.at(-1)).toMatchObject({
      reason: "StartFailed",
      message: "pivot_root /var/lib/grove/rootfs/busybox: EINVAL",
    });
    expect(runtime.calls.filter((c) => c.startsWith("start"))).toEqual(["start u1"]);
    expect(reconciler.statuses()).toEqual([reports.at(-1)]);
  });

  it.each(["..", "../etc", "a/b", "/busybox", ".", ""])("refuses rootfs %j with InvalidRootfs", async (rootfs) => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1", { rootfs })));
    await settle();
    expect(runtime.started).toEqual([]);
    expect(reports).toEqual([expect.objectContaining({ uid: "u1", state: "FAILED", reason: "InvalidRootfs" })]);
  });

  it("refuses a uid that cannot be a container id (it names the log file)", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("../../etc/cron.d/x")));
    await settle();
    expect(runtime.started).toEqual([]);
    expect(reports).toEqual([expect.objectContaining({ state: "FAILED", reason: "InvalidUid" })]);
  });

  it("is idempotent: the same desired set again changes nothing", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1"), spec("u2")));
    await settle();
    const callsBefore = [...runtime.calls];
    const reportsBefore = reports.length;
    for (let i = 0; i < 3; i++) reconciler.setDesired(desired(spec("u2"), spec("u1")));
    await settle();
    expect(runtime.calls).toEqual(callsBefore);
    expect(reports).toHaveLength(reportsBefore);
  });

  it("retries a failing stop with backoff until it succeeds", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    runtime.stopFailures = 2;
    reconciler.setDesired(desired());
    await settle();

    expect(runtime.calls.filter((c) => c.startsWith("stop"))).toEqual(["stop u1 7", "stop u1 7", "stop u1 7"]);
    expect(runtime.calls.at(-1)).toBe("remove u1");
    expect(runtime.list()).toEqual([]);
    expect(reconciler.statuses()).toEqual([]);
  });

  it("stops an instance removed while it was starting, after the start finishes, never concurrently", async () => {
    await reconciler.start();
    const release = runtime.holdStart("u1");
    reconciler.setDesired(desired(spec("u1")));
    await new Promise((r) => setTimeout(r, 10));
    reconciler.setDesired(desired());
    await new Promise((r) => setTimeout(r, 10));
    expect(runtime.calls).toEqual(["cleanupStale", "start u1"]);
    release();
    await settle();

    expect(runtime.calls).toEqual(["cleanupStale", "start u1", "stop u1 7", "remove u1"]);
    expect(statesOf("u1")).toEqual(["STARTING", "RUNNING", "EXITED"]);
    expect(reconciler.statuses()).toEqual([]);
  });

  it("statuses() holds running and finished instances, for the Register after a reconnect", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1"), spec("u2"), spec("u3", { rootfs: "../x" })));
    await settle();
    runtime.exit("u2", { oomKilled: true, exitCode: 137, signal: 9 });
    await settle();

    const byUid = Object.fromEntries(reconciler.statuses().map((s) => [s.uid, s.state]));
    expect(byUid).toEqual({ u1: "RUNNING", u2: "OOM_KILLED", u3: "FAILED" });
  });

  it("shutdown() stops and removes every container and starts nothing more", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1"), spec("u2", { stopGraceSeconds: 0 })));
    await settle();
    await reconciler.shutdown();
    expect(runtime.list()).toEqual([]);
    expect(runtime.calls).toEqual(expect.arrayContaining(["stop u1 7", "stop u2 0", "remove u1", "remove u2"]));
    reconciler.setDesired(desired(spec("u3")));
    await settle();
    expect(runtime.started.map((s) => s.id)).toEqual(["u1", "u2"]);
  });

  it("stops only instances with stop_after_ms once the node is without contact that long, and never restarts them", async () => {
    let silentMs = 0;
    reconciler.close();
    reconciler = new Reconciler({
      runtime,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      onStatus: (s) => reports.push(s),
      resyncIntervalMs: 0,
      withoutContactMs: () => silentMs,
      disconnectCheckIntervalMs: 60_000, // driven by hand below
    });
    await reconciler.start();
    reconciler.setDesired(desired(spec("single", { stopAfterMs: "5000" }), spec("web")));
    await settle();

    silentMs = 4_999;
    reconciler.checkDisconnected();
    await settle();
    expect(runtime.calls.filter((c) => c.startsWith("stop"))).toEqual([]);

    silentMs = 5_000;
    reconciler.checkDisconnected();
    await settle();
    expect(runtime.calls.filter((c) => c.startsWith("stop") || c.startsWith("remove"))).toEqual([
      "stop single 7",
      "remove single",
    ]);
    expect(reports.filter((r) => r.uid === "single").at(-1)).toMatchObject({
      state: "EXITED",
      reason: "StoppedDisconnected",
      message: expect.stringMatching(/after 5\.0s without contact .*stopAfter 5s/),
    });
    // Still desired and contact back: it stays stopped (replacing it is the control plane's call); web never stopped.
    silentMs = 0;
    reconciler.setDesired(desired(spec("single", { stopAfterMs: "5000" }), spec("web")));
    await settle();
    expect(runtime.started.map((s) => s.id)).toEqual(["single", "web"]);
    expect(Object.fromEntries(reconciler.statuses().map((s) => [s.uid, s.state]))).toEqual({
      single: "EXITED",
      web: "RUNNING",
    });
  });
});

describe("Reconciler: live resize of a running instance", () => {
  let runtime: TestRuntime;
  let reports: InstanceStatus[];
  let stateDir: string;
  let reconciler: Reconciler;
  let now: number;
  const bigger = { cpuMillis: "500", memoryBytes: String(128 * 2 ** 20), pids: "128" };

  beforeEach(() => {
    runtime = new TestRuntime();
    reports = [];
    now = 1_700_000_000_000;
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-"));
    reconciler = new Reconciler({
      runtime,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      onStatus: (s) => reports.push(s),
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
      resizeRetryDelayMs: 60_000,
      now: () => now,
    });
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
    expect(runtime.overlap).toBeUndefined();
  });

  async function settle(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await reconciler.idle();
  }
  const last = () => reports[reports.length - 1];

  it("reports the limits it started with, then applies new ones in place: same container, no restart", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    expect(last()).toMatchObject({
      state: "RUNNING",
      pid: 1000,
      appliedResources: { cpuMillis: 250, memoryBytes: 67108864, pids: 64 },
    });

    reconciler.setDesired(desired(spec("u1", { resources: bigger })));
    await settle();
    expect(runtime.updates).toEqual([{ id: "u1", resources: { cpuMillis: 500, memoryBytes: 134217728, pids: 128 } }]);
    expect(runtime.calls.filter((c) => c.startsWith("start") || c.startsWith("stop"))).toEqual(["start u1"]);
    expect(last()).toMatchObject({
      state: "RUNNING",
      pid: 1000,
      reason: "Resized",
      message: "limits changed in place from cpu 250m, memory 64Mi, pids 64 to cpu 500m, memory 128Mi, pids 128",
      appliedResources: { cpuMillis: 500, memoryBytes: 134217728, pids: 128 },
    });
    // Level-triggered: the same desired set again changes nothing.
    reconciler.setDesired(desired(spec("u1", { resources: bigger })));
    await settle();
    expect(runtime.updates).toHaveLength(1);
  });

  it("keeps a refused resize's old limits, reports ResizeFailed with the reason, and retries only after the delay", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    runtime.updateErrors.push(new Error("write memory.limit_in_bytes: Device or resource busy"));
    reconciler.setDesired(desired(spec("u1", { resources: bigger })));
    await settle();
    expect(runtime.updates).toEqual([]);
    expect(runtime.running()).toEqual(["u1"]);
    expect(last()).toMatchObject({
      state: "RUNNING",
      pid: 1000,
      reason: "ResizeFailed",
      message:
        "could not resize to cpu 500m, memory 128Mi, pids 128: write memory.limit_in_bytes: Device or resource busy; " +
        "running on with cpu 250m, memory 64Mi, pids 64",
      appliedResources: { cpuMillis: 250, memoryBytes: 67108864, pids: 64 },
    });
    const reported = reports.length;
    const updateCalls = () => runtime.calls.filter((c) => c.startsWith("update")).length;
    expect(updateCalls()).toBe(1);

    // Not again right away (a resync, the same set again)...
    reconciler.setDesired(desired(spec("u1", { resources: bigger })));
    await settle();
    expect(updateCalls()).toBe(1);
    expect(reports).toHaveLength(reported);
    // ...but after the retry delay, and then it succeeds.
    now += 60_000;
    reconciler.setDesired(desired(spec("u1", { resources: bigger })));
    await settle();
    expect(updateCalls()).toBe(2);
    expect(last()).toMatchObject({ reason: "Resized", appliedResources: { cpuMillis: 500 } });
  });

  it("clears a refusal when the desired limits go back to those the container has", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    runtime.updateErrors.push(new Error("EBUSY"));
    reconciler.setDesired(desired(spec("u1", { resources: bigger })));
    await settle();
    expect(last()).toMatchObject({ reason: "ResizeFailed" });
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    expect(runtime.updates).toEqual([]);
    expect(last()).toMatchObject({
      state: "RUNNING",
      reason: "",
      message: "",
      appliedResources: { cpuMillis: 250, memoryBytes: 67108864, pids: 64 },
    });
  });

  it("a different target after a refusal is tried at once", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    runtime.updateErrors.push(new Error("EBUSY"));
    reconciler.setDesired(desired(spec("u1", { resources: bigger })));
    await settle();
    reconciler.setDesired(desired(spec("u1", { resources: { ...bigger, memoryBytes: String(96 * 2 ** 20) } })));
    await settle();
    expect(runtime.updates).toEqual([{ id: "u1", resources: { cpuMillis: 500, memoryBytes: 100663296, pids: 128 } }]);
  });

  it("after an agent restart: knows an adopted container's recorded limits, applies only what differs", async () => {
    const annotations = (uid: string) => ({ "grove.instance": JSON.stringify(spec(uid)) });
    runtime.recoverable = [
      // Resized by the previous agent run to `bigger`, which is still desired: nothing to do.
      { id: "a1", annotations: annotations("a1"), resources: { cpuMillis: 500, memoryBytes: 134217728, pids: 128 } },
      // Started with the spec's limits; the desired set now asks for more.
      { id: "a2", annotations: annotations("a2") },
    ];
    await reconciler.start();
    expect(reconciler.statuses().map((s) => [s.uid, s.appliedResources])).toEqual([
      ["a1", { cpuMillis: 500, memoryBytes: 134217728, pids: 128 }],
      ["a2", { cpuMillis: 250, memoryBytes: 67108864, pids: 64 }],
    ]);
    reconciler.setDesired(desired(spec("a1", { resources: bigger }), spec("a2", { resources: bigger })));
    await settle();
    expect(runtime.updates).toEqual([{ id: "a2", resources: { cpuMillis: 500, memoryBytes: 134217728, pids: 128 } }]);
    expect(runtime.calls.filter((c) => c.startsWith("start"))).toEqual([]);
  });
});

describe("isPlainName", () => {
  it("accepts single path components only", () => {
    expect(["busybox", "alpine-3.20", "a..b", ".hidden"].every(isPlainName)).toBe(true);
    expect(["", ".", "..", "a/b", "/a", "a\\b", "a\0b"].some(isPlainName)).toBe(false);
  });
});

describe("Reconciler with images", () => {
  class FakeImages {
    calls: string[] = [];
    fail: Error | undefined;
    async prepareRootfs(
      id: string,
      reference: string,
      opts: { pullSecret?: string; onProgress?: (p: PullProgress) => void },
    ) {
      this.calls.push(`prepare ${id} ${reference} ${opts.pullSecret ?? "-"}`);
      opts.onProgress?.({ image: reference, layersDone: 0, layersTotal: 2, bytesDone: 0, bytesTotal: 100 });
      opts.onProgress?.({ image: reference, layersDone: 2, layersTotal: 2, bytesDone: 100, bytesTotal: 100 });
      if (this.fail) throw this.fail;
      return {
        rootfs: `/images/containers/${id}/rootfs`,
        image: {
          reference,
          config: {
            Entrypoint: ["/entry"],
            Cmd: ["serve"],
            Env: ["PORT=1", "FROM_IMAGE=yes"],
            WorkingDir: "/app",
            User: "www:www",
          },
        },
      };
    }
    async unmountRootfs(id: string) {
      this.calls.push(`unmount ${id}`);
    }
    async cleanupContainers() {
      this.calls.push("cleanup");
      return [];
    }
  }

  let runtime: TestRuntime;
  let images: FakeImages;
  let reports: InstanceStatus[];
  let stateDir: string;
  let reconciler: Reconciler;

  beforeEach(() => {
    runtime = new TestRuntime();
    images = new FakeImages();
    reports = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-"));
    reconciler = new Reconciler({
      runtime,
      images,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      onStatus: (s) => reports.push(s),
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
      pullProgressIntervalMs: 0,
    });
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  async function settle(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await reconciler.idle();
  }

  it("starts on the image's overlay root with its config merged, reports progress, and unmounts after removal", async () => {
    await reconciler.start();
    const s = spec("u1", { rootfs: "", image: "reg:5000/web:1", imagePullSecret: "team", command: [], workingDir: "" });
    reconciler.setDesired(desired(s));
    await settle();
    expect(images.calls).toEqual(["cleanup", "prepare u1 reg:5000/web:1 team"]);
    expect(runtime.started[0]).toMatchObject({
      rootfs: "/images/containers/u1/rootfs",
      command: ["/entry", "serve"],
      env: { PORT: "8080", FROM_IMAGE: "yes", PATH: expect.any(String) },
      workingDir: "/app",
      user: "www:www",
    });
    const pulling = reports.filter((r) => r.reason === "PullingImage");
    expect(pulling.map((r) => r.pull?.layersDone)).toEqual([0, 2]);
    expect(reports.at(-1)).toMatchObject({ state: "RUNNING" });
    expect(reports.at(-1)?.pull).toBeUndefined();

    reconciler.setDesired(desired());
    await settle();
    expect(images.calls.at(-1)).toBe("unmount u1");
  });

  it("runs as the App's security.user rather than the image's User", async () => {
    await reconciler.start();
    const security = {
      user: "1000",
      capabilitiesAdd: [],
      capabilitiesDrop: [],
      seccomp: "",
      readOnlyRootFilesystem: false,
      userNamespace: null,
    };
    const s = spec("u3", { rootfs: "", image: "reg:5000/web:1", command: [], workingDir: "", security });
    reconciler.setDesired(desired(s));
    await settle();
    expect(runtime.started[0]).toMatchObject({ user: "1000" });
  });

  it("ends ImagePullFailed with the reason when the pull fails, and starts nothing", async () => {
    images.fail = new Error("reg:5000/web manifests/nope: not found (404): MANIFEST_UNKNOWN: manifest unknown");
    await reconciler.start();
    reconciler.setDesired(desired(spec("u2", { rootfs: "", image: "reg:5000/web:nope" })));
    await settle();
    expect(runtime.started).toEqual([]);
    expect(reports.at(-1)).toMatchObject({
      state: "FAILED",
      reason: "ImagePullFailed",
      message: "reg:5000/web:nope: reg:5000/web manifests/nope: not found (404): MANIFEST_UNKNOWN: manifest unknown",
    });
    expect(images.calls.at(-1)).toBe("unmount u2");
  });
});

describe("Reconciler with private roots over rootfs directories", () => {
  /** Mounts nothing: a private root is a plain directory of the test's. */
  class FakeTemplates {
    calls: string[] = [];
    invalid = new Set<string>();
    constructor(private readonly dir: string) {}
    async template(name: string) {
      if (this.invalid.has(name)) throw new Error(`rootfs "${name}": /r/${name} does not exist`);
      return `/r/${name}`;
    }
    async mount(id: string, template: string) {
      this.calls.push(`mount ${id} ${template}`);
      const root = path.join(this.dir, id);
      fs.mkdirSync(root, { recursive: true });
      return root;
    }
    async unmount(id: string) {
      this.calls.push(`unmount ${id}`);
      fs.rmSync(path.join(this.dir, id), { recursive: true, force: true });
    }
    async cleanup(keep: ReadonlySet<string> = new Set()) {
      this.calls.push(`cleanup ${[...keep].join(",")}`);
      return [];
    }
  }

  let runtime: TestRuntime;
  let stateDir: string;
  let templates: FakeTemplates;
  let reports: InstanceStatus[];
  let reconciler: Reconciler;
  const calls: string[] = [];

  beforeEach(() => {
    runtime = new TestRuntime();
    calls.length = 0;
    reports = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-"));
    templates = new FakeTemplates(path.join(stateDir, "roots"));
    reconciler = new Reconciler({
      runtime,
      templates,
      rootfsDir: "/r",
      stateDir,
      onStatus: (s) => reports.push(s),
      network: {
        ready: true,
        setup: async (req) => {
          calls.push(`setup ${req.uid}`);
          return { netnsPath: `/run/netns/${req.uid}`, ip: "10.244.0.7", ports: [] };
        },
        teardown: async (uid) => {
          calls.push(`teardown ${uid}`);
        },
        cleanupStale: async () => [],
        adopt: async (req) => {
          calls.push(`adopt ${req.uid}`);
          return { netnsPath: `/run/netns/${req.uid}`, ip: "10.244.0.9", ports: [] };
        },
      },
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
    });
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  async function settle(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await reconciler.idle();
  }

  it("keeps the private root of a container whose records were lost, and releases it when the container goes", async () => {
    runtime.recoverable = [{ id: "u9", annotations: {}, recordsLost: true }];
    await reconciler.start();
    expect(templates.calls).toEqual(["cleanup u9"]); // kept: the container runs on it
    reconciler.setDesired(desired(spec("u9")));
    await settle();
    expect(runtime.started).toEqual([]); // adopted, not started again
    expect(calls).toEqual(["adopt u9"]);
    reconciler.setDesired(desired());
    await settle();
    expect(templates.calls.at(-1)).toBe("unmount u9");
  });

  it("starts on its own root over the directory, users from the directory, /etc files in its root; releases it with the instance", async () => {
    const stale = path.join(stateDir, "network", "etc", "gone");
    fs.mkdirSync(stale, { recursive: true });
    await reconciler.start();
    expect(fs.existsSync(stale)).toBe(false); // left by an older agent, no container adopted it
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    const root = path.join(stateDir, "roots", "u1");
    expect(templates.calls).toEqual(["cleanup ", "mount u1 /r/busybox"]);
    expect(runtime.started[0]).toMatchObject({ rootfs: root, usersFrom: "/r/busybox" });
    expect(runtime.started[0]?.mounts).toBeUndefined();
    expect(fs.readFileSync(path.join(root, "etc", "hosts"), "utf8")).toContain("10.244.0.7\tweb-u1\n");
    expect(fs.existsSync(path.join(root, "etc", "resolv.conf"))).toBe(true);

    reconciler.setDesired(desired());
    await settle();
    expect(calls).toEqual(["setup u1", "teardown u1"]);
    expect(templates.calls.at(-1)).toBe("unmount u1");
    expect(fs.existsSync(root)).toBe(false);
  });

  it("ends InvalidRootfs when the directory cannot be used, and mounts nothing", async () => {
    templates.invalid.add("busybox");
    await reconciler.start();
    reconciler.setDesired(desired(spec("u2")));
    await settle();
    expect(runtime.started).toEqual([]);
    expect(reports.at(-1)).toMatchObject({
      state: "FAILED",
      reason: "InvalidRootfs",
      message: 'rootfs "busybox": /r/busybox does not exist',
    });
    expect(templates.calls).toEqual(["cleanup "]);
  });
});

describe("Reconciler with user namespaces", () => {
  const BASE = 100_000_000;
  const SIZE = 65536;
  let runtime: TestRuntime;
  let reports: InstanceStatus[];
  let stateDir: string;
  let pool: UsernsPool;
  let reconciler: Reconciler;

  const security = (userNamespace: { auto: boolean; hostUid: number; hostGid: number; size: number }) => ({
    user: "",
    capabilitiesAdd: [],
    capabilitiesDrop: [],
    seccomp: "",
    readOnlyRootFilesystem: false,
    userNamespace,
  });
  const auto = (uid: string) => spec(uid, { security: security({ auto: true, hostUid: 0, hostGid: 0, size: 0 }) });
  const make = () =>
    new Reconciler({
      runtime,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      onStatus: (s) => reports.push(s),
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
      userns: pool,
    });
  async function settle(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await reconciler.idle();
  }
  const hostUidOf = (id: string) => runtime.started.find((s) => s.id === id)?.userNamespace?.uidMap[0]?.hostId;

  beforeEach(() => {
    runtime = new TestRuntime();
    reports = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-userns-"));
    pool = new UsernsPool({ base: BASE, size: SIZE, count: 2 });
    reconciler = make();
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it("gives each auto instance a range of its own, maps root to it and records it on the container", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(auto("u1"), auto("u2")));
    await settle();
    const u1 = runtime.started.find((s) => s.id === "u1");
    expect(u1?.userNamespace).toEqual({
      uidMap: [{ containerId: 0, hostId: hostUidOf("u1"), size: SIZE }],
      gidMap: [{ containerId: 0, hostId: hostUidOf("u1"), size: SIZE }],
    });
    expect(new Set([hostUidOf("u1"), hostUidOf("u2")])).toEqual(new Set([BASE, BASE + SIZE]));
    expect(JSON.parse(u1?.annotations?.["grove.userns"] ?? "{}")).toEqual({
      hostUid: hostUidOf("u1"),
      hostGid: hostUidOf("u1"),
      size: SIZE,
    });
    // The pool is full: a third fails to start, naming the flag.
    reconciler.setDesired(desired(auto("u1"), auto("u2"), auto("u3")));
    await settle();
    expect(reports.filter((r) => r.uid === "u3").pop()).toMatchObject({
      state: "FAILED",
      reason: "StartFailed",
      message: expect.stringContaining("no free user namespace range"),
    });
  });

  it("releases a range when its instance is deleted, and hands it out again", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(auto("u1"), auto("u2")));
    await settle();
    const freed = hostUidOf("u1");
    reconciler.setDesired(desired(auto("u2")));
    await settle();
    expect(pool.used).toBe(1);
    reconciler.setDesired(desired(auto("u2"), auto("u3")));
    await settle();
    expect(hostUidOf("u3")).toBe(freed);
    expect(hostUidOf("u3")).not.toBe(hostUidOf("u2"));
  });

  it("after an agent restart finds the ranges of adopted containers again and allocates around them", async () => {
    const taken = { hostUid: BASE, hostGid: BASE, size: SIZE };
    runtime.recoverable = [
      {
        id: "a1",
        annotations: { "grove.instance": JSON.stringify(auto("a1")), "grove.userns": JSON.stringify(taken) },
      },
    ];
    await reconciler.start();
    expect(pool.rangeOwnedBy("a1")).toEqual(taken);
    reconciler.setDesired(desired(auto("a1"), auto("n1")));
    await settle();
    expect(runtime.calls.filter((c) => c.startsWith("start"))).toEqual(["start n1"]);
    expect(hostUidOf("n1")).toBe(BASE + SIZE);
  });

  it("passes an explicit range through, refuses one overlapping the pool, and auto without a pool", async () => {
    await reconciler.start();
    const explicit = spec("e1", {
      security: security({ auto: false, hostUid: 500_000_000, hostGid: 600_000_000, size: 1000 }),
    });
    const clash = spec("e2", {
      security: security({ auto: false, hostUid: BASE + 10, hostGid: 700_000_000, size: 10 }),
    });
    reconciler.setDesired(desired(explicit, clash));
    await settle();
    expect(runtime.started.find((s) => s.id === "e1")?.userNamespace).toEqual({
      uidMap: [{ containerId: 0, hostId: 500_000_000, size: 1000 }],
      gidMap: [{ containerId: 0, hostId: 600_000_000, size: 1000 }],
    });
    expect(reports.filter((r) => r.uid === "e2").pop()).toMatchObject({
      state: "FAILED",
      message: expect.stringContaining("overlap this node's --userns-range pool"),
    });
    expect(pool.used).toBe(0);

    reconciler.close();
    pool = undefined as unknown as UsernsPool;
    reconciler = new Reconciler({
      runtime,
      rootfsDir: "/r",
      stateDir,
      resyncIntervalMs: 0,
      onStatus: (s) => reports.push(s),
    });
    await reconciler.start();
    reconciler.setDesired(desired(auto("x1")));
    await settle();
    expect(reports.filter((r) => r.uid === "x1").pop()).toMatchObject({
      state: "FAILED",
      message: expect.stringContaining("needs the agent's --userns-range"),
    });
  });
});
