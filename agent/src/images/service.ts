// ImageService: what the agent does with images. pull() resolves a
// reference to a manifest (choosing this node's platform from an index),
// fetches the config and the layers (concurrently, with a bound), verifies
// every digest and diff_id, and unpacks each layer once into its snapshot;
// mountRootfs() gives a container its own overlayfs root over those
// snapshots; unmountRootfs() takes it away again; gc() drops what nothing uses.
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { ImageError, isImageError } from "./errors";
import { DEFAULT_IMAGE_LIMITS, DEFAULT_OCI_DIR, LIMIT_FLAGS, uncompressedLimitOf, type ImageLimits } from "./limits";
import { formatReference, parseReference, type ImageReference } from "./reference";
import { RegistryClient, type Credentials, type RegistryHostConfig } from "./registry";
import { LayoutSource, RegistrySource, type FetchedManifest, type ImageSource } from "./sources";
import { ContentStore, type GcOptions, type GcResult } from "./store";
import {
  compressionOf,
  hostPlatform,
  isIndex,
  isManifest,
  DIGEST_PATTERN,
  type Descriptor,
  type ImageConfig,
  type ImageRecord,
  type Index,
  type LayerRecord,
  type Manifest,
  type Platform,
  type PullProgress,
} from "./types";
import { unpackBlob } from "./layer-unpack";
import { authorizeCached, pullIdentity, pulledBy } from "./pull-auth";
import { SharedLock, mapLimit } from "./concurrency";
import { isMountPoint, stderrOf, unmountRetrying } from "./mount-points";

const run = promisify(execFile);

export interface ImageServiceOptions {
  /** The store's directory (e.g. <agent state dir>/images). */
  root: string;
  registries?: Record<string, RegistryHostConfig>;
  /** Named credentials an App's imagePullSecret refers to: name -> registry -> credentials. */
  pullSecrets?: Record<string, Record<string, Credentials>>;
  /** Layers fetched and unpacked at the same time (default 4). */
  concurrency?: number;
  platform?: Platform;
  /** Delay between resumes of a dropped download (default 200 ms, growing). */
  retryDelayMs?: number;
  /** Sizes, ratio, entry count and disk reserve a pull must keep to (limits.ts; defaults for the rest). */
  limits?: Partial<ImageLimits>;
  /** The only directory oci: references may name (default /var/lib/grove/oci). */
  ociDir?: string;
}

export interface PullOptions {
  /** Name of a pull secret in the agent's image config. */
  pullSecret?: string;
  onProgress?: (progress: PullProgress) => void;
}

export class ImageService {
  readonly store: ContentStore;
  private readonly client: RegistryClient;
  private readonly platform: Platform;
  readonly limits: ImageLimits;
  /** Pulls and mounts hold it shared; gc() holds it exclusively. */
  private readonly lock = new SharedLock();

  constructor(private readonly options: ImageServiceOptions) {
    this.store = new ContentStore(options.root);
    this.client = new RegistryClient({ hosts: options.registries ?? {} });
    this.platform = options.platform ?? hostPlatform();
    this.limits = { ...DEFAULT_IMAGE_LIMITS, ...options.limits };
  }

  async init(): Promise<void> {
    await this.store.init();
  }

  close(): void {
    this.client.close();
  }

  /** Pulls (or finds) an image; resolves with its record. */
  pull(reference: string, opts: PullOptions = {}): Promise<ImageRecord> {
    const ref = parseReference(reference);
    const canonical = formatReference(ref);
    return this.lock.shared(() => this.pullAuthorized(ref, canonical, opts));
  }

  /**
   * A pull shared by concurrent starts with the same credentials (a start
   * without any cannot fail another's pull, nor ride on it), then each
   * start's own right to the image from the cache (pull-auth.ts).
   */
  private async pullAuthorized(ref: ImageReference, canonical: string, opts: PullOptions): Promise<ImageRecord> {
    if (ref.kind !== "registry")
      return this.store.once(`pull:${canonical}`, () => this.pullLocked(ref, canonical, opts));
    const creds = this.credentialsFor(ref.registry, opts.pullSecret);
    const identity = pullIdentity(ref.registry, opts.pullSecret, creds);
    const image = await this.store.once(`pull:${canonical}:${identity}`, () => this.pullLocked(ref, canonical, opts));
    const deps = { client: this.client, store: this.store, retryDelayMs: this.options.retryDelayMs };
    await authorizeCached(deps, image, ref, opts.pullSecret, creds);
    return image;
  }

  /** pull() then mountRootfs() under one lock, so gc() cannot come between them. */
  prepareRootfs(
    id: string,
    reference: string,
    opts: PullOptions = {},
  ): Promise<{ rootfs: string; image: ImageRecord }> {
    const ref = parseReference(reference);
    const canonical = formatReference(ref);
    return this.lock.shared(async () => {
      const image = await this.pullAuthorized(ref, canonical, opts);
      return { rootfs: await this.mountLocked(id, image), image };
    });
  }

