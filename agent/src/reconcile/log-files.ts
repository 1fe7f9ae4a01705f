// Container logs live in <stateDir>/logs/<uid>.log (and <uid>.log.1, the
// rotated one, and <uid>.log.ts[.1], when their bytes arrived: grove-shim
// writes them): kept while the instance is desired (also once finished, and
// over an agent shutdown). When its uid leaves the desired set the log is
// kept as the previous log of its instance name, previous/<ns>_<name>.log*
// (`grove logs --previous`): one per instance name, replaced by the next one
// that ends, and deleted once no instance of that name has been desired here
// for PREVIOUS_KEEP_MS (as long as the control plane lists a stopped
// instance), so kept logs take at most one log's size (2 x --log-max) per
// instance name the node ran in that time.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { isPlainName } from "./instance-spec";

/** The files of one log: the current, the rotated one and their timestamp indexes. */
const SUFFIXES = [".log", ".log.1", ".log.ts", ".log.ts.1"];

/** How long the previous log of a name no longer desired is kept (the control plane lists stopped instances 10 min). */
export const PREVIOUS_KEEP_MS = 10 * 60_000;

/** Where the previous log of an instance name is kept. */
export function previousLogPath(logDir: string, namespace: string, name: string): string {
  return path.join(logDir, "previous", `${namespace}_${name}.log`);
}

/** Deletes an instance's log, its rotated predecessor and their timestamps. */
export async function removeLogs(logDir: string, uid: string): Promise<void> {
  if (!isPlainName(uid)) return;
  for (const s of SUFFIXES) await fs.rm(path.join(logDir, uid + s), { force: true });
}

/**
 * Keeps an instance's log as the previous log of its name (replacing the one
 * kept before); without a log of its own, the one kept before stays.
 */
export async function keepAsPrevious(logDir: string, uid: string, namespace: string, name: string): Promise<void> {
  if (!isPlainName(uid) || !isPlainName(namespace) || !isPlainName(name)) return removeLogs(logDir, uid);
  const src = path.join(logDir, `${uid}.log`);
  const has = await Promise.all(SUFFIXES.slice(0, 2).map((s) => exists(path.join(logDir, uid + s))));
  if (!has.some(Boolean)) return removeLogs(logDir, uid);
  const dest = previousLogPath(logDir, namespace, name);
  await fs.mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
  for (const s of SUFFIXES.map((x) => x.slice(4))) await fs.rm(dest + s, { force: true });
  for (const s of SUFFIXES.map((x) => x.slice(4))) {
    try {
      await fs.rename(src + s, dest + s);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  // When it was kept (rename keeps the last write's time), for prunePreviousLogs.
  const now = new Date();
  await fs.utimes(dest, now, now).catch(() => undefined);
}

/**
 * Deletes the previous logs of instance names for which `desired(namespace,
 * name)` is false and that were kept more than `keepMs` ago.
 */
export async function prunePreviousLogs(
  logDir: string,
  desired: (namespace: string, name: string) => boolean,
  keepMs = PREVIOUS_KEEP_MS,
): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(path.join(logDir, "previous"));
  } catch {
    return;
  }
  for (const file of names) {
    const m = /^([^_]+)_(.+?)\.log(\.1|\.ts|\.ts\.1)?$/.exec(file);
    if (m && desired(m[1]!, m[2]!)) continue;
    const kept = m ? await fs.stat(previousLogPath(logDir, m[1]!, m[2]!)).catch(() => undefined) : undefined;
    if (kept && Date.now() - kept.mtimeMs < keepMs) continue;
    await fs.rm(path.join(logDir, "previous", file), { force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch {
    return false;
  }
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
    const m = /^(.+)\.log(\.1|\.ts|\.ts\.1)?$/.exec(name);
    const uid = m?.[1];
    if (!uid || known(uid)) continue;
    await fs.rm(path.join(logDir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
