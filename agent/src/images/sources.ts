// Where an image's manifest and blobs come from: a registry (over the
// distribution API, with Range resume) or a local OCI image layout (a
// directory, or an oci-archive tarball unpacked to a temporary layout).
import { createHash } from "node:crypto";
import * as fsSync from "node:fs";
import { createReadStream } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Readable } from "node:stream";
import * as tar from "tar-stream";
import { Backoff, sleep } from "@grove/common";
import { ImageError, isImageError } from "./errors";
import type { LayoutReference, RegistryReference } from "./reference";
import { readBody, type Credentials, type RegistryClient } from "./registry";
import { NoFollowDir } from "./safe-open";
import { sha256, type ContentStore } from "./store";
import { MANIFEST_ACCEPT, type Descriptor, type Index } from "./types";

export interface FetchedManifest {
  body: Buffer;
  mediaType: string | undefined;
  digest: string;
}

export interface ImageSource {
  /** For messages: the registry/repository or the layout path. */
  readonly name: string;
  /** The manifest (or index) a tag or digest names. */
  fetchManifest(tagOrDigest: string): Promise<FetchedManifest>;
  /** Makes the store hold the verified blob; reports bytes as they arrive. */
  fetchBlob(desc: Descriptor, onBytes: (n: number) => void): Promise<void>;
  close(): Promise<void>;
}

const MANIFEST_LIMIT = 4 << 20;
const RETRIES = 5;

export class RegistrySource implements ImageSource {
  readonly name: string;
  private endpoint: string | undefined;

  constructor(
    private readonly client: RegistryClient,
    private readonly store: ContentStore,
    private readonly ref: RegistryReference,
    private readonly credentials: Credentials | undefined,
    private readonly retryDelayMs = 200,
  ) {
    this.name = `${ref.registry}/${ref.repository}`;
  }

  async fetchManifest(tagOrDigest: string): Promise<FetchedManifest> {
    const endpoints = this.endpoint ? [this.endpoint] : this.client.endpointsFor(this.ref.registry);
    let lastError: unknown;
    for (const host of endpoints) {
      try {
        const res = await this.client.get(this.ref.registry, host, this.ref.repository, `manifests/${tagOrDigest}`, {
          headers: { accept: MANIFEST_ACCEPT },
          ...(this.credentials ? { credentials: this.credentials } : {}),
        });
        const body = await readBody(res.body, MANIFEST_LIMIT, `manifest ${this.name}:${tagOrDigest}`);
        this.endpoint = host;
        const contentType = String(res.headers["content-type"] ?? "")
          .split(";")[0]!
          .trim();
        return { body, mediaType: contentType || undefined, digest: sha256(body) };
      } catch (err) {
        lastError = err;
        // A mirror that fails is skipped; the registry's own answer is final.
        if (host === endpoints[endpoints.length - 1]) break;
      }
    }
    throw lastError;
  }

  fetchBlob(desc: Descriptor, onBytes: (n: number) => void): Promise<void> {
    return this.store.once(`blob:${desc.digest}`, async () => {
      if (await this.store.hasBlob(desc.digest)) return onBytes(desc.size);
      const ingest = this.store.ingestPath(desc.digest);
      let hash = createHash("sha256");
      let offset = 0;
      // A partial download of an earlier attempt: hash what is there and go on from its end.
      try {
        const st = await fs.stat(ingest);
        if (st.size <= desc.size) {
          for await (const chunk of createReadStream(ingest)) hash.update(chunk as Buffer);
          offset = st.size;
          onBytes(offset);
        } else {
          await fs.unlink(ingest);
        }
      } catch {
        /* none */
      }
      let failures = 0;
      // Resumes wait retryDelayMs, doubling, at most RETRIES times that.
      const resumeBackoff = new Backoff({ initialMs: this.retryDelayMs, maxMs: this.retryDelayMs * RETRIES });
      while (offset < desc.size || (desc.size === 0 && offset === 0 && failures === 0)) {
        let body: Readable | undefined;
        try {
          const res = await this.client.get(
            this.ref.registry,
            this.endpoint ?? this.client.endpointsFor(this.ref.registry).at(-1)!,
            this.ref.repository,
            `blobs/${desc.digest}`,
            {
              ...(offset > 0 ? { headers: { range: `bytes=${offset}-` } } : {}),
              ...(this.credentials ? { credentials: this.credentials } : {}),
            },
          );
          body = res.body;
          if (offset > 0 && res.status !== 206) {
            // The server ignored Range: this body starts at byte 0.
            await fs.truncate(ingest, 0);
            onBytes(-offset);
            offset = 0;
            hash = createHash("sha256");
          }
          const fh = await fs.open(ingest, "a", 0o600);
          try {
            for await (const chunk of res.body) {
              const buf = chunk as Buffer;
              await fh.write(buf);
              hash.update(buf);
              offset += buf.length;
              onBytes(buf.length);
              if (offset > desc.size) break;
            }
          } finally {
            await fh.close();
          }
          if (desc.size === 0) break;
          if (offset < desc.size)
            throw new ImageError("REGISTRY_ERROR", `connection closed at byte ${offset} of ${desc.size}`);
        } catch (err) {
          body?.destroy();
          // 404, 401, ...: the registry's answer, not a dropped connection.
          if (isImageError(err) && err.code !== "REGISTRY_ERROR") throw err;
          if (++failures > RETRIES) {
            throw new ImageError(
              "REGISTRY_ERROR",
              `blob ${desc.digest} from ${this.name}: ${(err as Error).message} (gave up after ${RETRIES} resumes)`,
            );
          }
          await sleep(resumeBackoff.next());
        }
      }
      const actual = `sha256:${hash.digest("hex")}`;
      if (offset !== desc.size || actual !== desc.digest) {
        await fs.rm(ingest, { force: true });
        throw new ImageError(
          "DIGEST_MISMATCH",
          `blob ${desc.digest} from ${this.name}: got ${offset} bytes hashing to ${actual} (expected ${desc.size} bytes)`,
        );
      }
      await this.store.commitIngest(desc.digest);
    });
  }

