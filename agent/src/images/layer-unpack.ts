// Unpacks one stored layer blob (decompress, hash the diff_id, unpack) —
// in a worker thread when the compiled worker is there, so that layers of
// one image unpack in parallel on separate cores (an unpack is thousands of
// small synchronous file system calls, which would otherwise share the
// agent's one JavaScript thread); in this thread otherwise.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import * as path from "node:path";
import { PassThrough, Transform, type Readable } from "node:stream";
import { Worker } from "node:worker_threads";
import * as zlib from "node:zlib";
import { ImageError, type ImageErrorCode } from "./errors";
import type { Compression } from "./types";
import { unpackLayer } from "./unpack";

export interface UnpackJob {
  /** The compressed layer blob. */
  blob: string;
  compression: Compression;
  /** An empty directory to unpack into. */
  root: string;
  /** The layer's digest, for messages. */
  layer: string;
  /** Decompression-bomb limits: uncompressed bytes (and the flag that sets them) and tar entries. */
  limits?: { maxUncompressedBytes: number; uncompressedFlag: string; maxEntries: number; entriesFlag: string };
}

export type UnpackReply = { ok: true; diffId: string } | { ok: false; code?: ImageErrorCode; message: string };

/** The compiled worker (agent/dist/images/unpack-worker.js), when there is one. */
function workerFile(): string | undefined {
  for (const candidate of [
    path.join(__dirname, "unpack-worker.js"),
    // Running from the TypeScript sources (tests): use the build's worker.
    path.join(__dirname, "..", "..", "dist", "images", "unpack-worker.js"),
  ]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Unpacks a layer blob into job.root; resolves with its diff_id (sha256 of the uncompressed tar). */
export async function unpackBlob(
  job: UnpackJob,
  useWorker = process.env.GROVE_UNPACK_IN_THREAD !== "1",
): Promise<string> {
  const file = useWorker ? workerFile() : undefined;
  if (!file) return unpackBlobHere(job);
  const reply = await new Promise<UnpackReply>((resolve, reject) => {
    const worker = new Worker(file, { workerData: job });
    let answered = false;
    worker.once("message", (m: UnpackReply) => {
      answered = true;
      resolve(m);
    });
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (!answered) reject(new Error(`unpack worker for layer ${job.layer} exited with ${code}`));
    });
  });
  if (!reply.ok) throw reply.code ? new ImageError(reply.code, reply.message) : new Error(reply.message);
  return reply.diffId;
}

/** The same, in this thread. */
export async function unpackBlobHere(job: UnpackJob): Promise<string> {
  const hasher = new HashStream(job);
  const decompressed = decompress(createReadStream(job.blob, { highWaterMark: 1 << 20 }), job.compression, job.layer);
  decompressed.on("error", (err) => hasher.destroy(err));
  // A limit hit stops the decompressor (and a zstd child) instead of leaving it paused.
  hasher.on("error", () => decompressed.destroy());
  decompressed.pipe(hasher);
  await unpackLayer(
    hasher,
    job.root,
    job.layer,
    job.limits ? { maxEntries: job.limits.maxEntries, entriesFlag: job.limits.entriesFlag } : undefined,
  );
  return hasher.digest();
}

/**
 * A PassThrough that hashes what goes through it (the layer's diff_id) and
 * fails LIMIT_EXCEEDED once more uncompressed bytes than the job allows
 * went through: a decompression bomb stops at the limit, not at a full disk.
 */
class HashStream extends Transform {
  private readonly hash = createHash("sha256");
  private bytes = 0;
  constructor(private readonly job: UnpackJob) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    const limits = this.job.limits;
    if (limits && this.bytes > limits.maxUncompressedBytes) {
      cb(
        new ImageError(
          "LIMIT_EXCEEDED",
          `layer ${this.job.layer}: uncompressed size exceeds the limit of ${limits.maxUncompressedBytes} bytes (${limits.uncompressedFlag}); nothing was unpacked`,
        ),
      );
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): string {
    return `sha256:${this.hash.digest("hex")}`;
  }
}

/** gzip through zlib; zstd through Debian's zstd(1) as a stream filter (Node 20's zlib has no zstd). */
function decompress(source: Readable, compression: Compression, layer: string): Readable {
  if (compression === "none") return source;
  if (compression === "gzip") {
    const gunzip = zlib.createGunzip();
    source.on("error", (err) => gunzip.destroy(err));
    const out = source.pipe(gunzip);
    out.on("error", () => undefined);
    const wrapped = wrapErrors(out, layer, "gzip");
    // Destroyed early (a limit, a bad entry): close the blob and zlib too.
    wrapped.on("close", () => {
      gunzip.destroy();
      source.destroy();
    });
    return wrapped;
  }
  const child = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  // Only the start of zstd's complaints is kept (it goes into a status).
  child.stderr.on("data", (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString().slice(0, 4096 - stderr.length);
  });
  const out = new PassThrough();
  // Destroyed early (a limit, a bad entry): stop zstd rather than leave it blocked on a full pipe.
  out.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    source.destroy();
  });
  child.on("error", (err) => out.destroy(new ImageError("UNSUPPORTED", `layer ${layer}: zstd: ${err.message}`)));
  child.on("close", (code) => {
    if (code !== 0)
      out.destroy(new ImageError("INVALID_IMAGE", `layer ${layer}: zstd failed: ${stderr.trim() || `exit ${code}`}`));
  });
  source.on("error", (err) => out.destroy(err));
  child.stdin.on("error", () => undefined);
  source.pipe(child.stdin);
  child.stdout.pipe(out);
  return out;
}

function wrapErrors(stream: Readable, layer: string, what: string): Readable {
  const out = new PassThrough();
  stream.on("error", (err) => out.destroy(new ImageError("INVALID_IMAGE", `layer ${layer}: ${what}: ${err.message}`)));
  stream.pipe(out);
  return out;
}
