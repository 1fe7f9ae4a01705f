// Network namespaces the agent makes for instances: a file bind-mounted on
// /proc/<pid>/ns/net (util-linux `unshare --net=FILE`), so that the
// namespace outlives the process that made it and can be found again after
// an agent restart. The container joins it (ContainerSpec.netnsPath).
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import { promisify } from "node:util";

import { unescapeMount } from "../mountinfo";

const exec = promisify(execFile);

/** Creates a persistent network namespace at `file` (which must not be mounted yet). */
export async function createNetns(file: string): Promise<void> {
  await fs.writeFile(file, "", { flag: "a", mode: 0o600 });
  if (await isMounted(file)) return;
  try {
    await exec("unshare", [`--net=${file}`, "true"]);
  } catch (err) {
    throw new Error(`cannot create network namespace ${file}: ${stderrOf(err)}`);
  }
}

/** Unmounts and removes a namespace file; a missing one is fine. */
export async function removeNetns(file: string): Promise<void> {
  for (let i = 0; i < 5 && (await isMounted(file)); i++) {
    try {
      await exec("umount", [file]);
    } catch (err) {
      if (i === 4) throw new Error(`cannot unmount network namespace ${file}: ${stderrOf(err)}`);
    }
  }
  await fs.rm(file, { force: true });
}

export async function isMounted(file: string): Promise<boolean> {
  const info = await fs.readFile("/proc/self/mountinfo", "utf8");
  return info.split("\n").some((l) => unescapeMount(l.split(" ")[4] ?? "") === file);
}

function stderrOf(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr || e.message || String(err)).trim();
}
