// The node's content-addressed image store:
//
//   <root>/blobs/sha256/<hex>      manifests, configs and compressed layers, verified
//   <root>/ingest/<hex>            partial downloads (kept so a later attempt resumes)
//   <root>/snapshots/<hex>/        one unpacked layer per diff_id (overlay lower dir)
//   <root>/images/<key>.json       image records, by reference
//   <root>/containers/<id>/        a container's overlay: upper, work, rootfs (merged), image.json
//
// Everything is written to a temporary name and renamed into place, so a
// present name is complete. Blobs and snapshots are shared by every image
// that names them; concurrent requests for the same one share one download
// or unpack (in-flight maps).
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ImageError } from "./errors";
import { DIGEST_PATTERN, type ImageRecord } from "./types";

export interface GcOptions {
  /** Also drop image records no container uses (default false: only unreferenced content goes). */
  pruneImages?: boolean;
  /** Leave blobs, snapshots and partial downloads younger than this alone (default 10 min). */
  graceMs?: number;
  now?: number;
}

export interface GcResult {
  removedImages: string[];
  removedBlobs: string[];
  removedSnapshots: string[];
  removedIngests: string[];
}

export interface ContainerImageRef {
  reference: string;
  manifestDigest: string;
  configDigest: string;
  layers: string[];
  diffIds: string[];
}

export class ContentStore {
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(readonly root: string) {}

  async init(): Promise<void> {
    for (const d of ["blobs/sha256", "ingest", "snapshots", "images", "containers", "tmp"]) {
      await fs.mkdir(path.join(this.root, d), { recursive: true, mode: 0o700 });
    }
  }

  blobPath(digest: string): string {
    return path.join(this.root, "blobs", "sha256", hexOf(digest));
  }

  ingestPath(digest: string): string {
    return path.join(this.root, "ingest", hexOf(digest));
  }

  snapshotPath(diffId: string): string {
    return path.join(this.root, "snapshots", hexOf(diffId));
  }

  /** Relative to root: overlay lowerdir options stay short. */
  snapshotRel(diffId: string): string {
    return path.join("snapshots", hexOf(diffId));
  }

  containerDir(id: string): string {
    return path.join(this.root, "containers", id);
  }

  /** A fresh private directory under <root>/tmp (same filesystem: rename works). */
  async tempDir(prefix: string): Promise<string> {
    const dir = path.join(this.root, "tmp", `${prefix}-${randomBytes(6).toString("hex")}`);
    await fs.mkdir(dir, { mode: 0o700 });
    return dir;
  }

  async hasBlob(digest: string): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  async hasSnapshot(diffId: string): Promise<boolean> {
    return exists(this.snapshotPath(diffId));
  }

  async readBlob(digest: string, limit = 4 << 20): Promise<Buffer> {
    const p = this.blobPath(digest);
    const st = await fs.stat(p);
    if (st.size > limit) throw new ImageError("INVALID_IMAGE", `blob ${digest} is larger than ${limit} bytes`);
    return fs.readFile(p);
  }

  /** Stores bytes under their digest after checking it. */
  async writeBlob(digest: string, data: Buffer): Promise<void> {
    const actual = sha256(data);
    if (actual !== digest) {
      throw new ImageError("DIGEST_MISMATCH", `content of ${digest} hashes to ${actual}`);
    }
    if (await this.hasBlob(digest)) return;
    const tmp = path.join(this.root, "tmp", `blob-${randomBytes(6).toString("hex")}`);
    await fs.writeFile(tmp, data, { mode: 0o600 });
    await fs.rename(tmp, this.blobPath(digest));
  }

  /** Moves a verified ingest file into blobs/. */
  async commitIngest(digest: string): Promise<void> {
    await fs.rename(this.ingestPath(digest), this.blobPath(digest));
  }

  /** Runs `work` once for `key` at a time; concurrent callers share its result. */
  once<T>(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key);
    if (running) return running as Promise<T>;
    const p = work().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  // ---- image records

  private recordPath(reference: string): string {
    return path.join(this.root, "images", `${createHash("sha256").update(reference).digest("hex")}.json`);
  }

