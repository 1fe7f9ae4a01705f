// `grove logs --timestamps` and `--since`: when each line of a log arrived.
//
// grove-shim keeps the log's bytes as the container wrote them and records
// apart, in <log>.ts (rotated with the log to <log>.ts.1), lines "OFFSET MS":
// the bytes from OFFSET on reached the log at MS (wall clock, milliseconds)
// or later, up to the next record. A line's time is that of the last record
// at or before its first byte. Lines of a log without records (written by an
// older shim) have no time: they are shown without one and kept by --since.
import * as fs from "node:fs/promises";

export interface StampOptions {
  /** Prefix every line with its time (RFC 3339, UTC, milliseconds) and a space. */
  timestamps: boolean;
  /** Leave out lines that arrived before this (ms since the epoch). */
  sinceMs?: number;
}

interface FileState {
  /** [offset, ms] ascending by offset. */
  records: Array<[number, number]>;
  /** The line begun but not yet ended, and where it starts. */
  partial: Buffer[];
  partialStart: number;
}

/** Parses a <log>.ts file. */
export function parseStamps(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+) (\d+)$/.exec(line);
    if (m) out.push([Number(m[1]), Number(m[2])]);
  }
  return out;
}

/** The time of the byte at `offset`: the last record at or before it. */
export function stampAt(records: ReadonlyArray<[number, number]>, offset: number): number | undefined {
  let lo = 0;
  let hi = records.length - 1;
  let found: number | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (records[mid]![0] <= offset) {
      found = records[mid]![1];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export class LineStamper {
  private readonly files = new Map<number, FileState>();

  constructor(
    /** The log's path: the index of a file is <log>.ts while it is <log>, <log>.ts.1 once rotated. */
    private readonly logPath: string,
    private readonly opts: StampOptions,
    private readonly emit: (data: Buffer) => Promise<void>,
  ) {}

  /** Bytes of the log file with inode `ino`, read at `offset`. */
  async push(ino: number, offset: number, data: Buffer): Promise<void> {
    let st = this.files.get(ino);
    if (!st) {
      st = { records: [], partial: [], partialStart: offset };
      this.files.set(ino, st);
    }
    if (st.partial.length === 0) st.partialStart = offset;
    let from = 0;
    const out: Buffer[] = [];
    for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, from)) {
      st.partial.push(data.subarray(from, nl + 1));
      const line = await this.stamp(ino, st, st.partialStart, Buffer.concat(st.partial));
      if (line) out.push(line);
      st.partial = [];
      from = nl + 1;
      st.partialStart = offset + from;
    }
    if (from < data.length) st.partial.push(data.subarray(from));
    if (out.length > 0) await this.emit(Buffer.concat(out));
  }

  /** Emits every line begun but not ended (the log ends without a newline). */
  async end(): Promise<void> {
    for (const [ino, st] of this.files) {
      if (st.partial.length === 0) continue;
      const line = await this.stamp(ino, st, st.partialStart, Buffer.concat(st.partial));
      st.partial = [];
      if (line) await this.emit(line);
    }
  }

  private async stamp(ino: number, st: FileState, start: number, line: Buffer): Promise<Buffer | undefined> {
    const last = st.records[st.records.length - 1];
    if (!last || last[0] < start) st.records = await this.loadRecords(ino);
    const ms = stampAt(st.records, start);
    if (this.opts.sinceMs !== undefined && ms !== undefined && ms < this.opts.sinceMs) return undefined;
    if (!this.opts.timestamps || ms === undefined) return line;
    return Buffer.concat([Buffer.from(`${new Date(ms).toISOString()} `), line]);
  }

  /** The records of the file with this inode: <log>.ts while it is the current log, else <log>.ts.1. */
  private async loadRecords(ino: number): Promise<Array<[number, number]>> {
    const current = await fs.stat(this.logPath).catch(() => undefined);
    const index = current?.ino === ino ? `${this.logPath}.ts` : `${this.logPath}.ts.1`;
    try {
      return parseStamps(await fs.readFile(index, "utf8"));
    } catch {
      return [];
    }
  }
}
