// loadContainer (what `grove-runtime state` and an agent's restart read) in
// the window where a container's shim finishes: the exit record is not there
// when it is read, and the shim is gone by the time it is asked. The stand-in
// shim does what grove-shim's finish() does in that order: writes `exit`
// (tmp + rename), closes its clients without an answer, unlinks its socket.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import type { NativeBinding } from "./native-binding";
import { loadContainer, type RecoveryHost } from "./native-recovery";
import type { ContainerExit, ContainerHandle } from "./types";

let stateDir: string;
beforeEach(() => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-recovery-"));
});
afterEach(() => {
  fs.rmSync(stateDir, { recursive: true, force: true });
});

function host(killed: string[]): RecoveryHost & { exited: [ContainerHandle, ContainerExit][] } {
  const exited: [ContainerHandle, ContainerExit][] = [];
  const native = {
    killCgroup: async (_m: string, _r: string, _p: string, id: string) => {
      killed.push(id);
      return 0;
    },
    removeCgroup: async () => undefined,
  } as unknown as NativeBinding;
  return {
    stateDir,
    cgroup: { mode: "v1", root: "/sys/fs/cgroup", parent: "grove-recovery-unit" },
    native,
    containerDir: (id) => path.join(stateDir, id),
    socketPath: (id) => path.join(stateDir, id, "shim.sock"),
    shimState: async () => undefined,
    known: () => false,
    track: () => {
      throw new Error("no live shim here: nothing to track");
    },
    addExited: (handle, exit) => exited.push([handle, exit]),
    exited,
  };
}

function writeSpec(dir: string, id: string): void {
  fs.mkdirSync(dir);
  const spec = { id, rootfs: "/", command: ["true"], env: {}, hostname: id, resources: {}, logPath: "/dev/null" };
  fs.writeFileSync(path.join(dir, "spec.json"), JSON.stringify({ spec, createdAtMs: 1 }));
}

/** A shim that finishes when it is asked: exit record, then gone without answering. */
async function finishingShim(dir: string, exitCode: number): Promise<net.Server> {
  const server = net.createServer((c) => {
    c.once("data", () => {
      const record = { exitCode, signal: 0, oomKilled: false, finishedAtMs: 1_000 };
      fs.writeFileSync(path.join(dir, "exit.tmp"), JSON.stringify(record));
      fs.renameSync(path.join(dir, "exit.tmp"), path.join(dir, "exit"));
      c.destroy();
      server.close();
    });
  });
  await new Promise<void>((resolve) => server.listen(path.join(dir, "shim.sock"), resolve));
  return server;
}

describe("loadContainer while the shim finishes", () => {
  it.each([false, true])("reports the exit the shim wrote after the first read (discardBroken %s)", async (discard) => {
    const killed: string[] = [];
    const h = host(killed);
    const dir = h.containerDir("ending");
    writeSpec(dir, "ending");
    await finishingShim(dir, 7);

    const found = await loadContainer(h, "ending", discard);

    expect(found).toBeDefined();
    await expect(found!.handle.exited).resolves.toMatchObject({ exitCode: 7, signal: 0, oomKilled: false });
    expect(h.exited.map(([handle, exit]) => [handle.id, exit.exitCode])).toEqual([["ending", 7]]);
    // Nothing was discarded: the record stays for whoever asks next.
    expect(killed).toEqual([]);
    expect(fs.existsSync(path.join(dir, "exit"))).toBe(true);
  });

  it("without a shim or an exit record there is nothing to load (and, discarding, it is removed)", async () => {
    const killed: string[] = [];
    const h = host(killed);
    const dir = h.containerDir("broken");
    writeSpec(dir, "broken");

    expect(await loadContainer(h, "broken", false)).toBeUndefined();
    expect(fs.existsSync(dir)).toBe(true);
    expect(await loadContainer(h, "broken", true)).toBeUndefined();
    expect(killed).toEqual(["broken"]);
    expect(fs.existsSync(dir)).toBe(false);
  });
});