  async getImage(reference: string): Promise<ImageRecord | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.recordPath(reference), "utf8")) as ImageRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async putImage(record: ImageRecord): Promise<void> {
    await writeFileAtomic(this.recordPath(record.reference), JSON.stringify(record, null, 2) + "\n", this.root);
  }

  async removeImage(reference: string): Promise<boolean> {
    try {
      await fs.unlink(this.recordPath(reference));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }

  async listImages(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for (const f of await fs.readdir(path.join(this.root, "images"))) {
      if (!f.endsWith(".json")) continue;
      try {
        out.push(JSON.parse(await fs.readFile(path.join(this.root, "images", f), "utf8")) as ImageRecord);
      } catch {
        /* being replaced */
      }
    }
    return out.sort((a, b) => a.reference.localeCompare(b.reference));
  }

  // ---- containers' references (what GC must keep)

  async writeContainerRef(id: string, ref: ContainerImageRef): Promise<void> {
    await writeFileAtomic(path.join(this.containerDir(id), "image.json"), JSON.stringify(ref) + "\n", this.root);
  }

  async listContainers(): Promise<{ id: string; ref?: ContainerImageRef }[]> {
    const out: { id: string; ref?: ContainerImageRef }[] = [];
    for (const id of await fs.readdir(path.join(this.root, "containers"))) {
      try {
        const ref = JSON.parse(
          await fs.readFile(path.join(this.containerDir(id), "image.json"), "utf8"),
        ) as ContainerImageRef;
        out.push({ id, ref });
      } catch {
        out.push({ id });
      }
    }
    return out;
  }

  // ---- garbage collection

  /**
   * Removes blobs and snapshots that no image record and no container uses
   * (and, with pruneImages, the image records no container uses first).
   * Callers keep pulls out while this runs (ImageService does).
   */
  async gc(opts: GcOptions = {}): Promise<GcResult> {
    const grace = opts.graceMs ?? 10 * 60_000;
    const now = opts.now ?? Date.now();
    const result: GcResult = { removedImages: [], removedBlobs: [], removedSnapshots: [], removedIngests: [] };
    const containers = await this.listContainers();
    const liveBlobs = new Set<string>();
    const liveSnapshots = new Set<string>();
    const usedManifests = new Set<string>();
    for (const c of containers) {
      if (!c.ref) continue;
      usedManifests.add(c.ref.manifestDigest);
      for (const d of [c.ref.manifestDigest, c.ref.configDigest, ...c.ref.layers]) liveBlobs.add(hexOf(d));
      for (const d of c.ref.diffIds) liveSnapshots.add(hexOf(d));
    }
    for (const img of await this.listImages()) {
      if (opts.pruneImages && !usedManifests.has(img.manifestDigest)) {
        if (await this.removeImage(img.reference)) result.removedImages.push(img.reference);
        continue;
      }
      for (const d of [img.manifestDigest, img.configDigest, ...img.layers.map((l) => l.digest)])
        liveBlobs.add(hexOf(d));
      for (const l of img.layers) liveSnapshots.add(hexOf(l.diffId));
    }
    const old = async (p: string) => grace <= 0 || now - (await fs.lstat(p)).mtimeMs >= grace;

    for (const hex of await fs.readdir(path.join(this.root, "blobs", "sha256"))) {
      const p = path.join(this.root, "blobs", "sha256", hex);
      if (liveBlobs.has(hex) || !(await old(p))) continue;
      await fs.rm(p, { force: true });
      result.removedBlobs.push(`sha256:${hex}`);
    }
    for (const name of await fs.readdir(path.join(this.root, "snapshots"))) {
      const p = path.join(this.root, "snapshots", name);
      if (liveSnapshots.has(name) || !(await old(p))) continue;
      await fs.rm(p, { recursive: true, force: true });
      result.removedSnapshots.push(`sha256:${name}`);
    }
    for (const name of await fs.readdir(path.join(this.root, "ingest"))) {
      const p = path.join(this.root, "ingest", name);
      if (!(await old(p))) continue;
      await fs.rm(p, { force: true });
      result.removedIngests.push(name);
    }
    for (const name of await fs.readdir(path.join(this.root, "tmp"))) {
      const p = path.join(this.root, "tmp", name);
      if (await old(p)) await fs.rm(p, { recursive: true, force: true });
    }
    return result;
  }
}

export function hexOf(digest: string): string {
  if (!DIGEST_PATTERN.test(digest))
    throw new ImageError("INVALID_IMAGE", `digest ${JSON.stringify(digest)} is not sha256:<hex>`);
  return digest.slice("sha256:".length);
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export async function sha256File(p: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
  return `sha256:${h.digest("hex")}`;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

async function writeFileAtomic(target: string, text: string, root: string): Promise<void> {
  const tmp = path.join(root, "tmp", `w-${randomBytes(6).toString("hex")}`);
  await fs.writeFile(tmp, text, { mode: 0o600 });
  try {
    await fs.rename(tmp, target);
  } catch (err) {
    // e.g. the target's directory does not exist yet (writeContainerRef's first try): leave no tmp file.
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
