import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { keepAsPrevious, previousLogPath, prunePreviousLogs } from "../reconcile/log-files";
import { readLog } from "./log-reader";
import { LineStamper, parseStamps, stampAt } from "./log-stamps";

const T0 = Date.parse("2026-01-02T03:04:05.000Z");

describe("log timestamps", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-events-stamps-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a line takes the time of the last record at or before its first byte", () => {
    const recs = parseStamps(`0 ${T0}\n10 ${T0 + 5}\ngarbage\n25 ${T0 + 9}\n`);
    expect(recs).toEqual([
      [0, T0],
      [10, T0 + 5],
      [25, T0 + 9],
    ]);
    expect(stampAt(recs, 0)).toBe(T0);
    expect(stampAt(recs, 9)).toBe(T0);
    expect(stampAt(recs, 10)).toBe(T0 + 5);
    expect(stampAt(recs, 1000)).toBe(T0 + 9);
    expect(stampAt([], 3)).toBeUndefined();
  });

  async function read(log: string, opts: { timestamps: boolean; sinceMs?: number }, tailLines = -1): Promise<string> {
    const out: Buffer[] = [];
    const stamper = new LineStamper(log, opts, async (b) => void out.push(b));
    await readLog(log, { tailLines, follow: false, signal: new AbortController().signal }, (d, at) =>
      stamper.push(at.ino, at.offset, d),
    );
    await stamper.end();
    return Buffer.concat(out).toString();
  }

  it("prefixes lines across the rotated and the current file, and --since leaves out older ones", async () => {
    const log = path.join(dir, "u.log");
    // Rotated file: "a\nb\n" at T0 and T0+1s; current: "c\nd" (no final newline) at T0+2s, T0+3s.
    fs.writeFileSync(`${log}.1`, "a\nb\n");
    fs.writeFileSync(`${log}.ts.1`, `0 ${T0}\n2 ${T0 + 1000}\n`);
    fs.writeFileSync(log, "c\nd");
    fs.writeFileSync(`${log}.ts`, `0 ${T0 + 2000}\n2 ${T0 + 3000}\n`);
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(await read(log, { timestamps: true })).toBe(
      `${iso(T0)} a\n${iso(T0 + 1000)} b\n${iso(T0 + 2000)} c\n${iso(T0 + 3000)} d`,
    );
    expect(await read(log, { timestamps: false, sinceMs: T0 + 1500 })).toBe("c\nd");
    expect(await read(log, { timestamps: false, sinceMs: T0 + 1000 })).toBe("b\nc\nd");
    expect(await read(log, { timestamps: true }, 1)).toBe(`${iso(T0 + 3000)} d`);
  });

  it("a log without records (an older shim) is shown as it is and kept by --since", async () => {
    const log = path.join(dir, "old.log");
    fs.writeFileSync(log, "x\ny\n");
    expect(await read(log, { timestamps: true, sinceMs: T0 })).toBe("x\ny\n");
  });

  it("keeps one previous log per instance name and prunes names no longer desired after the keep time", async () => {
    for (const uid of ["u1", "u2"]) {
      fs.writeFileSync(path.join(dir, `${uid}.log`), `out of ${uid}\n`);
      fs.writeFileSync(path.join(dir, `${uid}.log.ts`), `0 ${T0}\n`);
      await keepAsPrevious(dir, uid, "default", "web-0");
    }
    const prev = previousLogPath(dir, "default", "web-0");
    expect(fs.readFileSync(prev, "utf8")).toBe("out of u2\n");
    expect(fs.readdirSync(path.join(dir, "previous")).sort()).toEqual(["default_web-0.log", "default_web-0.log.ts"]);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith("u"))).toEqual([]);
    // An instance that wrote nothing leaves the kept log alone.
    await keepAsPrevious(dir, "u3", "default", "web-0");
    expect(fs.readFileSync(prev, "utf8")).toBe("out of u2\n");

    await prunePreviousLogs(dir, () => false); // not desired, but kept only just now
    expect(fs.existsSync(prev)).toBe(true);
    await prunePreviousLogs(dir, (_ns, name) => name === "web-0", 0);
    expect(fs.existsSync(prev)).toBe(true);
    await prunePreviousLogs(dir, () => false, 0);
    expect(fs.readdirSync(path.join(dir, "previous"))).toEqual([]);
  });
});
