// The rollout's decisions, pure: when a rollout is failing and how that is
// worded (rollback.ts), how its state moves between rollouts and leaders
// (rollout-state.ts), and that a canary caps the new instances (planRollout).
import { updateProblems, type Instance, type RolloutState } from "@grove/api";
import { crashed, rollbackRecord, rolloutFailure } from "./rollback";
import { nextRolloutState, progressed } from "./rollout-state";
import { planRollout, type RolloutSlot } from "./rollout";

function inst(name: string, status: Instance["status"]): Instance {
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: { name, namespace: "default" },
    spec: {
      app: "web",
      appUid: "u",
      rootfs: "busybox",
      command: ["sleep"],
      env: {},
      resources: { cpuMillis: 100, memoryBytes: 1, pids: 1 },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 1,
      index: 0,
      restarts: 0,
    },
    ...(status ? { status } : {}),
  } as Instance;
}

describe("rolloutFailure", () => {
  const deadline = { exceeded: false, seconds: 30 };

  it("a new instance that crashed fails the rollout at once, naming it and its exit", () => {
    const dead = inst("web-0-ab12c", { state: "Failed", reason: "Error", exitCode: 3 });
    expect(rolloutFailure([{ inst: dead, available: false }], deadline)).toEqual({
      reason: "InstanceFailed",
      cause: "instance web-0-ab12c exited with code 3",
    });
    const oom = inst("web-1-ab12c", { state: "OOMKilled", reason: "OOMKilled" });
    expect(rolloutFailure([{ inst: oom, available: false }], deadline)?.cause).toBe(
      "instance web-1-ab12c was OOM-killed",
    );
    const live = inst("web-2-ab12c", { state: "Failed", reason: "LivenessFailed", message: "exec: exit 1" });
    expect(rolloutFailure([{ inst: live, available: false }], deadline)?.cause).toBe(
      "instance web-2-ab12c failed its liveness check (exec: exit 1)",
    );
  });

  it("ends Grove or the node caused are not crashes", () => {
    for (const reason of ["RolledOut", "Preempted", "Lost", "Drained", "Stopped"]) {
      expect(
        crashed(inst("x", { state: reason === "Preempted" || reason === "Lost" ? "Failed" : "Exited", reason })),
      ).toBe(false);
    }
    expect(crashed(inst("x", { state: "Exited", reason: "Completed", exitCode: 0 }))).toBe(false);
    expect(crashed(inst("x", { state: "Exited", reason: "Error", exitCode: 1 }))).toBe(true);
    expect(crashed(inst("x", { state: "Running" }))).toBe(false);
  });

  it("instances that are merely not ready fail the rollout only at the deadline, with their last check", () => {
    const unready = inst("web-0-ab12c", {
      state: "Running",
      ready: false,
      lastCheck: { check: "readiness", kind: "http", ok: false, message: "HTTP 404", time: "t" },
    });
    const n = [{ inst: unready, available: false }];
    expect(rolloutFailure(n, deadline)).toBeUndefined();
    expect(rolloutFailure(n, { exceeded: true, seconds: 30 })).toEqual({
      reason: "ProgressDeadlineExceeded",
      cause:
        "instance web-0-ab12c never became ready; last readiness check (http): failed: HTTP 404 within the progress deadline of 30s",
    });
    const pending = inst("web-0-ab12c", { state: "Pending", reason: "Unschedulable", message: "memory: insufficient" });
    expect(rolloutFailure([{ inst: pending, available: false }], { exceeded: true, seconds: 30 })?.cause).toBe(
      "instance web-0-ab12c is still Pending (Unschedulable: memory: insufficient) within the progress deadline of 30s",
    );
  });

  it("words the rollback once: from, to and the cause", () => {
    const r = rollbackRecord({ reason: "InstanceFailed", cause: "instance a exited with code 3" }, 3, 2, 0);
    expect(r).toEqual({
      from: 3,
      to: 2,
      reason: "InstanceFailed",
      message: "rolled back from revision 3 to revision 2: instance a exited with code 3",
      at: "1970-01-01T00:00:00.000Z",
    });
  });
});

