// TemplateRoots: a private root for every instance of a root filesystem
// directory (an App's `rootfs: NAME`). The directory, the template, is the
// read-only lower layer of an overlayfs; the instance's writes land in its
// own upper layer under the agent's state, <root>/<uid>/{upper,work,rootfs},
// which is removed with the instance. So no instance can change the files
// another one (or the agent, resolving `security.user`) sees, and nothing a
// container writes ends up in a host directory others can reach: <root> is
// 0700 and the overlay is mounted nosuid,nodev.
//
// The container binds the overlay into its own mount namespace, so it keeps
// running on it when the agent dies; the next agent run keeps the roots of
// the containers it adopts (cleanup(keep)) and removes the others.
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { stderrOf, unmountRetrying } from "./mount-points";

const run = promisify(execFile);

const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/** overlayfs splits its options at "," and lowerdir at ":"; mount(8) at whitespace. */
const UNSAFE_OPTION_CHARS = /[,:\\\s]/;

/** A template that cannot be used (missing, not a directory, writable by others): the instance's fault. */
export class InvalidTemplateError extends Error {
  override readonly name = "InvalidTemplateError";
}

export interface TemplateRootsOptions {
  /** The directory holding the templates (the agent's --rootfs-dir). */
  rootfsDir: string;
  /** Where instances' upper, work and merged directories go (e.g. <agent state dir>/roots). */
  root: string;
}

export class TemplateRoots {
  constructor(private readonly options: TemplateRootsOptions) {}

  /**
   * Creates the roots directory (0700, so a setuid file a container leaves in
   * its upper layer is out of reach of the node's other users) and the
   * templates' directory when it is missing (0700 as well). Returns warnings
   * about an existing templates' directory others may enter.
   */
  async init(): Promise<string[]> {
    await fs.mkdir(this.options.root, { recursive: true, mode: 0o700 });
    await fs.chmod(this.options.root, 0o700);
    const warnings: string[] = [];
    const dir = this.options.rootfsDir;
    const st = await fs.stat(dir).catch(() => undefined);
    if (!st) await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    else if ((st.mode & 0o077) !== 0 || st.uid !== 0) {
      warnings.push(
        `${dir} (mode 0${(st.mode & 0o777).toString(8)}, owner ${st.uid}) can be entered by users other than root: ` +
          "make it root's, mode 0700",
      );
    }
    return warnings;
  }

  /**
   * The template's real path. Throws InvalidTemplateError when it is no
   * directory or anyone but root may write to it (it is shared by every
   * instance that names it).
   */
  async template(name: string): Promise<string> {
    if (name === "" || name === "." || name === ".." || /[/\\\0]/.test(name)) {
      throw new InvalidTemplateError(
        `rootfs ${JSON.stringify(name)} must be the plain name of a directory in ${this.options.rootfsDir}`,
      );
    }
    const given = path.join(this.options.rootfsDir, name);
    let real: string;
    try {
      real = await fs.realpath(given);
    } catch {
      throw new InvalidTemplateError(`rootfs ${JSON.stringify(name)}: ${given} does not exist`);
    }
    const st = await fs.stat(real);
    if (!st.isDirectory())
      throw new InvalidTemplateError(`rootfs ${JSON.stringify(name)}: ${given} is not a directory`);
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) {
      throw new InvalidTemplateError(
        `rootfs ${JSON.stringify(name)}: ${given} (owner ${st.uid}, mode 0${(st.mode & 0o777).toString(8)}) ` +
          "must be owned by root and writable by no one else (deploy/make-rootfs.sh builds it so)",
      );
    }
    if (UNSAFE_OPTION_CHARS.test(real)) {
      throw new InvalidTemplateError(
        `rootfs ${JSON.stringify(name)}: ${real} holds a character overlayfs options cannot carry (",", ":", "\\" or white space)`,
      );
    }
    return real;
  }

  /**
   * Mounts a fresh private root of `template` (a path template() returned)
   * for container `id`; returns the merged directory. A leftover of the same
   * id is removed first: every start begins on the pristine template.
   */
  async mount(id: string, template: string): Promise<string> {
    const dir = this.dir(id);
    await this.unmount(id);
    const upper = path.join(dir, "upper");
    const work = path.join(dir, "work");
    const merged = path.join(dir, "rootfs");
    await fs.mkdir(dir, { mode: 0o700 });
    for (const d of [upper, work, merged]) await fs.mkdir(d, { mode: 0o755 });
    if (UNSAFE_OPTION_CHARS.test(dir)) {
      throw new Error(`${dir} holds a character overlayfs options cannot carry (",", ":", "\\" or white space)`);
    }
    const options = `nosuid,nodev,lowerdir=${template},upperdir=${upper},workdir=${work}`;
    try {
      await run("mount", ["-t", "overlay", "overlay", "-o", options, merged]);
    } catch (err) {
      throw new Error(`overlay mount of ${template} for ${id}: ${stderrOf(err)}`);
    }
    return merged;
  }

  /** Unmounts a container's private root and removes its layers. Idempotent. */
  async unmount(id: string): Promise<void> {
    const dir = this.dir(id);
    const merged = path.join(dir, "rootfs");
    await unmountRetrying(merged);
    await fs.rm(dir, { recursive: true, force: true });
  }

  /** Unmounts and removes every private root but those of `keep` (adopted containers); returns their ids. */
  async cleanup(keep: ReadonlySet<string> = new Set()): Promise<string[]> {
    const ids = await fs.readdir(this.options.root).catch(() => [] as string[]);
    const removed: string[] = [];
    for (const id of ids) {
      if (keep.has(id) || !ID_PATTERN.test(id) || id === "." || id === "..") continue;
      await this.unmount(id);
      removed.push(id);
    }
    return removed;
  }

  private dir(id: string): string {
    if (!ID_PATTERN.test(id) || id === "." || id === "..") {
      throw new Error(`container id ${JSON.stringify(id)} is not a plain name`);
    }
    return path.join(this.options.root, id);
  }
}