  async listImages(): Promise<ImageRecord[]> {
    return this.store.listImages();
  }

  gc(opts: GcOptions = {}): Promise<GcResult> {
    return this.lock.exclusive(() => this.store.gc(opts));
  }

  private credentialsFor(registry: string, secret: string | undefined): Credentials | undefined {
    if (!secret) return this.options.registries?.[registry]?.auth;
    const creds = this.options.pullSecrets?.[secret]?.[registry];
    if (!creds) {
      throw new ImageError(
        "UNAUTHORIZED",
        `pull secret ${JSON.stringify(secret)} has no credentials for ${registry} in the agent's image config`,
      );
    }
    return creds;
  }

  private async pullLocked(ref: ImageReference, canonical: string, opts: PullOptions): Promise<ImageRecord> {
    if (ref.kind === "registry") {
      const existing = await this.store.getImage(canonical);
      // Like Kubernetes' IfNotPresent for digests and non-latest tags.
      if (existing && (ref.digest !== undefined || ref.tag !== "latest")) return existing;
    }
    const creds = ref.kind === "registry" ? this.credentialsFor(ref.registry, opts.pullSecret) : undefined;
    const source: ImageSource =
      ref.kind === "oci"
        ? await LayoutSource.open(this.store, ref, this.options.ociDir ?? DEFAULT_OCI_DIR)
        : new RegistrySource(this.client, this.store, ref, creds, this.options.retryDelayMs);
    try {
      const wanted = ref.kind === "oci" ? (ref.tag ?? "") : (ref.digest ?? ref.tag!);
      let fetched = await source.fetchManifest(wanted);
      if (ref.kind === "registry" && ref.digest && fetched.digest !== ref.digest) {
        throw new ImageError("DIGEST_MISMATCH", `${source.name}: manifest ${ref.digest} hashes to ${fetched.digest}`);
      }
      let doc = parseJson<Manifest & Index>(fetched.body, `manifest of ${canonical}`);
      const mediaType = doc.mediaType ?? fetched.mediaType;
      if (isIndex(mediaType) || (mediaType === undefined && Array.isArray(doc.manifests))) {
        const chosen = this.choosePlatform(doc as Index, canonical);
        fetched = await source.fetchManifest(chosen.digest);
        if (fetched.digest !== chosen.digest) {
          throw new ImageError(
            "DIGEST_MISMATCH",
            `${source.name}: manifest ${chosen.digest} hashes to ${fetched.digest}`,
          );
        }
        doc = parseJson<Manifest & Index>(fetched.body, `manifest ${chosen.digest} of ${canonical}`);
      }
      const manifest = this.checkManifest(doc, fetched, canonical);
      if (!validSize(manifest.config.size) || manifest.config.size > CONFIG_LIMIT) {
        throw new ImageError(
          "LIMIT_EXCEEDED",
          `${canonical}: config ${manifest.config.digest} declares ${manifest.config.size} bytes (at most ${CONFIG_LIMIT})`,
        );
      }
      await source.fetchBlob(manifest.config, () => undefined);
      const config = parseJson<ImageConfig>(
        await this.store.readBlob(manifest.config.digest),
        `config of ${canonical}`,
      );
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== manifest.layers.length) {
        throw new ImageError(
          "INVALID_IMAGE",
          `${canonical}: ${manifest.layers.length} layers but ${diffIds.length} diff_ids in its config`,
        );
      }
      const layers: LayerRecord[] = manifest.layers.map((l, i) => ({
        digest: l.digest,
        diffId: diffIds[i]!,
        mediaType: l.mediaType,
        size: l.size,
      }));
      for (const l of layers) {
        if (!DIGEST_PATTERN.test(l.digest) || !DIGEST_PATTERN.test(l.diffId)) {
          throw new ImageError("INVALID_IMAGE", `${canonical}: layer ${l.digest} / diff_id ${l.diffId} is not sha256`);
        }
        if (compressionOf(l.mediaType) === undefined) {
          throw new ImageError("UNSUPPORTED", `${canonical}: layer ${l.digest} has media type ${l.mediaType}`);
        }
        if (!validSize(l.size))
          throw new ImageError("INVALID_IMAGE", `${canonical}: layer ${l.digest} has no valid size`);
        // The declared size bounds the download too (sources stop past it).
        if (l.size > this.limits.maxLayerBytes) {
          throw new ImageError(
            "LIMIT_EXCEEDED",
            `${canonical}: layer ${l.digest} is ${l.size} bytes, more than the limit of ${this.limits.maxLayerBytes} (${LIMIT_FLAGS.maxLayerBytes})`,
          );
        }
      }
      await this.checkFreeDisk(canonical, layers);

      const progress: PullProgress = {
        image: canonical,
        layersDone: 0,
        layersTotal: layers.length,
        bytesDone: 0,
        bytesTotal: layers.reduce((n, l) => n + l.size, 0),
      };
      const tell = () => opts.onProgress?.({ ...progress });
      tell();
      await mapLimit(layers, this.options.concurrency ?? 4, async (layer) => {
        if (!(await this.store.hasSnapshot(layer.diffId))) {
          await source.fetchBlob({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, (n) => {
            progress.bytesDone += n;
            tell();
          });
          await this.unpack(layer);
        } else {
          progress.bytesDone += layer.size;
        }
        progress.layersDone++;
        tell();
      });

      // Stored last: a pull that failed leaves no manifest behind.
      await this.store.writeBlob(fetched.digest, fetched.body);
      const record: ImageRecord = {
        reference: canonical,
        manifestDigest: fetched.digest,
        configDigest: manifest.config.digest,
        layers,
        config: config.config ?? {},
        size: progress.bytesTotal,
        pulledAt: new Date().toISOString(),
        ...(ref.kind === "registry" ? { pullAuth: pulledBy(pullIdentity(ref.registry, opts.pullSecret, creds)) } : {}),
      };
      await this.store.putImage(record);
      return record;
    } finally {
      await source.close();
    }
  }

