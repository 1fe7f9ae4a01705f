// Mount-point helpers shared by the image service's container roots and the
// template roots: both unmount an overlay that may still be busy for a moment
// (a process of the container exiting), so both retry the same way.
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import { promisify } from "node:util";
import { Backoff } from "@grove/common";

const run = promisify(execFile);

/** Plain umount tries before a lazy one (`umount -l`), and the tries after it before giving up. */
const PLAIN_TRIES = 5;
const LAZY_TRIES = 2;

export async function isMountPoint(p: string): Promise<boolean> {
  const info = await fs.readFile("/proc/self/mountinfo", "utf8");
  return info.split("\n").some((line) => line.split(" ")[4] === p);
}

/** The first line of a failed command's stderr (or the error's message). */
export function stderrOf(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr?.trim() || e.message || String(err)).split("\n")[0]!;
}

/**
 * Unmounts `merged` until it is no longer a mount point: plain umount first,
 * then lazily, with a growing delay between tries (100 ms up to 600 ms).
 * Throws `unmount <path>: <stderr>` when the last try fails.
 */
export async function unmountRetrying(merged: string): Promise<void> {
  const backoff = new Backoff({ initialMs: 100, maxMs: 600 });
  for (let attempt = 0; await isMountPoint(merged); attempt++) {
    try {
      await run("umount", attempt < PLAIN_TRIES ? [merged] : ["-l", merged]);
    } catch (err) {
      if (attempt >= PLAIN_TRIES + LAZY_TRIES - 1) throw new Error(`unmount ${merged}: ${stderrOf(err)}`);
      await new Promise((r) => setTimeout(r, backoff.next()));
    }
  }
}
