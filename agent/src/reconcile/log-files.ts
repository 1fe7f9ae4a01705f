// Container logs live in <stateDir>/logs/<uid>.log (and <uid>.log.1, the
// rotated one): kept while the instance is desired (also once finished, and
// over an agent shutdown), deleted when its uid leaves the desired set.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { isPlainName } from "./instance-spec";

/** Deletes an instance's log and its rotated predecessor. */
export async function removeLogs(logDir: string, uid: string): Promise<void> {
  if (!isPlainName(uid)) return;
  for (const name of [`${uid}.log`, `${uid}.log.1`]) await fs.rm(path.join(logDir, name), { force: true });
}

/**
 * Deletes the logs of instances for which `known` is false (removed while
 * the agent was down); returns the file names deleted.
 */
export async function removeOrphanLogs(logDir: string, known: (uid: string) => boolean): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(logDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = /^(.+)\.log(\.1)?$/.exec(name);
    const uid = m?.[1];
    if (!uid || known(uid)) continue;
    await fs.rm(path.join(logDir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
