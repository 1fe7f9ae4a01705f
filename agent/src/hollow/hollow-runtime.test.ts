// The real reconciler over a HollowRuntime: an instance "runs" (RUNNING with
// a pid no real process has), leaves the desired set and is stopped and
// removed, and nothing is made on the host but the agent's state directory.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { InstanceStatus } from "@grove/proto";
import { Reconciler } from "../reconcile/reconciler";
import { desired, settle, spec, waitFor } from "../reconcile/test-helpers";
import { HollowRuntime } from "./hollow-runtime";

it("runs and stops instances through the real reconciler without touching the host", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hollow-unit-"));
  fs.mkdirSync(path.join(dir, "rootfs", "busybox"), { recursive: true });
  const runtime = new HollowRuntime();
  const statuses: InstanceStatus[] = [];
  const reconciler = new Reconciler({
    runtime,
    rootfsDir: path.join(dir, "rootfs"),
    stateDir: path.join(dir, "state"),
    onStatus: (s) => statuses.push(s),
    resyncIntervalMs: 0,
  });
  try {
    await reconciler.start();
    reconciler.setDesired(desired(spec("u1"), spec("u2")));
    await waitFor(() => runtime.running === 2, "two pretend containers");
    await settle(reconciler);
    const running = statuses.filter((s) => s.state === "RUNNING");
    expect(running.map((s) => s.uid).sort()).toEqual(["u1", "u2"]);
    expect(running.every((s) => Number(s.pid) >= 1 << 22)).toBe(true); // above any real pid
    reconciler.setDesired(desired(spec("u2")));
    await waitFor(() => runtime.list().length === 1, "u1 stopped and removed");
    expect(runtime.running).toBe(1);
    expect(statuses.some((s) => s.uid === "u1" && s.state === "EXITED")).toBe(true);
  } finally {
    reconciler.close();
    runtime.stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
