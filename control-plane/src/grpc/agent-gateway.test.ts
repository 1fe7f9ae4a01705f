// applyReport: how an agent's status report becomes an Instance's status
// (here: the limits the running container has, which a resize in place changes).
import type { Instance } from "@grove/api";
import type { InstanceStatus__Output } from "@grove/proto";
import { withAgentConditions } from "../nodes/registration";
import { applyReport } from "./agent-messages";
import { instanceFixture } from "./bound-instance.fixture";

const MiB = 2 ** 20;

const instance = (status: Instance["status"]): Instance =>
  instanceFixture("web-0", {
    node: "n1",
    uid: "u1",
    resources: { cpuMillis: 500, memoryBytes: 128 * MiB, pids: 64 },
    ...(status ? { status } : {}),
  });

// Cast: fields other messages may add later are not needed here.
function report(over: Partial<InstanceStatus__Output>): InstanceStatus__Output {
  return {
    uid: "u1",
    namespace: "default",
    name: "web-0",
    state: "RUNNING",
    exitCode: 0,
    signal: 0,
    pid: 4242,
    reason: "",
    message: "",
    startedAtMs: "1700000000000",
    finishedAtMs: "0",
    ip: "",
    ports: [],
    pull: null,
    appliedResources: null,
    ...over,
  } as InstanceStatus__Output;
}

describe("applyReport: applied resources", () => {
  const applied = { cpuMillis: "500", memoryBytes: String(128 * MiB), pids: "64" };

  it("records the limits the agent applied, and the resize's reason and message", () => {
    const cur = instance({ state: "Running", reason: "Resizing", pid: 4242, message: "resizing in place" });
    const next = applyReport(cur, report({ reason: "Resized", message: "limits changed", appliedResources: applied }));
    expect(next).toMatchObject({
      state: "Running",
      reason: "Resized",
      message: "limits changed",
      pid: 4242,
      appliedResources: { cpuMillis: 500, memoryBytes: 128 * MiB, pids: 64 },
    });
  });

  it("writes nothing when the report repeats what is stored, and writes when only the applied limits changed", () => {
    const cur = instance(applyReport(instance(undefined), report({ appliedResources: applied })));
    expect(applyReport(cur, report({ appliedResources: applied }))).toBeUndefined();
    const grown = applyReport(cur, report({ appliedResources: { ...applied, pids: "128" } }));
    expect(grown?.appliedResources?.pids).toBe(128);
  });

  it("keeps the applied limits it knows when a report carries none", () => {
    const cur = instance(applyReport(instance(undefined), report({ appliedResources: applied })));
    expect(applyReport(cur, report({ reason: "Other" }))?.appliedResources).toEqual({
      cpuMillis: 500,
      memoryBytes: 128 * MiB,
      pids: 64,
    });
  });
});

describe("applyReport: released", () => {
  const exited = { state: "Exited" as const, reason: "RolledOut", finishedAt: "2026-01-01T00:00:00.000Z" };

  it("records releasedAt on a finished instance once, and nothing else of a late report", () => {
    const cur = instance(exited);
    const next = applyReport(cur, report({ state: "EXITED", reason: "Stopped", exitCode: 143, released: true }));
    expect(next).toMatchObject({ ...exited, releasedAt: expect.any(String) });
    expect(next?.exitCode).toBeUndefined(); // the stored finish stays as it was
    expect(applyReport(instance(next), report({ state: "EXITED", released: true }))).toBeUndefined();
  });

  it("ignores a finished instance's reports that do not say released", () => {
    expect(applyReport(instance(exited), report({ state: "EXITED", reason: "Stopped" }))).toBeUndefined();
  });

  it("records the end and the release together when both arrive in one report", () => {
    const next = applyReport(instance({ state: "Running" }), report({ state: "EXITED", released: true }));
    expect(next).toMatchObject({ state: "Exited", releasedAt: expect.any(String) });
  });
});

describe("withAgentConditions", () => {
  const t0 = new Date("2026-01-01T00:00:00Z");
  const t1 = new Date("2026-01-01T00:01:00Z");
  const ready = { type: "Ready", status: "True" as const, lastTransitionTime: t0.toISOString() };

  it("adds, updates and keeps the transition time while the status stays", () => {
    const refused = { type: "DesiredStateRefused", status: "True", reason: "OtherCluster", message: "m1" };
    const once = withAgentConditions([ready], [refused], t0);
    expect(once).toEqual([ready, { ...refused, lastTransitionTime: t0.toISOString() }]);
    const again = withAgentConditions(once, [{ ...refused, reason: "StaleRevision", message: "m2" }], t1);
    expect(again[1]).toMatchObject({ reason: "StaleRevision", message: "m2", lastTransitionTime: t0.toISOString() });
    const cleared = withAgentConditions(again, [{ ...refused, status: "False", reason: "Applied" }], t1);
    expect(cleared[1]).toMatchObject({ status: "False", reason: "Applied", lastTransitionTime: t1.toISOString() });
  });

  it("ignores conditions an agent may not set (Ready belongs to the control plane)", () => {
    const out = withAgentConditions([ready], [{ type: "Ready", status: "False", reason: "x", message: "" }], t1);
    expect(out).toEqual([ready]);
  });
});
