// The harness shared by the native parser fuzz tests (native-parsers-fuzz,
// native-seccomp-fuzz): agent/native/fuzz/build.sh's grove-parsers-fuzz (the
// C parsers under ASan, UBSan and LeakSanitizer) driven one record at a time,
// the byte mutations fast-check draws, and the time-boxed property runner.
//
// Bounded: GROVE_FUZZ_SECONDS (default 12) is shared by the fuzz properties
// of native-parsers-fuzz; native-seccomp-fuzz takes a quarter of it more;
// `npm run test:fuzz` runs them for five minutes.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import fc from "fast-check";

const REPO = path.resolve(__dirname, "../../..");
const FUZZ_DIR = path.join(REPO, "agent", "native", "fuzz");
const BUILD = path.join(FUZZ_DIR, "build.sh");
export const FUZZ_MS = Number(process.env.GROVE_FUZZ_SECONDS ?? "12") * 1000;
/** json.c's nesting limit (value() in json.c): deeper input is refused on purpose. */
export const MAX_DEPTH = 64;

/** The C files the binary is built from (build.sh's list, by directory). */
function sources(): string[] {
  const native = path.join(REPO, "agent", "native");
  const dirs = [FUZZ_DIR, path.join(native, "src"), path.join(native, "seccomp")];
  const files = dirs.flatMap((d) =>
    fs
      .readdirSync(d)
      .filter((f) => /\.(c|h|sh)$/.test(f))
      .map((f) => path.join(d, f)),
  );
  return [...files, path.join(native, "build", "Release", "obj", "gen", "seccomp_profile.c")];
}

/**
 * grove-parsers-fuzz in agent/native/fuzz/build/, built when a source is
 * newer than it (so the two test files build it once per change), written
 * under another name and renamed, so a reader never sees half a binary.
 */
