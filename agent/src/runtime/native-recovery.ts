// NativeRuntime after an agent restart: the containers of its state
// directory are loaded again (a live shim is adopted, an exit recorded
// meanwhile is reported, what cannot be loaded is removed), and containers
// whose records were lost while they ran are found from the host (their
// cgroup and their grove-shim). Runs over the RecoveryHost the runtime hands it.
import * as fs from "node:fs";
import type * as net from "node:net";
import * as path from "node:path";

import type { NativeBinding } from "./native-binding";
import {
  exitFromRecord,
  readRecord,
  shimCall,
  waitForExit,
  type CgroupRef,
  type ShimStateAnswer,
} from "./shim-protocol";
import type { ContainerExit, ContainerHandle, RecoveredContainer } from "./types";
import { CONTAINER_ID_PATTERN } from "./validate";
import { removeHandlerCgroups } from "./runtime-handlers";

const SIGKILL = 9;
/** How long killAndAwaitShim waits for a shim that does not answer (stopped, or stuck). */
const SHIM_FINISH_TIMEOUT_MS = 10_000;

/** What recovery may see and do of a NativeRuntime. */
export interface RecoveryHost {
  readonly stateDir: string;
  readonly cgroup: CgroupRef;
  readonly native: NativeBinding;
  containerDir(id: string): string;
  socketPath(id: string): string;
  shimState(id: string): Promise<ShimStateAnswer | undefined>;
  /** Tracked already, or being started. */
  known(id: string): boolean;
  /** Registers a container whose shim runs and starts waiting for its exit. */
  track(id: string, pid: number, startedAt: Date, annotations: Record<string, string>): ContainerHandle;
  /** Registers a container that exited while nobody watched. */
  addExited(handle: ContainerHandle, exit: ContainerExit, annotations: Record<string, string>): void;
}

/** Every container of the state directory, then those whose records were lost. */
export async function recoverAll(h: RecoveryHost): Promise<RecoveredContainer[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(h.stateDir);
  } catch {
    names = []; // gone: the host may still run our containers (recoverLostRecords)
  }
  const out: RecoveredContainer[] = [];
  for (const id of names.sort()) {
    if (h.known(id)) continue;
    const found = await loadContainer(h, id, true);
    if (found !== undefined) out.push(found);
  }
  out.push(...(await recoverLostRecords(h)));
  return out;
}

/**
 * One container of the state directory: adopted when its shim answers,
 * reported exited when it has an exit record; else undefined (and, with
 * discardBroken, its processes killed, its cgroup and directory removed).
 */
export async function loadContainer(
  h: RecoveryHost,
  id: string,
  discardBroken: boolean,
): Promise<RecoveredContainer | undefined> {
  const dir = h.containerDir(id);
  let isDir = false;
  try {
    isDir = (await fs.promises.lstat(dir)).isDirectory();
  } catch {
    return undefined;
  }
  const record = isDir ? readRecord(dir, "spec.json") : undefined;
  if (record === undefined || !CONTAINER_ID_PATTERN.test(id)) {
    if (discardBroken) await discard(h, id);
    return undefined;
  }
  const annotations = record.spec.annotations ?? {};
  let exitRecord = readRecord(dir, "exit");
  const stateRecord = readRecord(dir, "state");
  let live: ShimStateAnswer | undefined;
  if (exitRecord === undefined) {
    try {
      live = await shimCall(h.socketPath(id), { op: "state" }, 5_000);
    } catch {
      // The shim writes the exit record before it stops answering: one that
      // finished between the read above and this call has written it by now.
      live = undefined;
      exitRecord = readRecord(dir, "exit");
    }
  }
  if (live !== undefined) {
    const handle = h.track(id, live.pid, new Date(live.startedAtMs), annotations);
    return { handle, annotations, resources: { ...record.spec.resources } };
  }
  if (exitRecord !== undefined) {
    const exit = exitFromRecord(exitRecord);
    const handle: ContainerHandle = {
      id,
      pid: stateRecord?.pid ?? 0,
      startedAt: new Date(stateRecord?.startedAtMs ?? exitRecord.finishedAtMs),
      exited: Promise.resolve(exit),
    };
    h.addExited(handle, exit, annotations);
    return { handle, annotations };
  }
  // Neither a live shim nor an exit: a start cut short, or a shim that was killed.
  if (discardBroken) await discard(h, id);
  return undefined;
}