  private choosePlatform(index: Index, canonical: string): Descriptor {
    const entries = (index.manifests ?? []).filter((d) => isManifest(d.mediaType) || d.mediaType === undefined);
    const want = this.platform;
    const match = entries.find(
      (d) =>
        d.platform?.os === want.os &&
        d.platform.architecture === want.architecture &&
        (want.variant === undefined || d.platform.variant === undefined || d.platform.variant === want.variant),
    );
    if (match) return match;
    if (entries.length === 1 && entries[0]!.platform === undefined) return entries[0]!;
    const offered = entries
      .map((d) =>
        d.platform
          ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join("/")
          : "unspecified",
      )
      .join(", ");
    const wanted = [want.os, want.architecture, want.variant].filter(Boolean).join("/");
    throw new ImageError(
      "NO_MATCHING_PLATFORM",
      `${canonical}: no manifest for ${wanted} (the index offers: ${offered || "nothing"})`,
    );
  }

  private checkManifest(doc: Manifest, fetched: FetchedManifest, canonical: string): Manifest {
    const mediaType = doc.mediaType ?? fetched.mediaType;
    if (mediaType !== undefined && !isManifest(mediaType)) {
      throw new ImageError("UNSUPPORTED", `${canonical}: manifest media type ${mediaType}`);
    }
    if (doc.mediaType && fetched.mediaType && isManifest(fetched.mediaType) && doc.mediaType !== fetched.mediaType) {
      throw new ImageError(
        "INVALID_IMAGE",
        `${canonical}: Content-Type ${fetched.mediaType} but mediaType ${doc.mediaType}`,
      );
    }
    if (doc.schemaVersion !== 2 || !doc.config || !Array.isArray(doc.layers)) {
      throw new ImageError("INVALID_IMAGE", `${canonical}: not a schema 2 image manifest`);
    }
    if (!DIGEST_PATTERN.test(doc.config.digest)) {
      throw new ImageError("INVALID_IMAGE", `${canonical}: config digest ${doc.config.digest} is not sha256`);
    }
    return doc;
  }

  /**
   * Refuses a pull whose layers (the ones not stored yet, at their declared
   * compressed sizes) would leave less than the reserve free on the store's
   * file system.
   */
  private async checkFreeDisk(canonical: string, layers: readonly LayerRecord[]): Promise<void> {
    let needed = 0;
    for (const l of layers) {
      if (!(await this.store.hasSnapshot(l.diffId)) && !(await this.store.hasBlob(l.digest))) needed += l.size;
    }
    const st = await fs.statfs(this.store.root);
    const free = st.bavail * st.bsize;
    const reserve = this.limits.diskReserveBytes;
    if (free - needed < reserve) {
      throw new ImageError(
        "INSUFFICIENT_DISK",
        `${canonical}: ${free} bytes free on the image store's file system (${this.store.root}), the layers need ${needed}, and ${reserve} must stay free (${LIMIT_FLAGS.diskReserveBytes})`,
      );
    }
  }

