// Resize in place (resize.ts) through the reconciler, against the FakeRuntime.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { InstanceStatus } from "@grove/proto";
import { FakeRuntime } from "../runtime/fake";
import { Reconciler } from "./reconciler";
import { callsOf, desired, spec, START_MS, settle as settleQueue } from "./test-helpers";

describe("Reconciler: live resize of a running instance", () => {
  let runtime: FakeRuntime;
  let reports: InstanceStatus[];
  let stateDir: string;
  let reconciler: Reconciler;
  let now: number;
  const bigger = { cpuMillis: "500", memoryBytes: String(128 * 2 ** 20), pids: "128" };

  beforeEach(() => {
    runtime = new FakeRuntime({ yieldInCalls: true, clock: () => START_MS });
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

  const settle = () => settleQueue(reconciler);
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
    expect(callsOf(runtime).filter((c) => c.startsWith("start") || c.startsWith("stop"))).toEqual(["start u1"]);
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
    runtime.failNextUpdate(new Error("write memory.limit_in_bytes: Device or resource busy"));
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
    const updateCalls = () => callsOf(runtime).filter((c) => c.startsWith("update")).length;
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
    runtime.failNextUpdate(new Error("EBUSY"));
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
    runtime.failNextUpdate(new Error("EBUSY"));
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
    expect(callsOf(runtime).filter((c) => c.startsWith("start"))).toEqual([]);
  });
});