async function discard(h: RecoveryHost, id: string): Promise<void> {
  const { mode, root, parent } = h.cgroup;
  if (CONTAINER_ID_PATTERN.test(id)) {
    try {
      await killAndAwaitShim(h, id);
      await h.native.removeCgroup(mode, root, parent, id);
      await removeHandlerCgroups(h.cgroup, id);
    } catch {
      // cleanupStale() retries cgroups
    }
  }
  await fs.promises.rm(h.containerDir(id), { recursive: true, force: true });
}

/**
 * SIGKILLs a container's cgroup and resolves once its shim is done with the
 * container's directory. The shim lives outside the cgroup and outlives its
 * init: it reaps it, then writes `exit` into the directory (tmp + rename) and
 * only then answers "wait" and unlinks its socket. A directory removed before
 * that gets the record written into it while rm walks it, and rm fails with
 * ENOTEMPTY (every HostCluster clean-up that found running containers did, and
 * cleanupStale stopped there, leaving the containers after it running). The
 * "wait" asked before the kill is answered after the record; a shim that is
 * gone (no socket, or nobody listening) writes nothing more. A shim that does
 * not answer within SHIM_FINISH_TIMEOUT_MS (stopped) is not waited for.
 */
export async function killAndAwaitShim(h: RecoveryHost, id: string): Promise<void> {
  const { mode, root, parent } = h.cgroup;
  let sock: net.Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  const finished = new Promise<void>((resolve) => {
    sock = waitForExit(h.socketPath(id), () => resolve());
    timer = setTimeout(resolve, SHIM_FINISH_TIMEOUT_MS);
  });
  try {
    await h.native.killCgroup(mode, root, parent, id, SIGKILL);
    await finished;
  } finally {
    clearTimeout(timer);
    sock?.destroy();
  }
}

/**
 * Containers whose records are gone (the state directory was removed while
 * they ran): a cgroup under the parent whose processes include one whose
 * parent is a grove-shim. The shim is asked (SIGUSR1) to write its
 * directory, state record and socket again; the container is then tracked
 * like an adopted one, without spec or annotations (recordSpec adds them).
 * Cgroups without a live shim are left to cleanupStale().
 */
async function recoverLostRecords(h: RecoveryHost): Promise<RecoveredContainer[]> {
  let ids: string[];
  try {
    ids = await h.native.listCgroups(h.cgroup.mode, h.cgroup.root, h.cgroup.parent);
  } catch {
    return [];
  }
  const out: RecoveredContainer[] = [];
  for (const id of ids.sort()) {
    if (h.known(id) || !CONTAINER_ID_PATTERN.test(id)) continue;
    const shimPid = shimOf(h.cgroup, id);
    if (shimPid === undefined) continue;
    await fs.promises.mkdir(h.stateDir, { recursive: true, mode: 0o700 });
    try {
      process.kill(shimPid, "SIGUSR1");
    } catch {
      continue;
    }
    let live: ShimStateAnswer | undefined;
    for (let i = 0; i < 60 && live === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (fs.existsSync(h.socketPath(id))) live = await h.shimState(id);
    }
    if (live === undefined) continue;
    const handle = h.track(id, live.pid, new Date(live.startedAtMs), {});
    out.push({ handle, annotations: {}, recordsLost: true });
  }
  return out;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** The grove-shim whose child is in the container's cgroup, if one is alive. */
function shimOf(cg: CgroupRef, id: string): number | undefined {
  const dirs =
    cg.mode === "v2"
      ? [path.join(cg.root, cg.parent, id)]
      : ["pids", "memory", "cpu,cpuacct", "cpu", "freezer"].map((c) => path.join(cg.root, c, cg.parent, id));
  for (const dir of dirs) {
    const procs = readText(path.join(dir, "cgroup.procs"));
    if (procs === undefined) continue;
    for (const pid of procs.split("\n").filter((l) => /^\d+$/.test(l))) {
      const ppid = /^PPid:\s*(\d+)$/m.exec(readText(`/proc/${pid}/status`) ?? "")?.[1];
      if (ppid !== undefined && readText(`/proc/${ppid}/comm`)?.trim() === "grove-shim") return Number(ppid);
    }
  }
  return undefined;
}