  async close(): Promise<void> {}
}

/**
 * An OCI image layout directory (or an oci-archive unpacked into one) under
 * the agent's --oci-dir. Every file is opened through a NoFollowDir walk
 * (never through a symlink), and no error quotes what a file holds: a
 * layout is a host path an App names, so its contents must not leak into
 * the App's status.
 */
export class LayoutSource implements ImageSource {
  readonly name: string;

  private constructor(
    private readonly store: ContentStore,
    private readonly dir: NoFollowDir,
    private readonly cleanup: string | undefined,
    display: string,
  ) {
    this.name = display;
  }

  static async open(store: ContentStore, ref: LayoutReference, ociDir: string): Promise<LayoutSource> {
    const root = path.resolve(ociDir);
    const wanted = path.resolve(ref.path);
    const rel = path.relative(root, wanted);
    if (rel.startsWith("..") || path.isAbsolute(rel)) {
      throw new ImageError(
        "OCI_PATH_REFUSED",
        `oci:${ref.path}: oci: images must be under the agent's --oci-dir ${root}`,
      );
    }
    const rootDir = NoFollowDir.openRoot(root);
    let opened;
    try {
      opened = rootDir.open(rel);
    } finally {
      rootDir.close();
    }
    if (opened.kind === "directory") return new LayoutSource(store, opened.dir, undefined, ref.path);
    const tmp = await store.tempDir("archive");
    try {
      await extractArchive(createReadStream("", { fd: opened.fd, autoClose: true }), ref.path, tmp);
      return new LayoutSource(store, NoFollowDir.openRoot(tmp), tmp, ref.path);
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /** index.json entry by its ref.name annotation; no tag: the only entry. */
  async fetchManifest(tagOrDigest: string): Promise<FetchedManifest> {
    if (tagOrDigest.startsWith("sha256:")) {
      const body = this.readBlob(tagOrDigest, MANIFEST_LIMIT);
      return { body, mediaType: undefined, digest: tagOrDigest };
    }
    const layout = this.readJson<{ imageLayoutVersion?: unknown }>("oci-layout");
    if (typeof layout.imageLayoutVersion !== "string") {
      throw new ImageError(
        "INVALID_IMAGE",
        `${this.name} is not an OCI image layout: oci-layout has no imageLayoutVersion`,
      );
    }
    const index = this.readJson<Index>("index.json");
    const entries = Array.isArray(index.manifests) ? index.manifests : [];
    const tag = tagOrDigest === "" ? undefined : tagOrDigest;
    const matching =
      tag === undefined ? entries : entries.filter((d) => d.annotations?.["org.opencontainers.image.ref.name"] === tag);
    if (matching.length === 0) {
      // Only names that look like tags are listed (nothing else a file holds goes into a message).
      const tags = entries
        .map((d) => d.annotations?.["org.opencontainers.image.ref.name"])
        .filter((t): t is string => typeof t === "string" && /^[A-Za-z0-9_.:/-]{1,128}$/.test(t));
      throw new ImageError(
        "NOT_FOUND",
        `${this.name}: no image tagged ${JSON.stringify(tag)} (tags: ${tags.join(", ") || "none"})`,
      );
    }
    if (matching.length > 1) {
      throw new ImageError(
        "INVALID_IMAGE",
        `${this.name}: ${matching.length} images match; name one with oci:PATH:TAG`,
      );
    }
    const desc = matching[0]!;
    if (typeof desc.digest !== "string")
      throw new ImageError("INVALID_IMAGE", `${this.name}: index.json entry without a digest`);
    const body = this.readBlob(desc.digest, MANIFEST_LIMIT);
    return { body, mediaType: typeof desc.mediaType === "string" ? desc.mediaType : undefined, digest: desc.digest };
  }

  fetchBlob(desc: Descriptor, onBytes: (n: number) => void): Promise<void> {
    return this.store.once(`blob:${desc.digest}`, async () => {
      if (await this.store.hasBlob(desc.digest)) return onBytes(desc.size);
      const src = this.dir.openFile(this.blobRel(desc.digest));
      if (src.size !== desc.size) {
        fsSync.closeSync(src.fd);
        throw new ImageError(
          "DIGEST_MISMATCH",
          `${this.name}: blob ${desc.digest} has ${src.size} bytes (expected ${desc.size})`,
        );
      }
      const ingest = this.store.ingestPath(desc.digest);
      const hash = createHash("sha256");
      let size = 0;
      const fh = await fs.open(ingest, "w", 0o600);
      try {
        for await (const chunk of createReadStream("", { fd: src.fd, autoClose: true })) {
          await fh.write(chunk as Buffer);
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
          onBytes((chunk as Buffer).length);
          if (size > desc.size) break;
        }
      } catch (err) {
        await fs.rm(ingest, { force: true });
        throw new ImageError(
          "NOT_FOUND",
          `${this.name}: blob ${desc.digest}: ${(err as NodeJS.ErrnoException).code ?? "read failed"}`,
        );
      } finally {
        await fh.close();
      }
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== desc.digest || size !== desc.size) {
        await fs.rm(ingest, { force: true });
        throw new ImageError(
          "DIGEST_MISMATCH",
          `${this.name}: blob ${desc.digest} hashes to ${actual} (${size} bytes)`,
        );
      }
      await this.store.commitIngest(desc.digest);
    });
  }

  private blobRel(digest: string): string {
    if (!/^sha256:[a-f0-9]{64}$/.test(digest))
      throw new ImageError("INVALID_IMAGE", `${this.name}: a digest is not sha256:<64 hex>`);
    return `blobs/sha256/${digest.slice(7)}`;
  }

  /** A JSON file of the layout; a parse error never quotes the file (V8's messages do). */
  private readJson<T>(rel: string): T {
    const text = this.dir.readFile(rel, MANIFEST_LIMIT).toString("utf8");
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
      return value as T;
    } catch {
      throw new ImageError("INVALID_IMAGE", `${this.name} is not an OCI image layout: ${rel} is not a JSON object`);
    }
  }