describe("nextRolloutState", () => {
  const t = (revision: number, templateHash: string, generation = 1) => ({ revision, templateHash, generation });

  it("starts a rollout on a template change, returning to the revision the instances ran", () => {
    const first = nextRolloutState(undefined, t(1, "h1"), () => undefined, 0);
    expect(first).toMatchObject({ revision: 1, templateHash: "h1", updatedAvailable: 0 });
    expect(first.from).toBeUndefined();
    const done: RolloutState = { ...first, complete: true };
    const second = nextRolloutState(done, t(2, "h2", 2), () => 7, 1000);
    expect(second).toMatchObject({ revision: 2, from: 1, progressedAt: "1970-01-01T00:00:01.000Z" });
    expect(second.complete).toBeUndefined();
    // Changed again mid-rollout: still back to what ran before both.
    expect(nextRolloutState(second, t(3, "h3", 3), () => 2, 2000).from).toBe(1);
    // Back to the old template: nothing to return to.
    expect(nextRolloutState(second, t(1, "h1", 3), () => 2, 2000).from).toBeUndefined();
    // Without an earlier state (an App from before revisions): the old instances' revision.
    expect(nextRolloutState(undefined, t(2, "h2"), () => 1, 0).from).toBe(1);
  });

  it("keeps the deadline clock (and a rollback record) until the App changes", () => {
    const s: RolloutState = {
      revision: 2,
      templateHash: "h2",
      generation: 2,
      from: 1,
      progressedAt: "1970-01-01T00:00:01.000Z",
      updatedAvailable: 1,
      exceeded: true,
    };
    expect(nextRolloutState(s, t(2, "h2", 2), () => undefined, 9000)).toEqual(s);
    const resumed = nextRolloutState(s, t(2, "h2", 3), () => undefined, 9000);
    expect(resumed.progressedAt).toBe("1970-01-01T00:00:09.000Z");
    expect(resumed.exceeded).toBeUndefined();
    expect(progressed(s, 1, 9000)).toBe(s);
    expect(progressed(s, 2, 9000).progressedAt).toBe("1970-01-01T00:00:09.000Z");

    const record = { from: 2, to: 1, reason: "InstanceFailed", message: "m", at: "x" };
    const back = nextRolloutState({ ...s, rolledBack: record }, t(1, "h1", 4), () => undefined, 9000);
    expect(back.rolledBack).toEqual(record);
    expect(back.from).toBeUndefined(); // a rollback's own rollout does not roll back
    expect(nextRolloutState({ ...back, complete: true }, t(3, "h3", 5), () => 1, 9000).rolledBack).toBeUndefined();
  });
});

describe("planRollout with a canary", () => {
  const old = (n: number): RolloutSlot[] =>
    Array.from({ length: n }, (_, index) => ({ index, old: { available: true } }));

  it("gives at most `canary` indexes a new instance, however much room there is", () => {
    expect(planRollout(old(4), 4, { maxSurge: 3, maxUnavailable: 0, maxUpdated: 1 })).toEqual([
      { kind: "surge", index: 0 },
    ]);
    const slots: RolloutSlot[] = [
      { index: 0, new: { available: true } },
      ...old(3).map((s) => ({ ...s, index: s.index + 1 })),
    ];
    expect(planRollout(slots, 4, { maxSurge: 3, maxUnavailable: 0, maxUpdated: 1 })).toEqual([]);
    expect(planRollout(slots, 4, { maxSurge: 3, maxUnavailable: 0 })).toHaveLength(3);
  });
});

describe("updateProblems: canary", () => {
  it("refuses a canary larger than the instance count, or with Recreate, naming the field", () => {
    expect(updateProblems({ instances: 2, update: { canary: 3 } })).toEqual([
      {
        pointer: "/spec/update/canary",
        message: "must be at most spec.instances (2): a canary replaces part of the instances, got 3",
      },
    ]);
    expect(updateProblems({ instances: 3, update: { canary: 3 } })).toEqual([]);
    expect(updateProblems({ instances: 3, update: { strategy: "Recreate", canary: 1 } })).toEqual([
      { pointer: "/spec/update/canary", message: "only applies to strategy Rolling" },
    ]);
  });
});
