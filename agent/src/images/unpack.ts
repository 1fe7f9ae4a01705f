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
import { constants as C } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import * as tar from "tar-stream";
import { ImageError } from "./errors";

const run = promisify(execFile);

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
export async function unpackLayer(source: Readable, root: string, layer: string): Promise<UnpackStats> {
  const unpacker = new LayerUnpacker(root, layer);
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
  private readonly dirTimes: { rel: string; mtime: Date }[] = [];

  constructor(
    private readonly root: string,
    private readonly layer: string,
  ) {}

  async entry(h: tar.Header, body: Readable): Promise<void> {
    const type: string = h.type ?? "file";
    const parts = entryComponents(h.name, this.layer);
    this.stats.entries++;
    if (parts.length === 0) {
      // The layer's root itself ("./"): nothing to create.
      return drain(body);
    }
    const base = parts[parts.length - 1]!;
    const parentParts = parts.slice(0, -1);

    if (base.startsWith(WHITEOUT_PREFIX)) {
      await drain(body);
      const parent = await this.ensureParents(parentParts, h.name);
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
      await this.clear(rel);
      await run("mknod", ["-m", "000", path.join(this.root, rel), "c", "0", "0"]);
      this.stats.whiteouts++;
      return;
    }

    const parent = await this.ensureParents(parentParts, h.name);
    const rel = join(parent, base);
    this.claim(rel, h.name);
    const abs = path.join(this.root, rel);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const uid = h.uid ?? 0;
    const gid = h.gid ?? 0;
    const mtime = h.mtime ?? new Date(0);

    switch (type) {
      case "directory": {
        const st = await lstatOrUndefined(abs);
        if (!st || !st.isDirectory()) {
          if (st) await this.clear(rel);
          await fs.mkdir(abs, { mode: 0o700 });
        }
        await fs.lchown(abs, uid, gid);
        await fs.chmod(abs, mode);
        this.dirs.add(rel);
        this.dirTimes.push({ rel, mtime });
        return drain(body);
      }
      case "file":
      case "contiguous-file": {
        await this.clear(rel);
        const fh = await fs.open(abs, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) {
            await fh.write(chunk as Buffer);
            this.stats.bytes += (chunk as Buffer).length;
          }
          await fh.chown(uid, gid);
          await fh.chmod(mode);
          await fh.utimes(mtime, mtime);
        } finally {
          await fh.close();
        }
        return;
      }
      case "symlink": {
        await drain(body);
        const target = h.linkname ?? "";
        if (target === "" || target.includes("\0")) throw unsafe(this.layer, h.name, "symlink without a valid target");
        await this.clear(rel);
        await fs.symlink(target, abs);
        await fs.lchown(abs, uid, gid);
        await fs.lutimes(abs, mtime, mtime);
        return;
      }
      case "link": {
        await drain(body);
        const targetName = h.linkname ?? "";
        const targetParts = entryComponents(targetName, this.layer, "hard link target");
        if (targetParts.length === 0) throw unsafe(this.layer, h.name, "hard link to the layer's root");
        const targetParent = await this.resolveExistingParents(targetParts.slice(0, -1), h.name, targetName);
        const targetRel = join(targetParent, targetParts[targetParts.length - 1]!);
        const st = await lstatOrUndefined(path.join(this.root, targetRel));
        if (!st) {
          throw unsafe(this.layer, h.name, `hard link target ${JSON.stringify(targetName)} is not in this layer`);
        }
        if (st.isDirectory()) throw unsafe(this.layer, h.name, "hard link to a directory");
        if (targetRel === rel) return;
        await this.clear(rel);
        await fs.link(path.join(this.root, targetRel), abs);
        return;
      }
      case "fifo": {
        await drain(body);
        await this.clear(rel);
        await run("mkfifo", ["-m", (mode & 0o777).toString(8), abs]);
        await fs.lchown(abs, uid, gid);
        return;
      }
      case "character-device":
      case "block-device":
        throw unsafe(this.layer, h.name, `${type} entries are not allowed in image layers`);
      default:
        throw new ImageError("UNSUPPORTED", `layer ${this.layer}: ${JSON.stringify(h.name)}: tar entry type ${type}`);
    }
  }

  /** Restores directory times last (creating entries inside changed them). */
  async finish(): Promise<void> {
    for (const { rel, mtime } of this.dirTimes.reverse()) {
      await fs.utimes(path.join(this.root, rel), mtime, mtime).catch(() => undefined);
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
  private async ensureParents(parts: string[], name: string): Promise<string> {
    let rel = "";
    for (const part of parts) {
      const next = join(rel, part);
      if (!this.dirs.has(next)) {
        const st = await lstatOrUndefined(path.join(this.root, next));
        if (!st) {
          await fs.mkdir(path.join(this.root, next), { mode: 0o755 });
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
  private async resolveExistingParents(parts: string[], name: string, target: string): Promise<string> {
    let rel = "";
    for (const part of parts) {
      const next = join(rel, part);
      if (!this.dirs.has(next)) {
        const st = await lstatOrUndefined(path.join(this.root, next));
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
  private async clear(rel: string): Promise<void> {
    const abs = path.join(this.root, rel);
    const st = await lstatOrUndefined(abs);
    if (!st) return;
    if (st.isDirectory()) {
      await fs.rm(abs, { recursive: true, force: true });
      for (const d of [...this.dirs]) if (d === rel || d.startsWith(rel + "/")) this.dirs.delete(d);
    } else {
      await fs.unlink(abs);
    }
  }
}

function join(parent: string, name: string): string {
  return parent === "" ? name : `${parent}/${name}`;
}

async function lstatOrUndefined(p: string): Promise<import("node:fs").Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function drain(body: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    body.on("end", resolve);
    body.on("error", reject);
    body.resume();
  });
}