  private readBlob(digest: string, limit: number): Buffer {
    const body = this.dir.readFile(this.blobRel(digest), limit);
    if (sha256(body) !== digest)
      throw new ImageError("DIGEST_MISMATCH", `${this.name}: blob ${digest} does not match its digest`);
    return body;
  }

  async close(): Promise<void> {
    this.dir.close();
    if (this.cleanup) await fs.rm(this.cleanup, { recursive: true, force: true });
  }
}

/** Unpacks only oci-layout, index.json and blobs/sha256/<hex> of an oci-archive. */
async function extractArchive(src: Readable, file: string, dir: string): Promise<void> {
  await fs.mkdir(path.join(dir, "blobs", "sha256"), { recursive: true });
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (h: tar.Header, entryStream: unknown, next: (err?: Error | null) => void) => {
      const stream = entryStream as Readable;
      const name = h.name.replace(/^\.\//, "");
      const ok =
        h.type === "file" &&
        (name === "oci-layout" || name === "index.json" || /^blobs\/sha256\/[a-f0-9]{64}$/.test(name));
      if (!ok) {
        stream.resume();
        stream.on("end", () => next());
        return;
      }
      void (async () => {
        const fh = await fs.open(path.join(dir, name), "wx", 0o600);
        try {
          for await (const chunk of stream) await fh.write(chunk as Buffer);
        } finally {
          await fh.close();
        }
      })().then(
        () => next(),
        (err: unknown) => next(err as Error),
      );
    });
    extract.on("finish", resolve);
    extract.on("error", (err) => reject(new ImageError("INVALID_IMAGE", `oci-archive ${file}: ${err.message}`)));
  });
  src.on("error", (err) => extract.destroy(err));
  src.pipe(extract);
  await done;
}
