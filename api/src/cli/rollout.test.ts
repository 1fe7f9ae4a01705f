// `grove rollout status`'s verdict on an App: when it is done, failed, or
// still going (and what it prints meanwhile).
import type { App } from "../schemas";
import { rolloutVerdict } from "./rollout";

function app(reason: string | undefined, over: Partial<NonNullable<App["status"]>> = {}, generation = 2): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "web", namespace: "default", generation },
    spec: { rootfs: "busybox", command: ["sleep"], instances: 3 },
    status: {
      observedGeneration: 2,
      updated: 1,
      available: 1,
      ...(reason ? { conditions: [{ type: "Progressing", status: "True", reason, message: `m ${reason}` }] } : {}),
      ...over,
    },
  };
}

describe("rolloutVerdict", () => {
  it("waits for the controller to observe the App's generation", () => {
    expect(rolloutVerdict(app("Complete", {}, 3))).toEqual({
      line: "app/web: waiting for the controller to observe generation 3",
    });
  });

  it("ends ok when Complete, failed when rolled back or stopped at the deadline", () => {
    expect(rolloutVerdict(app("Complete", { updated: 3, available: 3 })).done).toBe("ok");
    expect(rolloutVerdict(app("RolledBack"))).toEqual({ line: "app/web: RolledBack: m RolledBack", done: "failed" });
    expect(rolloutVerdict(app("ProgressDeadlineExceeded")).done).toBe("failed");
  });

  it("keeps following while updating, paused or waiting at a canary", () => {
    for (const r of ["Updating", "Paused", "CanaryPaused", undefined])
      expect(rolloutVerdict(app(r)).done).toBeUndefined();
    expect(rolloutVerdict(app("CanaryPaused")).line).toContain("waiting for grove rollout promote");
  });
});
