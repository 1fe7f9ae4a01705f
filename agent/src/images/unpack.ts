// Unpacks one layer tar into its own, empty snapshot directory, in overlayfs
// form: a ".wh.NAME" entry becomes a 0/0 character device NAME, and
// ".wh..wh..opq" marks its directory opaque (trusted.overlay.opaque=y), so
// that the snapshots stack as overlay lower layers per the OCI layer spec.
//
// Safety does not rest on the tar library: every entry name is resolved by
// this file, component by component with lstat, inside the snapshot. An
// absolute name, a ".." component, a parent that is a symlink (a write
// through a link), a hard link to anything outside the snapshot, and device
// nodes are rejected with an UNSAFE_LAYER error naming the layer and the
// path. Files are opened with O_CREAT|O_EXCL|O_NOFOLLOW after the old entry
// is unlinked, so the last component is never followed either. Nothing else
// writes into a snapshot while it is unpacked (it is a fresh private
// directory), so what lstat saw is what open acts on.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import * as tar from "tar-stream";
import { ImageError } from "./errors";

const run = promisify(execFile);

/** The process umask, read once (process.umask() without an argument is deprecated). */
const UMASK = ((): number => {
  try {
    const m = /^Umask:\s+([0-7]+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m ? parseInt(m[1]!, 8) : 0o777;
  } catch {
    return 0o777;
  }
})();
const IS_ROOT = process.getuid?.() === 0;

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";

export interface UnpackStats {
  entries: number;
  bytes: number;
  whiteouts: number;
  opaqueDirs: number;
}

/** Splits a tar entry name into safe components; throws for absolute names and "..". */
export function entryComponents(name: string, layer: string, what = "entry"): string[] {
  if (name.includes("\0")) throw unsafe(layer, name, `${what} name contains NUL`);
  if (name.startsWith("/")) throw unsafe(layer, name, `${what} is an absolute path`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw unsafe(layer, name, `${what} has a ".." component`);
  return parts;
}

function unsafe(layer: string, entry: string, why: string): ImageError {
  return new ImageError("UNSAFE_LAYER", `layer ${layer}: ${JSON.stringify(entry)}: ${why}; nothing was unpacked`);
}

/**
 * Unpacks the (uncompressed) tar stream `source` into the empty directory
 * `root`. `layer` names the layer in errors (its digest).
 */
export async function unpackLayer(
  source: Readable,
  root: string,
  layer: string,
  limits?: { maxEntries: number; entriesFlag: string },
): Promise<UnpackStats> {
  const unpacker = new LayerUnpacker(root, layer, limits);
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (header: tar.Header, entryStream: unknown, next: (err?: Error | null) => void) => {
      const stream = entryStream as Readable;
      unpacker.entry(header, stream).then(
        () => next(),
        (err: unknown) => {
          stream.resume();
          next(err as Error);
        },
      );
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
    source.on("error", (err) => extract.destroy(err));
  });
  source.pipe(extract);
  await done;
  await unpacker.finish();
  return unpacker.stats;
}

class LayerUnpacker {
  readonly stats: UnpackStats = { entries: 0, bytes: 0, whiteouts: 0, opaqueDirs: 0 };
  /** Relative paths known to be real directories (not symlinks) in root. */
  private readonly dirs = new Set<string>([""]);
  private readonly seen = new Set<string>();
  /** Directories with the setgid bit: files created in them take the directory's group. */
  private readonly setgidDirs = new Set<string>();
  private readonly dirTimes: { rel: string; mtime: Date }[] = [];

  constructor(
    private readonly root: string,
    private readonly layer: string,
    private readonly limits?: { maxEntries: number; entriesFlag: string },
  ) {}

  async entry(h: tar.Header, body: Readable): Promise<void> {
    const type: string = h.type ?? "file";
    const parts = entryComponents(h.name, this.layer);
    this.stats.entries++;
    if (this.limits && this.stats.entries > this.limits.maxEntries) {
      throw new ImageError(
        "LIMIT_EXCEEDED",
        `layer ${this.layer}: more than ${this.limits.maxEntries} tar entries (${this.limits.entriesFlag}); nothing was unpacked`,
      );
    }
    if (parts.length === 0) {
      // The layer's root itself ("./"): nothing to create.
      return drain(body);
    }
    const base = parts[parts.length - 1]!;
    const parentParts = parts.slice(0, -1);

    if (base.startsWith(WHITEOUT_PREFIX)) {
      await drain(body);
      const parent = this.ensureParents(parentParts, h.name);
      if (base === OPAQUE_MARKER) {
        this.stats.opaqueDirs++;
        await run("setfattr", ["-h", "-n", "trusted.overlay.opaque", "-v", "y", path.join(this.root, parent)]);
        return;
      }
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      if (hidden === "" || hidden === "." || hidden === "..")
        throw unsafe(this.layer, h.name, "a bare or invalid whiteout");
      const rel = join(parent, hidden);
      this.claim(rel, h.name);
      this.clear(rel);
      await run("mknod", ["-m", "000", path.join(this.root, rel), "c", "0", "0"]);
      this.stats.whiteouts++;
      return;
    }

    const parent = this.ensureParents(parentParts, h.name);
    const rel = join(parent, base);
    // Only a path this layer already made can exist in its fresh snapshot.
    const existed = this.seen.has(rel) || this.dirs.has(rel);
    this.claim(rel, h.name);
    const abs = path.join(this.root, rel);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const uid = h.uid ?? 0;
    const gid = h.gid ?? 0;
    const mtime = h.mtime ?? new Date(0);

    switch (type) {
      case "directory": {
        const st = lstatOrUndefined(abs);
        if (!st || !st.isDirectory()) {
          if (st) this.clear(rel);
          fs.mkdirSync(abs, { mode: 0o700 });
        }
        fs.lchownSync(abs, uid, gid);
        fs.chmodSync(abs, mode);
        this.dirs.add(rel);
        if (mode & 0o2000) this.setgidDirs.add(rel);
        else this.setgidDirs.delete(rel);
        this.dirTimes.push({ rel, mtime });
        return drain(body);
      }
      case "file":
      case "contiguous-file": {
        if (existed) this.clear(rel);
        // Synchronous file system calls: an unpack is thousands of tiny
        // syscalls, and a hop through libuv's thread pool for each one
        // costs more than the syscall.
        const fd = fs.openSync(
          abs,
          fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
          // Created with its final mode when the umask cannot change it (skips a chmod).
          mode <= 0o777 && (mode & UMASK) === 0 ? mode : 0o600,
        );
        try {
          for await (const chunk of body) {
            const buf = chunk as Buffer;
            for (let off = 0; off < buf.length;) off += fs.writeSync(fd, buf, off, buf.length - off);
            this.stats.bytes += buf.length;
          }
          // Root creates files as 0:0 already (unless the directory is setgid).
          if (uid !== 0 || gid !== 0 || !IS_ROOT || this.setgidDirs.has(parent)) fs.fchownSync(fd, uid, gid);
          if (!(mode <= 0o777 && (mode & UMASK) === 0)) fs.fchmodSync(fd, mode);
          fs.futimesSync(fd, mtime, mtime);
        } finally {
          fs.closeSync(fd);
        }
        return;
      }
      case "symlink": {
        await drain(body);
        const target = h.linkname ?? "";
        if (target === "" || target.includes("\0")) throw unsafe(this.layer, h.name, "symlink without a valid target");
        if (existed) this.clear(rel);
        fs.symlinkSync(target, abs);
        fs.lchownSync(abs, uid, gid);
        fs.lutimesSync(abs, mtime, mtime);
        return;
      }
      case "link": {
        await drain(body);
        const targetName = h.linkname ?? "";
        const targetParts = entryComponents(targetName, this.layer, "hard link target");
        if (targetParts.length === 0) throw unsafe(this.layer, h.name, "hard link to the layer's root");
        const targetParent = this.resolveExistingParents(targetParts.slice(0, -1), h.name, targetName);
        const targetRel = join(targetParent, targetParts[targetParts.length - 1]!);
        const st = lstatOrUndefined(path.join(this.root, targetRel));
        if (!st) {
          throw unsafe(this.layer, h.name, `hard link target ${JSON.stringify(targetName)} is not in this layer`);
        }
        if (st.isDirectory()) throw unsafe(this.layer, h.name, "hard link to a directory");
        if (targetRel === rel) return;
        if (existed) this.clear(rel);
        fs.linkSync(path.join(this.root, targetRel), abs);
        return;
      }
      case "fifo": {
        await drain(body);
        if (existed) this.clear(rel);
        await run("mkfifo", ["-m", (mode & 0o777).toString(8), abs]);
        fs.lchownSync(abs, uid, gid);
        return;
      }
      case "character-device":
      case "block-device":
        throw unsafe(this.layer, h.name, `${type} entries are not allowed in image layers`);
      default:
        throw new ImageError("UNSUPPORTED", `layer ${this.layer}: ${JSON.stringify(h.name)}: tar entry type ${type}`);
    }
  }

  /**
   * Restores directory times last (creating entries inside changed them).
   * Only for directories still known to be real ones: a later entry may have
   * replaced one, or a parent, with a symlink (clear() forgets it and all
   * below), and utimes through it would set the times of whatever it names
   * outside the snapshot. lutimes also never follows the last component.
   */
  async finish(): Promise<void> {
    for (const { rel, mtime } of this.dirTimes.reverse()) {
      if (!this.dirs.has(rel)) continue;
      try {
        fs.lutimesSync(path.join(this.root, rel), mtime, mtime);
      } catch {
        /* removed by a later entry */
      }
    }
  }

  /** No path twice in one layer (the spec forbids it; it would make whiteouts ambiguous). */
  private claim(rel: string, name: string): void {
    if (this.seen.has(rel)) {
      // Directories may be repeated harmlessly by some tools; anything else is an error.
      if (!this.dirs.has(rel))
        throw new ImageError("INVALID_IMAGE", `layer ${this.layer}: duplicate entry ${JSON.stringify(name)}`);
    }
    this.seen.add(rel);
  }

  /** Creates missing parent directories; refuses to go through symlinks or non-directories. */
  private ensureParents(parts: string[], name: string): string {
    let rel = "";
    for (const part of parts) {
      const next = join(rel, part);
      if (!this.dirs.has(next)) {
        const st = lstatOrUndefined(path.join(this.root, next));
        if (!st) {
          fs.mkdirSync(path.join(this.root, next), { mode: 0o755 });
          // mkdir in a setgid directory inherits the bit (and the group).
          if (this.setgidDirs.has(rel)) this.setgidDirs.add(next);
        } else if (st.isSymbolicLink()) {
          throw unsafe(
            this.layer,
            name,
            `its parent ${JSON.stringify(next)} is a symlink: writing through it is refused`,
          );
        } else if (!st.isDirectory()) {
          throw new ImageError(
            "INVALID_IMAGE",
            `layer ${this.layer}: ${JSON.stringify(name)}: ${JSON.stringify(next)} is not a directory`,
          );
        }
        this.dirs.add(next);
      }
      rel = next;
    }
    return rel;
  }

  /** Like ensureParents, but nothing is created (for hard link targets). */
  private resolveExistingParents(parts: string[], name: string, target: string): string {
    let rel = "";
    for (const part of parts) {
      const next = join(rel, part);
      if (!this.dirs.has(next)) {
        const st = lstatOrUndefined(path.join(this.root, next));
        if (!st) throw unsafe(this.layer, name, `hard link target ${JSON.stringify(target)} is not in this layer`);
        if (!st.isDirectory()) {
          throw unsafe(
            this.layer,
            name,
            `hard link target ${JSON.stringify(target)} goes through ${JSON.stringify(next)}, which is not a directory`,
          );
        }
        this.dirs.add(next);
      }
      rel = next;
    }
    return rel;
  }

  /** Removes whatever is at rel (never following a symlink). */
  private clear(rel: string): void {
    const abs = path.join(this.root, rel);
    const st = lstatOrUndefined(abs);
    if (!st) return;
    if (st.isDirectory()) {
      fs.rmSync(abs, { recursive: true, force: true });
      for (const d of [...this.dirs]) if (d === rel || d.startsWith(rel + "/")) this.dirs.delete(d);
    } else {
      fs.unlinkSync(abs);
    }
  }
}

function join(parent: string, name: string): string {
  return parent === "" ? name : `${parent}/${name}`;
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  return fs.lstatSync(p, { throwIfNoEntry: false });
}

function drain(body: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    body.on("end", resolve);
    body.on("error", reject);
    body.resume();
  });
}
