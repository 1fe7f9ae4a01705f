import { holdWithoutSetup, releaseHeld, runSteps, type Held, type PrepareStep } from "./prepare-steps";

/** Steps 1..n that log "setup i" and "release i"; `failAt` throws from that set-up, `noRelease` hold nothing. */
function steps(
  n: number,
  log: string[],
  opts: { failAt?: number; noRelease?: number[]; skip?: number[] } = {},
): PrepareStep<{ made: number[] }>[] {
  return Array.from({ length: n }, (_, i) => {
    const k = i + 1;
    const step: PrepareStep<{ made: number[] }> = {
      name: `step ${k}`,
      when: () => !opts.skip?.includes(k),
      async setup(ctx) {
        log.push(`setup ${k}`);
        if (k === opts.failAt) throw new Error(`step ${k} failed`);
        ctx.made.push(k);
      },
    };
    if (!opts.noRelease?.includes(k)) {
      step.release = async () => {
        log.push(`release ${k}`);
      };
    }
    return step;
  });
}

describe("prepare steps", () => {
  it("runs the steps in order and holds each one that has a release", async () => {
    const log: string[] = [];
    const held: Held[] = [];
    const ctx = { made: [] as number[] };
    await runSteps(steps(4, log, { noRelease: [2] }), ctx, held);
    expect(log).toEqual(["setup 1", "setup 2", "setup 3", "setup 4"]);
    expect(ctx.made).toEqual([1, 2, 3, 4]);
    expect(held.map((h) => h.name)).toEqual(["step 1", "step 3", "step 4"]);
  });

  it("a failing step N ends the run; unwinding releases N (its set-up may have done part) then N-1..1, in reverse, each once", async () => {
    const log: string[] = [];
    const held: Held[] = [];
    await expect(runSteps(steps(6, log, { failAt: 4 }), { made: [] }, held)).rejects.toThrow("step 4 failed");
    // Steps after the failing one never ran.
    expect(log).toEqual(["setup 1", "setup 2", "setup 3", "setup 4"]);
    await releaseHeld(held);
    expect(log.slice(4)).toEqual(["release 4", "release 3", "release 2", "release 1"]);
    expect(held).toEqual([]);
    // Nothing is left to release: a second unwind releases nothing again.
    await releaseHeld(held);
    expect(log.filter((l) => l.startsWith("release"))).toHaveLength(4);
  });

  it("skips steps without a release and steps that do not apply, when running and when unwinding", async () => {
    const log: string[] = [];
    const held: Held[] = [];
    await expect(
      runSteps(steps(5, log, { failAt: 5, noRelease: [2], skip: [3] }), { made: [] }, held),
    ).rejects.toThrow();
    await releaseHeld(held);
    expect(log).toEqual(["setup 1", "setup 2", "setup 4", "setup 5", "release 5", "release 4", "release 1"]);
  });

  it("a release that throws stops the unwind and stays held; the next unwind resumes with it and never repeats one that succeeded", async () => {
    const log: string[] = [];
    const held: Held[] = [];
    const list = steps(4, log);
    let refusals = 1;
    const release3 = list[2]!.release!;
    list[2]!.release = async (ctx) => {
      if (refusals-- > 0) {
        log.push("release 3 refused");
        throw new Error("EBUSY");
      }
      await release3(ctx);
    };
    await runSteps(list, { made: [] }, held);
    await expect(releaseHeld(held)).rejects.toThrow("EBUSY");
    expect(held.map((h) => h.name)).toEqual(["step 1", "step 2", "step 3"]);
    await releaseHeld(held);
    expect(log.slice(4)).toEqual(["release 4", "release 3 refused", "release 3", "release 2", "release 1"]);
    expect(held).toEqual([]);
  });

  it("holds the releases of named steps without setting them up (for what adoption finds set up), in step order", async () => {
    const log: string[] = [];
    const held: Held[] = [];
    holdWithoutSetup(steps(4, log, { noRelease: [2] }), { made: [] }, new Set(["step 4", "step 1", "step 2"]), held);
    expect(log).toEqual([]);
    await releaseHeld(held);
    expect(log).toEqual(["release 4", "release 1"]);
  });
});
