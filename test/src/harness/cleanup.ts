// Clean-up that reports what it could not remove. A tear-down runs every step
// even when one fails (a failed veth deletion must not leave the bridge and
// the directory behind too), records each failure, and throws them together
// at the end as one AggregateError naming every step: a clean-up failure
// fails the test file (jest reports afterAll errors) instead of vanishing
// into a `catch {}`, and the objects it left are named.
//
// Deleting something that is already gone (destroy() called twice, after a
// set-up that failed half-way, after an agent removed it itself) is not a
// failure: a step may say how to tell that the object is gone, and an error
// only counts when the object is still there afterwards.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";

export class Cleanup {
  private readonly failures: Error[] = [];

  constructor(private readonly what: string) {}

  /**
   * Runs one step. A throw is recorded (unless `gone()` says the object the
   * step removes is gone anyway) and the next step still runs.
   */
  async step(name: string, fn: () => unknown, gone?: () => boolean): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (gone?.()) return;
      this.failures.push(new Error(`${name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    }
  }

  /** Runs a command that removes something; see step(). */
  async command(cmd: string, args: string[], gone?: () => boolean): Promise<void> {
    await this.step(`${cmd} ${args.join(" ")}`, () => run(cmd, args), gone);
  }

  /** How many steps failed so far. */
  get failed(): number {
    return this.failures.length;
  }

  /** Throws an AggregateError listing every failed step; returns when none failed. */
  finish(): void {
    if (this.failures.length === 0) return;
    throw new AggregateError(
      this.failures,
      `${this.what}: ${this.failures.length} clean-up step(s) failed:\n  ${this.failures.map((e) => e.message).join("\n  ")}`,
    );
  }
}

function run(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(stderr || (err as Error).message);
  }
}

/** True when the machine's namespace has no link of that name. */
export function linkGone(name: string, netns?: string): boolean {
  try {
    execFileSync("ip", [...(netns ? ["-n", netns] : []), "link", "show", "dev", name], { stdio: "ignore" });
    return false;
  } catch {
    return true;
  }
}

/** True when /run/netns has no namespace of that name. */
export function netnsGone(name: string): boolean {
  return !fs.existsSync(`/run/netns/${name}`);
}

/** True when no cgroup hierarchy (v1 controllers, the v2 tree) has a directory for this parent. */
export function cgroupGone(parent: string): boolean {
  const root = "/sys/fs/cgroup";
  if (fs.existsSync(`${root}/${parent}`)) return false;
  let hierarchies: string[] = [];
  try {
    hierarchies = fs.readdirSync(root);
  } catch {
    return true;
  }
  return hierarchies.every((h) => !fs.existsSync(`${root}/${h}/${parent}`));
}
