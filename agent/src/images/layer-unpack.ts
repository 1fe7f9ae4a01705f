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
  const hasher = new HashStream();
  const decompressed = decompress(createReadStream(job.blob, { highWaterMark: 1 << 20 }), job.compression, job.layer);
  decompressed.on("error", (err) => hasher.destroy(err));
  decompressed.pipe(hasher);
  await unpackLayer(hasher, job.root, job.layer);
  return hasher.digest();
}

/** A PassThrough that hashes what goes through it (the layer's diff_id). */
class HashStream extends Transform {
  private readonly hash = createHash("sha256");
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
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
    return wrapErrors(out, layer, "gzip");
  }
  const child = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const out = new PassThrough();
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
