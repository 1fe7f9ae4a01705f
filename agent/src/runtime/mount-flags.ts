// The nosuid, nodev and noexec of the mount a host path is on, read from /proc/self/mountinfo.
//
// An OCI runtime (runc, grove-runtime) makes a read-only bind as a bind and then a remount
// with exactly the flags the bundle names, and a remount clears the flags it does not name:
// a volume whose source is on a nosuid,nodev,noexec mount would come out without them. The
// native path keeps them (it reads them with fstatvfs before its remount); the bundle writer
// names them with this.
import * as fs from "node:fs";

import { readMountinfoSync, unescapeMount } from "../mountinfo";

export type SourceFlag = "nosuid" | "nodev" | "noexec";
const FLAGS: readonly SourceFlag[] = ["nosuid", "nodev", "noexec"];

interface MountLine {
  id: string;
  parent: string;
  point: string;
  options: string[];
}

function parse(mountinfo: string): MountLine[] {
  const out: MountLine[] = [];
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    if (f.length < 6) continue;
    out.push({ id: f[0]!, parent: f[1]!, point: unescapeMount(f[4]!), options: f[5]!.split(",") });
  }
  return out;
}

const under = (point: string, p: string) => point === "/" || p === point || p.startsWith(`${point}/`);

/**
 * The mount that path `p` (absolute, symlinks resolved) is on: from the root mount down, at
 * each level the child mounts whose mount point leads to p, the last mounted of them (a mount
 * made later over a shorter path hides the ones beneath it; one stacked on a mount point has
 * the mount below as its parent).
 */
function mountOf(mounts: MountLine[], p: string): MountLine | undefined {
  const ids = new Set(mounts.map((m) => m.id));
  let cur = mounts.find((m) => m.point === "/" && !ids.has(m.parent));
  for (let depth = 0; cur && depth < mounts.length; depth++) {
    const id = cur.id;
    const next = mounts.filter((m) => m.parent === id && m.id !== id && under(m.point, p)).pop();
    if (!next) break;
    cur = next;
  }
  return cur;
}

/** Which of nosuid, nodev and noexec the mount holding the absolute, resolved path `p` has. */
export function flagsOfMountAt(p: string, mountinfo: string): SourceFlag[] {
  const m = mountOf(parse(mountinfo), p);
  return m ? FLAGS.filter((f) => m.options.includes(f)) : [];
}

/**
 * Which of nosuid, nodev and noexec the mount holding `source` has ([] when the source cannot
 * be resolved: the start then fails on it, naming it). `mountinfo` gives the table: a bundle
 * with several read-only volumes passes mountinfoOnce() so it is read once.
 */
export function sourceMountFlags(source: string, mountinfo: () => string = readMountinfoSync): SourceFlag[] {
  let real: string;
  try {
    real = fs.realpathSync(source);
  } catch {
    return [];
  }
  return flagsOfMountAt(real, mountinfo());
}
