// What one image pull may cost the node: limits against decompression bombs
// and oversized layers, the free disk a pull must leave, and the directory
// `oci:` images must live under. The agent's flags (and `grove-agent image`)
// set them; each limit error names the flag that raises it.
import { InvalidArgumentError, type Command } from "commander";

export interface ImageLimits {
  /** A layer's compressed size as its manifest declares it (and as downloaded). */
  maxLayerBytes: number;
  /** A layer's uncompressed tar stream. */
  maxUncompressedBytes: number;
  /** Uncompressed bytes per compressed byte, once a layer is past RATIO_FLOOR_BYTES. */
  maxRatio: number;
  /** Tar entries in one layer. */
  maxEntries: number;
  /** Free bytes the store's file system must keep after a pull's layers are downloaded. */
  diskReserveBytes: number;
}

const GiB = 1024 ** 3;

export const DEFAULT_IMAGE_LIMITS: ImageLimits = {
  maxLayerBytes: 10 * GiB,
  maxUncompressedBytes: 50 * GiB,
  maxRatio: 100,
  maxEntries: 1_000_000,
  diskReserveBytes: 1 * GiB,
};

/**
 * Below this many uncompressed bytes the ratio is not checked: a small layer
 * (an empty tar is 10 KiB of zeros that gzip to 40 bytes) legitimately
 * compresses far better than 100:1, and 64 MiB harms no node.
 */
export const RATIO_FLOOR_BYTES = 64 * 1024 ** 2;

/** The flag that sets each limit, for error messages. */
export const LIMIT_FLAGS: Record<keyof ImageLimits, string> = {
  maxLayerBytes: "--image-max-layer-size",
  maxUncompressedBytes: "--image-max-uncompressed-size",
  maxRatio: "--image-max-ratio",
  maxEntries: "--image-max-entries",
  diskReserveBytes: "--image-disk-reserve",
};

/** The default directory `oci:` image references must be under. */
export const DEFAULT_OCI_DIR = "/var/lib/grove/oci";

/** "512M", "10G", "1T", "4096" (bytes; K/M/G/T are powers of 1024, an optional trailing B or iB). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (!m) throw new InvalidArgumentError("expected a size such as 4096, 512M, 10G or 1T");
  const unit = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2]!.toUpperCase() as "" | "K"]!;
  const n = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError("the size is too large");
  return n;
}

function parsePositiveInt(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function positiveSize(text: string): number {
  const n = parseSize(text);
  if (n < 1) throw new InvalidArgumentError("must be more than 0");
  return n;
}

/** Adds the limit and --oci-dir flags to a command (grove-agent and grove-agent image). */
export function addImageLimitOptions(c: Command, ociDirDefault = DEFAULT_OCI_DIR): Command {
  const d = DEFAULT_IMAGE_LIMITS;
  return c
    .option(
      "--oci-dir <dir>",
      `the only directory oci: image references may name (default ${ociDirDefault}); symlinks in it are not followed`,
    )
    .option(
      `${LIMIT_FLAGS.maxLayerBytes} <size>`,
      `largest compressed layer (default ${fmt(d.maxLayerBytes)})`,
      positiveSize,
    )
    .option(
      `${LIMIT_FLAGS.maxUncompressedBytes} <size>`,
      `largest uncompressed layer (default ${fmt(d.maxUncompressedBytes)})`,
      positiveSize,
    )
    .option(
      `${LIMIT_FLAGS.maxRatio} <n>`,
      `largest uncompressed/compressed ratio of a layer past 64M (default ${d.maxRatio})`,
      parsePositiveInt,
    )
    .option(
      `${LIMIT_FLAGS.maxEntries} <n>`,
      `most tar entries in one layer (default ${d.maxEntries})`,
      parsePositiveInt,
    )
    .option(
      `${LIMIT_FLAGS.diskReserveBytes} <size>`,
      `free disk a pull must leave on the image store's file system (default ${fmt(d.diskReserveBytes)})`,
      parseSize,
    );
}

export interface ImageLimitFlags {
  ociDir?: string;
  imageMaxLayerSize?: number;
  imageMaxUncompressedSize?: number;
  imageMaxRatio?: number;
  imageMaxEntries?: number;
  imageDiskReserve?: number;
}

/** The limits the parsed flags ask for (defaults for the rest). */
export function imageLimitsFrom(opts: ImageLimitFlags): ImageLimits {
  const d = DEFAULT_IMAGE_LIMITS;
  return {
    maxLayerBytes: opts.imageMaxLayerSize ?? d.maxLayerBytes,
    maxUncompressedBytes: opts.imageMaxUncompressedSize ?? d.maxUncompressedBytes,
    maxRatio: opts.imageMaxRatio ?? d.maxRatio,
    maxEntries: opts.imageMaxEntries ?? d.maxEntries,
    diskReserveBytes: opts.imageDiskReserve ?? d.diskReserveBytes,
  };
}

/** The most uncompressed bytes a layer of `compressed` bytes may unpack to. */
export function uncompressedLimitOf(limits: ImageLimits, compressed: number): { bytes: number; flag: string } {
  const byRatio = Math.max(RATIO_FLOOR_BYTES, limits.maxRatio * compressed);
  return byRatio < limits.maxUncompressedBytes
    ? { bytes: byRatio, flag: `${LIMIT_FLAGS.maxRatio} ${limits.maxRatio}` }
    : { bytes: limits.maxUncompressedBytes, flag: LIMIT_FLAGS.maxUncompressedBytes };
}

function fmt(n: number): string {
  for (const [unit, size] of [
    ["T", 1024 ** 4],
    ["G", 1024 ** 3],
    ["M", 1024 ** 2],
  ] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}