  /** Unpacks a stored layer blob into its snapshot, verifying the diff_id. */
  private unpack(layer: LayerRecord): Promise<void> {
    return this.store.once(`snapshot:${layer.diffId}`, async () => {
      if (await this.store.hasSnapshot(layer.diffId)) return;
      const tmp = await this.store.tempDir("snapshot");
      const uncompressed = uncompressedLimitOf(this.limits, layer.size);
      try {
        const diffId = await unpackBlob({
          blob: this.store.blobPath(layer.digest),
          compression: compressionOf(layer.mediaType)!,
          root: tmp,
          layer: layer.digest,
          limits: {
            maxUncompressedBytes: uncompressed.bytes,
            uncompressedFlag: uncompressed.flag,
            maxEntries: this.limits.maxEntries,
            entriesFlag: LIMIT_FLAGS.maxEntries,
          },
        });
        if (diffId !== layer.diffId) {
          throw new ImageError(
            "DIGEST_MISMATCH",
            `layer ${layer.digest} unpacks to diff_id ${diffId}, the config says ${layer.diffId}`,
          );
        }
        await fs.rename(tmp, this.store.snapshotPath(layer.diffId));
      } catch (err) {
        await fs.rm(tmp, { recursive: true, force: true });
        // A blob over the limits fails every pull that names it: do not keep it.
        if (isImageError(err, "LIMIT_EXCEEDED")) await fs.rm(this.store.blobPath(layer.digest), { force: true });
        throw err;
      }
    });
  }

  // ---- container root filesystems

  private async mountLocked(id: string, image: ImageRecord): Promise<string> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id))
      throw new ImageError("MOUNT_FAILED", `container id ${JSON.stringify(id)} is not a plain name`);
    const dir = this.store.containerDir(id);
    const merged = path.join(dir, "rootfs");
    await this.store
      .writeContainerRef(id, {
        reference: image.reference,
        manifestDigest: image.manifestDigest,
        configDigest: image.configDigest,
        layers: image.layers.map((l) => l.digest),
        diffIds: image.layers.map((l) => l.diffId),
      })
      .catch(async () => {
        await fs.mkdir(dir, { recursive: true, mode: 0o700 });
        await this.store.writeContainerRef(id, {
          reference: image.reference,
          manifestDigest: image.manifestDigest,
          configDigest: image.configDigest,
          layers: image.layers.map((l) => l.digest),
          diffIds: image.layers.map((l) => l.diffId),
        });
      });
    if (await isMountPoint(merged)) return merged;
    for (const d of ["upper", "work", "rootfs", "empty"])
      await fs.mkdir(path.join(dir, d), { recursive: true, mode: 0o755 });
    for (const l of image.layers) {
      if (!(await this.store.hasSnapshot(l.diffId))) {
        throw new ImageError(
          "MOUNT_FAILED",
          `${image.reference}: snapshot of layer ${l.digest} is missing; pull the image again`,
        );
      }
    }
    // lowerdir lists the top layer first; relative paths (cwd = store root) keep the option short.
    const lower =
      image.layers.length === 0
        ? [path.relative(this.store.root, path.join(dir, "empty"))]
        : [...image.layers].reverse().map((l) => this.store.snapshotRel(l.diffId));
    const rel = (p: string) => path.relative(this.store.root, p);
    const options = `lowerdir=${lower.join(":")},upperdir=${rel(path.join(dir, "upper"))},workdir=${rel(path.join(dir, "work"))}`;
    if (options.length > 3800)
      throw new ImageError(
        "MOUNT_FAILED",
        `${image.reference}: too many layers for one overlay mount (${image.layers.length})`,
      );
    try {
      await run("mount", ["-t", "overlay", "overlay", "-o", options, merged], { cwd: this.store.root });
    } catch (err) {
      throw new ImageError("MOUNT_FAILED", `overlay mount for ${id}: ${stderrOf(err)}`);
    }
    return merged;
  }

  /** Unmounts a container's overlay root and removes its upper and work dirs. Idempotent. */
  async unmountRootfs(id: string): Promise<void> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) return;
    const dir = this.store.containerDir(id);
    const merged = path.join(dir, "rootfs");
    try {
      await unmountRetrying(merged);
    } catch (err) {
      throw new ImageError("MOUNT_FAILED", (err as Error).message);
    }
    await fs.rm(dir, { recursive: true, force: true });
  }

  /** Unmounts and removes every container root (at agent start: the runtime removed their containers). */
  async cleanupContainers(keep: ReadonlySet<string> = new Set()): Promise<string[]> {
    const removed: string[] = [];
    for (const c of await this.store.listContainers()) {
      if (keep.has(c.id)) continue;
      await this.unmountRootfs(c.id);
      removed.push(c.id);
    }
    return removed;
  }
}

/** The config blob's cap (as for manifests). */
const CONFIG_LIMIT = 4 << 20;

function validSize(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/** Parses a manifest or config; the error never quotes the bytes (V8's messages do). */
function parseJson<T>(body: Buffer, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    throw new ImageError("INVALID_IMAGE", `${what} is not valid JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ImageError("INVALID_IMAGE", `${what} is not a JSON object`);
  return value as T;
}
