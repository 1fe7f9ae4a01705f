// An ordered list of prepare steps, each with a set-up and a release, in the
// manner of crun's libcrun_container_run (a chain of small `ret = f(...)`
// calls) and containerd's plugins: a step does one thing, the runner keeps
// the order, and what was set up is released in reverse when the start fails
// or the instance goes. It replaces hand-kept "this is mounted" flags: the
// list of held steps IS the record of what an instance holds on the host.
import { withSpan } from "@grove/common";

/** One step of preparing something (an instance start): a set-up and, when it holds anything, its release. */
export interface PrepareStep<C> {
  /** Names the step in logs and in the held list (e.g. "network"). */
  readonly name: string;
  /** The step applies to this start at all (default: yes); a skipped step is neither set up nor released. */
  when?(ctx: C): boolean;
  /** Does the step's work; throws to end the start (the runner then releases what is held). */
  setup(ctx: C): Promise<void>;
  /**
   * Undoes the set-up. Called once for every set-up that began, also one that
   * threw part way (a CNI ADD that failed after it took an address, a pull
   * that failed after it mounted), so it copes with a partial state, and with
   * nothing there at all. Throws to be retried: it stays held until it succeeds.
   */
  release?(ctx: C): Promise<void>;
}

/** A step whose set-up began and whose release has not yet succeeded. */
export interface Held {
  readonly name: string;
  release(): Promise<void>;
}

/**
 * Runs the steps in order. A step with a release is put on `held` before its
 * set-up runs (so a set-up that throws part way is released too); the first
 * set-up that throws ends the run with its error, and `held` then holds
 * exactly what needs releasing (releaseHeld).
 */
export async function runSteps<C>(steps: readonly PrepareStep<C>[], ctx: C, held: Held[]): Promise<void> {
  for (const step of steps) {
    if (step.when && !step.when(ctx)) continue;
    const release = step.release;
    if (release) held.push({ name: step.name, release: () => release.call(step, ctx) });
    // A span per step under the instance's start, when traced: image pull, network set-up, runtime start.
    await withSpan(`start step ${step.name}`, () => step.setup(ctx), { childOnly: true });
  }
}

/**
 * Releases what is held, newest first. Each release is dropped from `held`
 * only once it succeeded, so a release that throws stops the unwind with its
 * error and the next call resumes with it: no release runs twice after it
 * succeeded, none is skipped.
 */
export async function releaseHeld(held: Held[]): Promise<void> {
  for (let last = held.at(-1); last !== undefined; last = held.at(-1)) {
    await last.release();
    held.pop();
  }
}

/**
 * Puts on `held`, in step order, the releases of steps named in `names`
 * without running their set-up: for things found already set up (a
 * container adopted after an agent restart runs on its root and network).
 */
export function holdWithoutSetup<C>(
  steps: readonly PrepareStep<C>[],
  ctx: C,
  names: ReadonlySet<string>,
  held: Held[],
): void {
  for (const step of steps) {
    const release = step.release;
    if (release && names.has(step.name)) held.push({ name: step.name, release: () => release.call(step, ctx) });
  }
}

/** Why a start ended: the status reason and message the instance is reported FAILED with. */
export class StartFailure extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = "StartFailure";
  }
}
