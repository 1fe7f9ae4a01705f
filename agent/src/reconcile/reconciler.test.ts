// The reconciler's life cycle against the FakeRuntime: start, stop, exits,
// finished instances, retries, shutdown, logs, disconnect stops.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { InstanceStatus } from "@grove/proto";
import { FakeRuntime, type FakeRuntimeOptions } from "../runtime/fake";
import { isPlainName, Reconciler } from "./reconciler";
import { callsOf, desired, EXIT_MS, spec, START_MS, turns, waitFor, settle as settleQueue } from "./test-helpers";

describe("Reconciler", () => {
  let runtime: FakeRuntime;
  let reports: InstanceStatus[];
  let released: InstanceStatus[];
  let stateDir: string;
  let reconciler: Reconciler;
  let clockMs: number;

  const newRuntime = (opts: FakeRuntimeOptions = {}) =>
    new FakeRuntime({ yieldInCalls: true, clock: () => clockMs, ...opts });
  const make = () =>
    new Reconciler({
      runtime,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      onStatus: (s) => reports.push(s),
      onReleased: (s) => released.push(s),
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
    });

  beforeEach(async () => {
    clockMs = START_MS;
    runtime = newRuntime();
    reports = [];
    released = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-"));
    reconciler = make();
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
    expect(runtime.overlap).toBeUndefined();
  });

  const settle = () => settleQueue(reconciler);

  const calls = () => callsOf(runtime);
  /** Ends a running container as the kernel would (at EXIT_MS). */
  const exit = (id: string, how: { exitCode?: number; signal?: number; oomKilled?: boolean }) => {
    clockMs = EXIT_MS;
    return runtime.exit(id, how);
  };
  const statesOf = (uid: string) => reports.filter((r) => r.uid === uid).map((r) => r.state);

  it("cleans up stale containers and creates the log directory on start", async () => {
    reconciler.close();
    runtime = newRuntime({ staleIds: ["old-1"] });
    reconciler = make();
    await reconciler.start();
    expect(calls()).toEqual(["cleanupStale"]);
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

    expect(calls().filter((c) => c.split(" ")[1] === "u1")).toEqual(["start u1", "stop u1 7", "remove u1"]);
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

  it("tells onReleased once an instance that left the desired set is removed, not before, and never otherwise", async () => {
    await reconciler.start();
    reconciler.setDesired(
      desired(spec("u1", { ports: [{ name: "http", protocol: "tcp", containerPort: 8080, hostPort: 20000 }] })),
    );
    await settle();
    reconciler.setDesired(desired());
    await waitFor(() => released.length > 0, "a released report");
    // By then the container is removed and the stop was reported.
    expect(calls().filter((c) => c.endsWith(" u1") || c.includes(" u1 "))).toEqual([
      "start u1",
      "stop u1 7",
      "remove u1",
    ]);
    await settle();
    expect(released).toEqual([{ ...reports.filter((r) => r.uid === "u1").at(-1), released: true }]);
    expect(released[0]).toMatchObject({ state: "EXITED", reason: "Stopped" });
    // A finished instance still desired is not released; nor is anything on a shutdown.
    reconciler.setDesired(desired(spec("u2"), spec("u3")));
    await settle();
    exit("u2", { exitCode: 1 });
    await settle();
    await reconciler.shutdown();
    expect(released.map((r) => r.uid)).toEqual(["u1"]);
  });

  it("moves the logs of an instance that leaves the desired set to its name's previous log, keeps those still desired", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1"), spec("u2")));
    await settle();
    const logs = path.join(stateDir, "logs");
    for (const f of ["u1.log", "u1.log.1", "u2.log"]) fs.writeFileSync(path.join(logs, f), "line\n");
    reconciler.setDesired(desired(spec("u2")));
    await settle();
    expect(fs.readdirSync(logs).sort()).toEqual(["previous", "u2.log"]);
    // grove logs --previous (log-files.ts): kept under the instance's name, pruned 10 minutes after it is no longer desired.
    expect(fs.readdirSync(path.join(logs, "previous")).sort()).toEqual(["default_web-u1.log", "default_web-u1.log.1"]);
  });

  it("keeps the logs of a finished instance named in keep_logs (a Task's attempt) until it leaves that list", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("t1")));
    await settle();
    const log = path.join(stateDir, "logs", "t1.log");
    fs.writeFileSync(log, "attempt 1\n");
    exit("t1", { exitCode: 7 });
    await settle();
    // The control plane recorded the exit: the attempt leaves the desired set, its log stays.
    reconciler.setDesired({ ...desired(), keepLogs: ["t1"] });
    await settle();
    expect(calls()).toEqual(["cleanupStale", "start t1", "remove t1"]);
    expect(fs.readFileSync(log, "utf8")).toBe("attempt 1\n");
    expect(reconciler.statuses()).toEqual([]);
    // The Task's TTL passed: the attempt is deleted, and its log with it.
    reconciler.setDesired(desired());
    await settle();
    expect(fs.existsSync(log)).toBe(false);
  });

  it("a restarted agent keeps the logs keep_logs names when it collects orphaned logs", async () => {
    const logs = path.join(stateDir, "logs");
    fs.mkdirSync(logs, { recursive: true });
    for (const f of ["gone.log", "t1.log", "t1.log.1"]) fs.writeFileSync(path.join(logs, f), "line\n");
    await reconciler.start();
    reconciler.setDesired({ ...desired(), keepLogs: ["t1"] });
    await settle();
    expect(fs.readdirSync(logs).sort()).toEqual(["t1.log", "t1.log.1"]);
    expect(calls()).toEqual(["cleanupStale"]);
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
    exit("u1", how);
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
    expect(calls()).toContain("remove u1");
    expect(runtime.list()).toEqual([]);
  });

  it("reports FAILED/RuntimeError when the runtime loses a container's exit, and removes the container", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    runtime.loseExit("u1", new Error("shim socket closed"));
    await settle();
    expect(statesOf("u1")).toEqual(["STARTING", "RUNNING", "FAILED"]);
    expect(reports.at(-1)).toMatchObject({
      reason: "RuntimeError",
      message: "lost the container's exit: shim socket closed",
      pid: 1000,
    });
    expect(calls()).toContain("remove u1");
    expect(runtime.list()).toEqual([]);
  });

  it("never restarts a finished instance and keeps its status until its uid leaves the desired set", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    exit("u1", { exitCode: 1 });
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
    expect(calls().filter((c) => c.startsWith("stop"))).toEqual([]);
  });

  it("reports FAILED/StartFailed with the runtime's message when start throws, and does not retry", async () => {
    runtime.failNextStart(new Error("pivot_root /var/lib/grove/rootfs/busybox: EINVAL"));
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
    expect(calls().filter((c) => c.startsWith("start"))).toEqual(["start u1"]);
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
    const callsBefore = [...calls()];
    const reportsBefore = reports.length;
    for (let i = 0; i < 3; i++) reconciler.setDesired(desired(spec("u2"), spec("u1")));
    await settle();
    expect(calls()).toEqual(callsBefore);
    expect(reports).toHaveLength(reportsBefore);
  });

  it("retries a failing stop with backoff until it succeeds", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    runtime.failNextStop(new Error("EBUSY: cgroup.kill"));
    runtime.failNextStop(new Error("EBUSY: cgroup.kill"));
    reconciler.setDesired(desired());
    await settle();

    expect(calls().filter((c) => c.startsWith("stop"))).toEqual(["stop u1 7", "stop u1 7", "stop u1 7"]);
    expect(calls().at(-1)).toBe("remove u1");
    expect(runtime.list()).toEqual([]);
    expect(reconciler.statuses()).toEqual([]);
  });

  it("stops an instance removed while it was starting, after the start finishes, never concurrently", async () => {
    await reconciler.start();
    const release = runtime.holdStart("u1");
    reconciler.setDesired(desired(spec("u1")));
    await waitFor(() => calls().includes("start u1"), "the start of u1 to reach the runtime");
    reconciler.setDesired(desired());
    // The stop waits for the start (a stop while it is held would also show in runtime.overlap).
    await turns();
    expect(calls()).toEqual(["cleanupStale", "start u1"]);
    release();
    await settle();

    expect(calls()).toEqual(["cleanupStale", "start u1", "stop u1 7", "remove u1"]);
    expect(statesOf("u1")).toEqual(["STARTING", "RUNNING", "EXITED"]);
    expect(reconciler.statuses()).toEqual([]);
  });

  it("statuses() holds running and finished instances, for the Register after a reconnect", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1"), spec("u2"), spec("u3", { rootfs: "../x" })));
    await settle();
    exit("u2", { oomKilled: true, exitCode: 137, signal: 9 });
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
    expect(calls()).toEqual(expect.arrayContaining(["stop u1 7", "stop u2 0", "remove u1", "remove u2"]));
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
    expect(calls().filter((c) => c.startsWith("stop"))).toEqual([]);

    silentMs = 5_000;
    reconciler.checkDisconnected();
    await settle();
    expect(calls().filter((c) => c.startsWith("stop") || c.startsWith("remove"))).toEqual([
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

describe("isPlainName", () => {
  it("accepts single path components only", () => {
    expect(["busybox", "alpine-3.20", "a..b", ".hidden"].every(isPlainName)).toBe(true);
    expect(["", ".", "..", "a/b", "/a", "a\\b", "a\0b"].some(isPlainName)).toBe(false);
  });
});
