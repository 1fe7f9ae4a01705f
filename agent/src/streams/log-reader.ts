// Reads an instance's log for `grove logs`: the last N lines across the
// rotated and the current file, then (with follow) what is appended, across
// rotation.
//
// grove-shim (agent/native/src/shim.c) appends the container's stdout and
// stderr to <log>; before a write would take it past log_max bytes it renames
// <log> to <log>.1 (replacing the previous <log>.1) and opens a new <log>. So
// the log is <log>.1 (older, may be missing) followed by <log>.
import * as fs from "node:fs/promises";

const READ_CHUNK = 64 * 1024;

export interface LogReadOptions {
  /** Start with the last tailLines lines; negative: the whole log. */
  tailLines: number;
  /** Keep reading what is appended (across rotation) until the signal aborts. */
  follow: boolean;
  signal: AbortSignal;
  /** How often a follow looks for new data (default 200 ms). */
  pollMs?: number;
}

/** Where emitted bytes were read: the file (by inode, it survives rotation) and the offset in it. */
export interface LogPosition {
  ino: number;
  offset: number;
}

/** The files of a log, oldest first. */
export function logFiles(logPath: string): string[] {
  return [`${logPath}.1`, logPath];
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
}

async function readAt(fh: fs.FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

/**
 * Where the last `lines` lines start: an index into files and a byte offset
 * in that file. A last line without a final newline counts as a line.
 */
export async function tailStart(files: string[], lines: number): Promise<{ file: number; offset: number }> {
  if (lines < 0) return { file: 0, offset: 0 };
  const sizes = await Promise.all(files.map(sizeOf));
  let last = sizes.length - 1;
  while (last > 0 && sizes[last] === 0) last--;
  // Does the log end with a newline? Then that newline ends the last line
  // and the start lies after the (lines+1)-th newline from the end.
  let need = lines;
  if ((sizes[last] ?? 0) > 0) {
    const fh = await fs.open(files[last]!, "r");
    try {
      const tail = await readAt(fh, sizes[last]! - 1, 1);
      if (tail[0] === 0x0a) need++;
    } finally {
      await fh.close();
    }
  }
  if (need === 0) return { file: files.length - 1, offset: sizes[files.length - 1] ?? 0 };
  for (let f = files.length - 1; f >= 0; f--) {
    const size = sizes[f] ?? 0;
    if (size === 0) continue;
    const fh = await openIfExists(files[f]!);
    if (!fh) continue;
    try {
      let end = size;
      while (end > 0) {
        const start = Math.max(0, end - READ_CHUNK);
        const buf = await readAt(fh, start, end - start);
        for (let i = buf.length - 1; i >= 0; i--) {
          if (buf[i] === 0x0a && --need === 0) return { file: f, offset: start + i + 1 };
        }
        end = start;
      }
    } finally {
      await fh.close();
    }
  }
  return { file: 0, offset: 0 };
}

/** Opens a log file for reading; undefined when it does not exist (rotated away). */
async function openIfExists(file: string): Promise<fs.FileHandle | undefined> {
  try {
    return await fs.open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/**
 * Emits the log's bytes (in chunks of at most 64 KiB) from the tail start to
 * its end, then, with follow, what is appended until the signal aborts.
 * emit() may wait (flow control): reading waits with it. Throws when the log
 * does not exist and follow is off.
 */
export async function readLog(
  logPath: string,
  opts: LogReadOptions,
  emit: (data: Buffer, at: LogPosition) => Promise<void>,
): Promise<void> {
  const files = logFiles(logPath);
  const start = await tailStart(files, opts.tailLines);
  // The rotated file first (when the tail starts there), read to its end.
  for (let f = start.file; f < files.length - 1; f++) {
    const fh = await openIfExists(files[f]!);
    if (!fh) continue;
    try {
      await drain(fh, f === start.file ? start.offset : 0);
    } finally {
      await fh.close();
    }
  }
  let current: { fh: fs.FileHandle; ino: number; offset: number } | undefined;
  const openCurrent = async (offset: number): Promise<boolean> => {
    try {
      const fh = await fs.open(logPath, "r");
      current = { fh, ino: (await fh.stat()).ino, offset };
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  };
  try {
    const opened = await openCurrent(start.file === files.length - 1 ? start.offset : 0);
    if (!opened && !opts.follow) {
      const rotated = await sizeOf(files[0]!);
      if (rotated === 0) throw Object.assign(new Error(`no log at ${logPath}`), { code: "ENOENT" });
      return;
    }
    if (current) current.offset = await drain(current.fh, current.offset);
    while (opts.follow && !opts.signal.aborted) {
      await sleep(opts.pollMs ?? 200, opts.signal);
      if (opts.signal.aborted) break;
      if (!current) {
        await openCurrent(0);
        if (!current) continue;
      }
      const cur: { fh: fs.FileHandle; ino: number; offset: number } = current;
      cur.offset = await drain(cur.fh, cur.offset);
      let st: { ino: number; size: number } | undefined;
      try {
        st = await fs.stat(logPath);
      } catch {
        st = undefined;
      }
      if (st && st.ino !== cur.ino) {
        // Rotated: finish the old file (we still hold it open), go on with the new one.
        await drain(cur.fh, cur.offset);
        await cur.fh.close();
        current = undefined;
        // Rotated twice since we looked: the file in between is <log>.1 now.
        await drainRotatedUnless(cur.ino);
        if (await openCurrent(0)) current!.offset = await drain(current!.fh, 0);
      } else if (st && st.size < cur.offset) {
        // Truncated in place.
        cur.offset = await drain(cur.fh, 0);
      }
    }
  } finally {
    await current?.fh.close();
  }

  /** Emits the whole of <log>.1 unless it is the file we were reading. */
  async function drainRotatedUnless(ino: number): Promise<void> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(files[0]!, "r");
    } catch {
      return;
    }
    try {
      if ((await fh.stat()).ino !== ino) await drain(fh, 0);
    } finally {
      await fh.close();
    }
  }

  /** Emits from offset to the file's current end; returns the new offset. */
  async function drain(fh: fs.FileHandle, offset: number): Promise<number> {
    let pos = offset;
    let ino: number | undefined;
    for (;;) {
      if (opts.signal.aborted) return pos;
      const buf = await readAt(fh, pos, READ_CHUNK);
      if (buf.length === 0) return pos;
      ino ??= (await fh.stat()).ino;
      const at = pos;
      pos += buf.length;
      await emit(buf, { ino, offset: at });
    }
  }
}