export function buildParsers(): string {
  const bin = path.join(FUZZ_DIR, "build", "grove-parsers-fuzz");
  const built = fs.existsSync(bin) ? fs.statSync(bin).mtimeMs : -1;
  if (built > 0 && sources().every((f) => !fs.existsSync(f) || fs.statSync(f).mtimeMs < built)) return bin;
  const tmp = `${bin}.${process.pid}`;
  const r = spawnSync(BUILD, [tmp], { encoding: "utf8", timeout: 280_000 });
  if (r.status !== 0) throw new Error(`${BUILD} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  fs.renameSync(tmp, bin);
  return bin;
}

export type Kind = "j" | "J" | "o" | "c" | "s" | "d";

/** A crash of the parsers: how the process ended and what it printed. */
export class ParserCrash extends Error {
  constructor(
    readonly kind: Kind,
    readonly input: Buffer,
    readonly report: string,
  ) {
    super(
      `grove-parsers-fuzz crashed on a '${kind}' record of ${input.length} bytes\n` +
        `  input (base64): ${input.toString("base64")}\n` +
        `  replay: printf '%s' '${input.toString("base64")}' | base64 -d > input; then feed it as a '${kind}' record\n` +
        report.slice(0, 4000),
    );
  }
}

/**
 * The parsers process: one record in, one line out, in order. It is started
 * again after a crash, so fast-check can keep shrinking.
 */
export class Parsers {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private waiting: { resolve: (line: string) => void; reject: (e: Error) => void; kind: Kind; input: Buffer }[] = [];
  private out = "";
  private err = "";
  private readonly inFlight = new Set<Promise<string>>();
  runs = 0;
  starts = 0;

  constructor(
    private readonly binary: string,
    private readonly tmp: string,
  ) {}

  private start(): ChildProcessWithoutNullStreams {
    const proc = spawn(this.binary, [], {
      env: { ...process.env, TMPDIR: this.tmp, ASAN_OPTIONS: "", UBSAN_OPTIONS: "" },
    });
    this.starts++;
    this.out = "";
    this.err = "";
    proc.stdout.setEncoding("latin1");
    proc.stdout.on("data", (d: string) => {
      this.out += d;
      let nl: number;
      while ((nl = this.out.indexOf("\n")) >= 0) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        this.waiting.shift()?.resolve(line);
      }
    });
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (d: string) => {
      if (this.err.length < 100_000) this.err += d;
    });
    proc.stdin.on("error", () => undefined); // EPIPE after a crash: reported through "close"
    proc.on("error", (e) => {
      if (this.proc === proc) this.proc = undefined;
      for (const w of this.waiting.splice(0)) w.reject(e);
    });
    proc.on("close", (code, signal) => {
      if (this.proc === proc) this.proc = undefined;
      const report = `exit ${code ?? "-"} signal ${signal ?? "-"}\n${this.err}`;
      for (const w of this.waiting.splice(0)) w.reject(new ParserCrash(w.kind, w.input, report));
    });
    return proc;
  }

  /** The harness's answer line for one input (see parsers.c for the formats). */
  run(kind: Kind, input: Buffer): Promise<string> {
    const proc = this.proc ?? (this.proc = this.start());
    const head = Buffer.alloc(5);
    head.write(kind, 0, "latin1");
    head.writeUInt32LE(input.length, 1);
    this.runs++;
    const answer = new Promise<string>((resolve, reject) => {
      this.waiting.push({ resolve, reject, kind, input });
      proc.stdin.write(Buffer.concat([head, input]));
    });
    this.inFlight.add(answer);
    const done = () => this.inFlight.delete(answer);
    answer.then(done, done);
    return answer;
  }

  /** Waits for every answer still due (fast-check's time limit can leave one in flight). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined) return;
    const closed = new Promise((r) => proc.on("close", r));
    proc.stdin.end();
    await closed;
  }
}

// ---- mutations -------------------------------------------------------------

export const HUGE = [
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775809",
  "18446744073709551616",
  "4294967295",
  "4294967296",
  "-1",
  "-0",
  "1e400",
  "-1e-400",
  "0.5",
  "1".repeat(400),
];
export const BAD_BYTES = [
  [0xff],
  [0xc3, 0x28],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xc0, 0xaf],
  [0xef, 0xbb, 0xbf],
  [0x00],
  [0x00, 0x00, 0x00, 0x00],
];
export const ESCAPES = [
  "\\u",
  "\\u12",
  "\\u0000",
  "\\uD800",
  "\\uDFFF\\uD800",
  "\\u00e9",
  "\\uZZZZ",
  "\\x",
  "\\",
  '\\"',
  "\\\\",
];

type Mutation = (b: Buffer) => Buffer;
const at = (b: Buffer, p: number): number => (b.length === 0 ? 0 : p % (b.length + 1));
const insert = (b: Buffer, p: number, s: Buffer): Buffer =>
  Buffer.concat([b.subarray(0, at(b, p)), s, b.subarray(at(b, p))]);

/** Positions of number tokens and of string contents in JSON text (roughly: good enough to aim at). */
function spots(b: Buffer, re: RegExp): number[] {
  const text = b.toString("latin1");
  return [...text.matchAll(re)].map((m) => m.index ?? 0);
}

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([p, bit]) => (b: Buffer) => {
    if (b.length === 0) return b;
    const c = Buffer.from(b);
    c[p % c.length] = (c[p % c.length] ?? 0) ^ (1 << bit);
    return c;
  }),
  fc.nat().map((p) => (b: Buffer) => b.subarray(0, at(b, p))),
  fc.tuple(fc.nat(), fc.nat(), fc.nat()).map(([a, l, p]) => (b: Buffer) => {
    const from = at(b, a);
    return insert(b, p, b.subarray(from, from + (l % 200)));
  }),
  fc.tuple(fc.nat(), fc.nat({ max: 40 })).map(([p, l]) => (b: Buffer) => {
    const from = at(b, p);
    return Buffer.concat([b.subarray(0, from), b.subarray(from + l)]);
  }),
  fc.tuple(fc.nat(), fc.constantFrom(MAX_DEPTH - 2, MAX_DEPTH, MAX_DEPTH + 1, 10_000), fc.boolean()).map(
    ([p, n, obj]) =>
      (b: Buffer) =>
        insert(b, p, Buffer.from(obj ? '{"a":'.repeat(n) + "1" + "}".repeat(n) : "[".repeat(n) + "]".repeat(n))),
  ),
  fc.tuple(fc.nat(), fc.constantFrom(...HUGE)).map(([k, n]) => (b: Buffer) => {
    const s = spots(b, /-?\d[\d.eE+-]*/g);
    if (s.length === 0) return insert(b, k, Buffer.from(n));
    const from = s[k % s.length] ?? 0;
    const len = /^-?\d[\d.eE+-]*/.exec(b.toString("latin1", from))?.[0].length ?? 0;
    return Buffer.concat([b.subarray(0, from), Buffer.from(n), b.subarray(from + len)]);
  }),
  fc.tuple(fc.nat(), fc.constantFrom(...BAD_BYTES)).map(
    ([p, bytes]) =>
      (b: Buffer) =>
        insert(b, p, Buffer.from(bytes)),
  ),
  fc.tuple(fc.nat(), fc.constantFrom(...ESCAPES)).map(([k, e]) => (b: Buffer) => {
    const s = spots(b, /"/g);
    return insert(b, (s[k % s.length] ?? k - 1) + 1, Buffer.from(e));
  }),
  fc.nat().map((k) => (b: Buffer) => {
    // An unterminated string: the text cut right after an opening quote.
    const s = spots(b, /"/g);
    const q = s[k % s.length];
    return q === undefined ? Buffer.concat([b, Buffer.from('"')]) : b.subarray(0, q + 1);
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(
    ([p, bytes]) =>
      (b: Buffer) =>
        insert(b, p, Buffer.from(bytes)),
  ),
);

export const mutated = (sample: Buffer): fc.Arbitrary<Buffer> =>
  fc.array(mutation, { minLength: 1, maxLength: 4 }).map((ms) => ms.reduce((b, m) => m(b), sample));

/** Runs one property for its share of the time; at least `min` inputs must have gone through. */
export async function fuzz<T>(
  parsers: Parsers,
  share: number,
  min: number,
  arb: fc.Arbitrary<T>,
  check: (v: T) => Promise<void>,
): Promise<void> {
  let runs = 0;
  const startsBefore = parsers.starts;
  await fc.assert(
    fc.asyncProperty(arb, async (v) => {
      runs++;
      await check(v);
    }),
    { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: FUZZ_MS * share, markInterruptAsFailure: false },
  );
  await parsers.settle();
  expect(runs).toBeGreaterThanOrEqual(min);
  const restarts = parsers.starts - startsBefore;
  console.log(
    `${expect.getState().currentTestName}: ${runs} inputs in ${((FUZZ_MS * share) / 1000).toFixed(0)} s, ` +
      `${restarts} start(s) of the parsers process`,
  );
}
