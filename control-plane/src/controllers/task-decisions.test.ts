// The Task controller's decisions, without a store: which attempt starts,
// when the retry backoff and the TTL are over, what the status says.
import { taskAttempt, type App, type Instance, type InstanceStatus, type Task } from "@grove/api";
import { decideTask, type TaskInput } from "./task-decisions";

const NOW = Date.parse("2026-01-01T00:00:00Z");

function task(spec: Partial<Task["spec"]> = {}, status?: Task["status"]): Task {
  return {
    apiVersion: "grove/v1",
    kind: "Task",
    metadata: { name: "job", namespace: "default", uid: "task-uid", generation: 1 },
    spec: { rootfs: "busybox", command: ["/bin/sh", "-c", "exit 0"], ...spec },
    ...(status ? { status } : {}),
  };
}

function attempt(t: Task, n: number, status: InstanceStatus): Instance {
  const inst = taskAttempt(t, undefined, n, NOW);
  inst.spec.nodeName = "n1";
  inst.status = { nodeName: "n1", ...status };
  return inst;
}

const exited = (exitCode: number, extra: Partial<InstanceStatus> = {}): InstanceStatus => ({
  state: exitCode === 0 ? "Exited" : "Failed",
  exitCode,
  startedAt: "2026-01-01T00:00:01.000Z",
  finishedAt: "2026-01-01T00:00:02.000Z",
  ...extra,
});

function decide(t: Task, attempts: Instance[], over: Partial<TaskInput> = {}) {
  return decideTask({
    task: t,
    attempts,
    appExists: true,
    nodeGone: () => false,
    sinceAttemptEndedMs: 0,
    sinceDoneMs: 0,
    now: NOW,
    ...over,
  });
}

