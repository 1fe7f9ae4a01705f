// Resize in place: a running instance whose desired resources differ from
// the limits its container has gets them through runtime.update(), without
// a restart. A refusal (the kernel's, e.g. a memory limit below what the
// container uses on cgroup v1) leaves it running on its old limits,
// reported RUNNING/ResizeFailed; the same target is tried again only after
// resizeRetryDelayMs, a different one at once.
import type { InstanceSpec__Output } from "@grove/proto";
import { errorMessage, StatusReason } from "./instance-status";
import { formatLimits, resourcesOf, sameLimits } from "./instance-spec";
import type { ReconcilerCore, TrackedInstance } from "./types";

/** Gives a running instance the limits its desired spec asks for, when they differ from those it has. */
export async function resize(
  core: ReconcilerCore,
  tracked: TrackedInstance,
  spec: InstanceSpec__Output,
): Promise<void> {
  const want = resourcesOf(spec);
  const applied = tracked.applied;
  if (applied === undefined || sameLimits(want, applied)) {
    tracked.resizeFailure = undefined;
    // Asked to go back to the limits it has after a refused resize: nothing to
    // change, but the refusal no longer holds.
    if (tracked.status.reason === StatusReason.ResizeFailed) {
      core.report(tracked, { ...tracked.status, reason: "", message: "" });
    }
    return;
  }
  const target = JSON.stringify(want);
  const failed = tracked.resizeFailure;
  if (failed?.target === target && core.now() - failed.atMs < (core.options.resizeRetryDelayMs ?? 60_000)) return;
  const { uid } = tracked;
  try {
    if (core.runtime.update === undefined) throw new Error("this runtime cannot change a container's limits");
    core.log.info({ uid, from: applied, to: want }, "resizing instance in place");
    await core.runtime.update(uid, want);
  } catch (error) {
    tracked.resizeFailure = { target, atMs: core.now() };
    const message =
      `could not resize to ${formatLimits(want)}: ${errorMessage(error)}; ` +
      `running on with ${formatLimits(applied)}`;
    core.log.warn({ uid, from: applied, to: want, err: error }, "resize in place refused");
    if (tracked.status.reason !== StatusReason.ResizeFailed || tracked.status.message !== message) {
      core.report(tracked, {
        ...tracked.status,
        reason: StatusReason.ResizeFailed,
        message,
        appliedResources: { ...applied },
      });
    }
    return;
  }
  tracked.applied = want;
  tracked.resizeFailure = undefined;
  tracked.spec = spec;
  core.report(tracked, {
    ...tracked.status,
    reason: StatusReason.Resized,
    message: `limits changed in place from ${formatLimits(applied)} to ${formatLimits(want)}`,
    appliedResources: { ...want },
  });
}