describe("decideTask", () => {
  it("starts attempt 1 of a new Task", () => {
    const d = decide(task(), []);
    expect(d.create).toBe(1);
    expect(d.status).toMatchObject({ phase: "Pending", attempts: 1, instance: "job-t1", reason: "Scheduling" });
  });

  it("is Running while its attempt runs, and starts nothing more", () => {
    const t = task();
    const d = decide(t, [attempt(t, 1, { state: "Running", startedAt: "2026-01-01T00:00:01.000Z" })]);
    expect(d.create).toBeUndefined();
    expect(d.status).toMatchObject({
      phase: "Running",
      attempts: 1,
      reason: "Running",
      startTime: "2026-01-01T00:00:01.000Z",
    });
  });

  it("succeeds when an attempt exits 0", () => {
    const t = task({ retries: 2 });
    const d = decide(t, [attempt(t, 1, exited(0))]);
    expect(d.create).toBeUndefined();
    expect(d.status).toMatchObject({
      phase: "Succeeded",
      attempts: 1,
      exitCode: 0,
      reason: "Completed",
      completionTime: "2026-01-01T00:00:02.000Z",
    });
  });

  it("waits out the retry backoff after a failed attempt, then starts the next", () => {
    const t = task({ retries: 2 });
    const failed = [attempt(t, 1, exited(7))];
    const waiting = decide(t, failed, { sinceAttemptEndedMs: 200 });
    expect(waiting.create).toBeUndefined();
    expect(waiting.requeueAfterMs).toBe(800);
    expect(waiting.status).toMatchObject({ phase: "Pending", reason: "Backoff", exitCode: 7, attempts: 1 });
    expect(waiting.status.message).toMatch(/attempt 1 of 3 failed \(exit code 7\); attempt 2 starts in 1s/);
    const next = decide(t, failed, { sinceAttemptEndedMs: 1000 });
    expect(next.create).toBe(2);
    expect(next.status).toMatchObject({ attempts: 2, instance: "job-t2" });
  });

  it("doubles the backoff with each attempt", () => {
    const t = task({ retries: 5 });
    const tries = [1, 2, 3].map((n) => attempt(t, n, exited(1)));
    expect(decide(t, tries, { sinceAttemptEndedMs: 0 }).requeueAfterMs).toBe(4000);
  });

  it("fails after retries + 1 failed attempts, with the last exit code", () => {
    const t = task({ retries: 1 });
    const d = decide(t, [attempt(t, 1, exited(3)), attempt(t, 2, exited(42))], { sinceAttemptEndedMs: 60_000 });
    expect(d.create).toBeUndefined();
    expect(d.status).toMatchObject({ phase: "Failed", attempts: 2, exitCode: 42, reason: "RetriesExhausted" });
    expect(d.status.message).toBe("attempt 2 of 2 failed (exit code 42)");
  });

  it("with no retries (the default) fails after one attempt", () => {
    const t = task();
    expect(decide(t, [attempt(t, 1, exited(1))], { sinceAttemptEndedMs: 60_000 }).status.phase).toBe("Failed");
  });

  it("counts an OOM kill, a signal or a start failure as a failed attempt", () => {
    const t = task();
    const oom = decide(t, [attempt(t, 1, { state: "OOMKilled", reason: "OOMKilled", signal: 9, exitCode: 137 })]);
    expect(oom.status).toMatchObject({ phase: "Failed", signal: 9, exitCode: 137 });
    expect(oom.status.message).toMatch(/OOMKilled/);
    const killed = decide(t, [attempt(t, 1, { state: "Exited", exitCode: 0, signal: 15 })]);
    expect(killed.status.phase).toBe("Failed");
    const start = decide(t, [attempt(t, 1, { state: "Failed", reason: "StartFailed", message: "no such rootfs" })]);
    expect(start.status.message).toMatch(/StartFailed: no such rootfs/);
  });

  it("counts an attempt whose Instance was deleted as failed and does not reuse its number", () => {
    const t = task({ retries: 1 }, { phase: "Running", attempts: 1 });
    const d = decide(t, [], { sinceAttemptEndedMs: 0 });
    // Not a fresh start at attempt 1: the backoff of attempt 2 (the controller saw nothing end, so it waits from now).
    expect(d.create).toBeUndefined();
    expect(d.status.message).toMatch(/attempt 1 of 2 failed \(its Instance was deleted\)/);
    expect(decide(t, [], { sinceAttemptEndedMs: 5000 }).create).toBe(2);
  });

  it("counts an attempt on a deleted node as failed; waits for one on a node that stopped answering", () => {
    const t = task({ retries: 1 });
    const lost = attempt(t, 1, { state: "Unknown", reason: "NodeNotReady" });
    expect(decide(t, [lost]).status).toMatchObject({ phase: "Running", reason: "NodeNotReady" });
    const gone = decide(t, [lost], { nodeGone: () => true, sinceAttemptEndedMs: 5000 });
    expect(gone.create).toBe(2);
  });

  it("fails with AppNotFound when fromApp's App is gone before an attempt starts", () => {
    const t = task({ rootfs: undefined, fromApp: "web", command: ["true"] });
    const d = decide(t, [], { appExists: false });
    expect(d.create).toBeUndefined();
    expect(d.status).toMatchObject({ phase: "Failed", reason: "AppNotFound" });
  });

  it("keeps a finished Task for its TTL, then expires it", () => {
    const t = task({ ttlSecondsAfterFinished: 30 }, { phase: "Succeeded", attempts: 1, exitCode: 0 });
    expect(decide(t, [], { sinceDoneMs: 10_000 })).toMatchObject({ requeueAfterMs: 20_000 });
    expect(decide(t, [], { sinceDoneMs: 10_000 }).expire).toBeUndefined();
    expect(decide(t, [], { sinceDoneMs: 30_000 }).expire).toBe(true);
    // The default TTL is an hour.
    const dflt = task({}, { phase: "Failed", attempts: 1 });
    expect(decide(dflt, [], { sinceDoneMs: 0 }).requeueAfterMs).toBe(3_600_000);
  });
});

describe("taskAttempt", () => {
  const app: App = {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "web", namespace: "default", uid: "app-uid" },
    spec: {
      rootfs: "busybox",
      command: ["httpd", "-f"],
      env: { A: "app", B: "app" },
      instances: 2,
      ports: [{ name: "http", containerPort: 8080, hostPort: 18080 }],
      checks: { readiness: { tcp: { port: "http" } } },
      resources: { cpu: "500m", memory: "64Mi" },
    },
  };

  it("runs the App's template with the Task's command, env on top, without ports or checks", () => {
    const t = task({
      rootfs: undefined,
      fromApp: "web",
      command: ["./migrate"],
      env: { B: "task" },
      resources: { memory: "32Mi" },
    });
    const inst = taskAttempt(t, app, 2, NOW);
    expect(inst.metadata.name).toBe("job-t2");
    expect(inst.metadata.labels).toEqual({ "grove.io/task": "job", "grove.io/attempt": "2" });
    expect(inst.spec).toMatchObject({
      app: "job",
      appUid: "task-uid",
      task: "job",
      index: 0,
      restarts: 1,
      restartPolicy: "Never",
      rootfs: "busybox",
      command: ["./migrate"],
      env: { A: "app", B: "task", GROVE_TASK: "job", GROVE_TASK_ATTEMPT: "2" },
      resources: { cpuMillis: 500, memoryBytes: 32 * 2 ** 20 },
    });
    expect(inst.spec.ports).toBeUndefined();
    expect(inst.spec.checks).toBeUndefined();
  });
});
