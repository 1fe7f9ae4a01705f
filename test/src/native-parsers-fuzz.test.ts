// Malformed input and fuzzing for the runtime's C parsers: json.c (grove-
// runtime's config.json and spec.json), grove-runtime's config.json reader
// (oci.c's load_bundle) and the key/value configuration grove-shim and the
// exec helper read (grove_config_next, shim.c's and exec.c's parse_config).
//
// agent/native/fuzz/build.sh compiles them with AddressSanitizer and UBSan
// (every finding aborts) into grove-parsers-fuzz, one process that parses
// many inputs; fast-check generates the inputs. A crash, a sanitizer report or
// a broken invariant fails the property, and fast-check shrinks the input; the
// failure prints it in base64. json.c's verdict is also compared with
// JSON.parse (strict where json.c is; the deliberate differences are tested
// on their own), and valid JSON must come back from the tokens unchanged.
//
// Bounded: GROVE_FUZZ_SECONDS (default 12) is shared by the fuzz properties;
// `npm run test:fuzz` runs them for five minutes. The harness (the process,
// the mutations, the time-boxed runner) is test/src/fuzz/native-parsers.ts;
// the seccomp profile compiler has its own file, native-seccomp-fuzz.test.ts.
import * as fs from "node:fs";
import fc from "fast-check";
import { buildParsers, fuzz, FUZZ_MS, HUGE, MAX_DEPTH, mutated, Parsers, type Kind } from "./fuzz/native-parsers";
import { tempDir } from "./harness/run-id";

/** grove-runtime's MAX_TOKENS (oci.c). */
const OCI_TOKENS = 8192;

/** Nesting depth as json.c counts it: a scalar is 1, a container 1 + its deepest member. */
function depth(v: unknown): number {
  // With an explicit stack: the fuzzer makes values nested deeper than the JS call stack.
  let deepest = 0;
  const todo: Array<[unknown, number]> = [[v, 1]];
  while (todo.length > 0) {
    const [x, d] = todo.pop()!;
    deepest = Math.max(deepest, d);
    if (x !== null && typeof x === "object") for (const m of Object.values(x as object)) todo.push([m, d + 1]);
  }
  return deepest;
}

/** What JSON.parse says of the bytes, with json.c's nesting limit: the verdict json.c must give. */
function jsonVerdict(input: Buffer): boolean {
  let v: unknown;
  try {
    v = JSON.parse(input.toString("utf8"));
  } catch {
    return false;
  }
  return depth(v) <= MAX_DEPTH;
}

/**
 * The text json.c's strings give for JSON.stringify's output: it keeps the
 * bytes, unescapes \uXXXX below 0x80 and turns the others (and \u0000) into
 * '?' (json.c: ASCII only). JSON.stringify escapes only control characters
 * and lone surrogates, so the mapping is on those escapes.
 */
function lossy(json: string): string {
  return json.replace(/\\(u(?:0000|d[89a-f][0-9a-f]{2})|.)/g, (all: string, esc: string) =>
    esc.length > 1 ? "?" : all,
  );
}

function record(kind: Kind, input: Buffer | string): [Kind, Buffer] {
  return [kind, typeof input === "string" ? Buffer.from(input, "utf8") : input];
}

// ---- samples ---------------------------------------------------------------

/** `runc spec` (runc 1.1), made runnable by grove-runtime: no terminal, Grove's ambient rule. */
function ociSample(): Record<string, unknown> {
  const caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
  return {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0, additionalGids: [10, 20] },
      args: ["sh", "-c", 'echo "hi \\u00e9"'],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "runc",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755"] },
      { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro"] },
    ],
    annotations: { "org.grove.seccomp": "default", "org.example/key": "v" },
    linux: {
      resources: {
        devices: [
          { allow: false, access: "rwm" },
          { allow: true, type: "c", major: 10, minor: 229, access: "rw" },
        ],
        memory: { limit: 67108864 },
        cpu: { quota: 50000, period: 100000 },
        pids: { limit: 100 },
      },
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      maskedPaths: ["/proc/acpi", "/proc/kcore", "/sys/firmware"],
      readonlyPaths: ["/proc/bus", "/proc/sys"],
    },
  };
}

function ociUserns(): Record<string, unknown> {
  const c = ociSample() as { linux: Record<string, unknown> & { namespaces: { type: string }[] } };
  c.linux.namespaces.push({ type: "user" });
  c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  return c;
}

/** User and pid namespaces joined by path, a new time namespace with its offsets, a device in the user namespace. */
function ociJoined(): Record<string, unknown> {
  const c = ociUserns() as { linux: Record<string, unknown> & { namespaces: { type: string; path?: string }[] } };
  c.linux.namespaces = c.linux.namespaces
    .filter((n) => n.type !== "user" && n.type !== "pid")
    .concat([{ type: "user", path: "/proc/1/ns/user" }, { type: "pid", path: "/proc/1/ns/pid" }, { type: "time" }]);
  c.linux.timeOffsets = { boottime: { secs: 3600, nanosecs: 5 }, monotonic: { secs: -20, nanosecs: 0 } };
  c.linux.devices = [{ path: "/dev/kmsg", type: "c", major: 1, minor: 11 }];
  return c;
}

/** A spec.json as NativeRuntime writes it and grove-runtime state reads it. */
function specSample(): Record<string, unknown> {
  return {
    spec: {
      id: "web-1",
      rootfs: "/var/lib/grove/rootfs/web-1",
      command: ["/bin/sh", "-c", "exec httpd -f"],
      env: { PATH: "/usr/bin:/bin", GREETING: "h\u00e9llo\n" },
      hostname: "web-1",
      resources: { memoryBytes: 134217728, cpuMillis: 250, pids: 64 },
      logPath: "/var/log/grove/web-1.log",
      annotations: { "grove.oci.bundle": "/srv/bundle", "grove.oci.annotations": '{"a":"b"}' },
      rlimits: [{ type: "RLIMIT_NOFILE", soft: 1024, hard: 4096 }],
      readonlyRootfs: false,
    },
    createdAtMs: 1764790000000,
  };
}

/** A key/value blob: each key and value followed by a NUL. */
function blob(pairs: [string, string][]): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}\0${v}\0`).join(""), "utf8");
}

/** What NativeRuntime sends grove-shim (native.ts start()). */
const SHIM_PAIRS: [string, string][] = [
  ["id", "web-1"],
  ["rootfs", "/var/lib/grove/rootfs/web-1"],
  ["cwd", "/"],
  ["hostname", "web-1"],
  ["log", "/var/log/grove/web-1.log"],
  ["log_max", "10485760"],
  ["dir", "/run/grove/web-1"],
  ["cgroup_mode", "v2"],
  ["cgroup_root", "/sys/fs/cgroup"],
  ["cgroup_parent", "grove"],
  ["mount_src", "/srv/data"],
  ["mount_dst", "/data"],
  ["mount_ro", "1"],
  ["caps", "1234"],
  ["seccomp", "default"],
  ["uid", "1000"],
  ["gid", "1000"],
  ["group", "10"],
  ["rlimit", "7:1024:4096"],
  ["uid_map", "0:100000:65536"],
  ["gid_map", "0:100000:65536"],
  ["arg", "/bin/sh"],
  ["arg", "-c"],
  ["env", "PATH=/usr/bin:/bin"],
];

/** What the agent sends the exec helper (exec.ts). */
const EXEC_PAIRS: [string, string][] = [
  ["id", "web-1"],
  ["cgroup_mode", "v2"],
  ["cgroup_root", "/sys/fs/cgroup"],
  ["cgroup_parent", "grove"],
  ["pid", "4242"],
  ["cwd", "/"],
  ["tty", "1"],
  ["cols", "120"],
  ["rows", "40"],
  ["caps", "1234"],
  ["seccomp", "unconfined"],
  ["uid", "0"],
  ["gid", "0"],
  ["rlimit", "7:1024:4096"],
  ["arg", "ls"],
  ["env", "TERM=xterm"],
];

/** grove_config_next's verdict, written again: pairs, or -1 when a key or value lacks its NUL. */
function configPairs(b: Buffer): number {
  let i = 0;
  let n = 0;
  while (i < b.length) {
    const k = b.indexOf(0, i);
    if (k < 0 || k + 1 >= b.length) return -1;
    const v = b.indexOf(0, k + 1);
    if (v < 0) return -1;
    i = v + 1;
    n++;
  }
  return n;
}

// ---- the tests -------------------------------------------------------------

let tmp: string;
let parsers: Parsers;

beforeAll(() => {
  tmp = tempDir("grove-parsers-fuzz");
  parsers = new Parsers(buildParsers(), tmp);
}, 300_000);

afterAll(async () => {
  await parsers?.close();
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

async function json(input: string | Buffer): Promise<number> {
  const line = await parsers.run(...record("j", input));
  return Number(line.split(" ")[1]);
}

/** load_bundle's answer: code 0, or the exit code and what it printed. */
async function oci(config: unknown): Promise<{ code: number; tokens: number; message: string }> {
  const text = typeof config === "string" || Buffer.isBuffer(config) ? config : JSON.stringify(config);
  const line = await parsers.run(...record("o", text));
  const m = /^o (-?\d+) (-?\d+) (\d+) ?(.*)$/s.exec(line);
  if (m === null) throw new Error(`unexpected answer ${line}`);
  return { tokens: Number(m[1]), code: Number(m[2]), message: m[4] ?? "" };
}

async function config(b: Buffer): Promise<{ pairs: number; shim: number; exec: number }> {
  const [, pairs = NaN, shim = NaN, exec = NaN] = (await parsers.run("c", b)).split(" ").map(Number);
  return { pairs, shim, exec };
}

describe("json.c on malformed input", () => {
  // Each verdict is JSON.parse's: json.c is meant to be RFC 8259 strict.
  const cases: string[] = [
    "{}",
    "[]",
    '{"a":[1,-2.5e+3,true,false,null,"x"]}',
    ' \t\r\n{"a" : 1 } ',
    '"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041"',
    "0",
    "-0",
    "1E5",
    "1e-5",
    "",
    " ",
    "{",
    "[1,2",
    '{"a":1,}',
    "[1,]",
    "[,1]",
    '{"a" 1}',
    "{1:2}",
    "{'a':1}",
    "[1 2]",
    "tru",
    "truex",
    "nul",
    "nullable",
    "[true false]",
    "01",
    "-",
    "+1",
    "1.",
    ".5",
    "1e",
    "1e+",
    "0x10",
    "1..2",
    "--1",
    "NaN",
    "Infinity",
    '"abc',
    '"abc\\"',
    '"\\x"',
    '"\\u12"',
    '"\\u12g4"',
    '"\\uD800"',
    '"tab\there"',
    '"nl\nhere"',
    "[1]x",
    "[1]]",
    "\ufeff{}",
    "[1\u0000]",
    "1\u0000",
    '"a\u0000b"',
    "true\u0000",
  ];
  it.each(cases.map((c) => [JSON.stringify(c), c]))("%s gets JSON.parse's verdict", async (_name, text) => {
    const n = await json(text);
    expect(n >= 1).toBe(jsonVerdict(Buffer.from(text, "utf8")));
  });

  it("refuses nesting deeper than 64 values (JSON.parse accepts it: a deliberate bound on the recursion)", async () => {
    const nest = (n: number) => "[".repeat(n - 1) + "1" + "]".repeat(n - 1);
    expect(await json(nest(MAX_DEPTH))).toBe(MAX_DEPTH);
    expect(await json(nest(MAX_DEPTH + 1))).toBe(-1);
    expect(await json(nest(10_000))).toBe(-1);
    expect(await json("[".repeat(10_000))).toBe(-1);
    expect(() => JSON.parse(nest(10_000))).not.toThrow();
  });

  it("keeps bytes that are not UTF-8 (JSON.parse would see U+FFFD) and turns \\u escapes above ASCII into '?'", async () => {
    const bytes = Buffer.concat([Buffer.from('["'), Buffer.from([0xff, 0xc3, 0x28]), Buffer.from('"]')]);
    expect(await json(bytes)).toBe(2);
    const line = await parsers.run("J", Buffer.from('["\\u00e9\\u0000\\u0041\\ud83d\\ude00"]'));
    expect(line).toBe('J 2 ["??A??"]');
  });

  it("answers the same tokens with any token limit that holds them, and -1 below it", async () => {
    // parsers.c checks this for every input; here the count is pinned: 7 tokens.
    const line = await parsers.run("J", Buffer.from('{"a":[1,2],"b":null}'));
    expect(line).toBe('J 7 {"a":[1,2],"b":null}');
  });
});

describe("grove-runtime's config.json reader on malformed input", () => {
  it("accepts the samples (runc spec, with and without a user namespace)", async () => {
    expect(await oci(ociSample())).toEqual({ tokens: expect.any(Number) as number, code: 0, message: "" });
    expect((await oci(ociUserns())).code).toBe(0);
    expect(await oci(ociJoined())).toMatchObject({ code: 0, message: "" });
  });

  it("refuses invalid JSON, a non-object and more than 8192 tokens, naming the file", async () => {
    for (const text of ["", "{", '{"process":', "[]", '"x"', JSON.stringify(ociSample()).slice(0, -1)]) {
      const r = await oci(text);
      expect([text, r.code, r.message]).toEqual([text, 1, expect.stringMatching(/config\.json: invalid JSON/)]);
    }
    const big = ociSample() as { process: { env: string[] } };
    big.process.env = Array.from({ length: OCI_TOKENS }, (_, i) => `V${i}=x`);
    const r = await oci(big);
    expect(r.tokens).toBeGreaterThan(OCI_TOKENS);
    // The message does not tell "too many tokens" from invalid JSON: oci.c's wording (reported, not changed here).
    expect(r).toMatchObject({ code: 1, message: expect.stringMatching(/config\.json: invalid JSON/) as string });
  });

  it("refuses integers that do not fit instead of clamping them to LLONG_MAX", async () => {
    const c = ociSample() as { process: { rlimits: unknown[] } };
    c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 1, hard: 1 }];
    const text = JSON.stringify(c).replace(
      '"soft":1,"hard":1',
      '"soft":99999999999999999999,"hard":99999999999999999999',
    );
    expect(await oci(text)).toMatchObject({
      code: 1,
      message: expect.stringContaining("process.rlimits[0]: soft and hard must be integers") as string,
    });
  });
});

describe("key/value configs on malformed input", () => {
  it("accepts what the agent sends grove-shim and the exec helper", async () => {
    expect(await config(blob(SHIM_PAIRS))).toEqual({ pairs: SHIM_PAIRS.length, shim: 0, exec: -1 });
    expect(await config(blob(EXEC_PAIRS))).toEqual({ pairs: EXEC_PAIRS.length, shim: -1, exec: 0 });
  });

  it.each([
    ["a last key without its NUL", Buffer.concat([blob(SHIM_PAIRS), Buffer.from("arg")])],
    ["a last key without a value", Buffer.concat([blob(SHIM_PAIRS), Buffer.from("arg\0")])],
    ["a last value without its NUL", Buffer.concat([blob(SHIM_PAIRS), Buffer.from("arg\0x")])],
    ["an unknown key", blob([...SHIM_PAIRS, ["nope", "1"]])],
    ["a uid_map that is not numbers", blob([...SHIM_PAIRS, ["uid_map", "0:x:1"]])],
    ["a blob of NULs", Buffer.alloc(7)],
  ])("refuses %s", async (_name, b) => {
    const r = await config(b);
    expect(r.pairs).toBe(configPairs(b));
    expect(r.shim).toBe(-1);
  });

  it("needs id, pid, cgroup_*, arg and an absolute cwd for exec", async () => {
    expect((await config(blob(EXEC_PAIRS.filter(([k]) => k !== "pid")))).exec).toBe(-1);
    expect((await config(blob(EXEC_PAIRS.map(([k, v]) => [k, k === "cwd" ? "rel" : v])))).exec).toBe(-1);
    expect((await config(blob([]))).exec).toBe(-1);
  });
});

// Bugs the fuzzer found in oci.c and shim.c, fixed: their reproducers stay as
// regression tests (an overflow would abort the parsers process under UBSan).
describe("bugs the fuzzer found stay fixed", () => {
  it("shim.c parse_id_map: a uid_map without its host id or size (or with size 0) is refused", async () => {
    for (const map of ["0:100000", "0", "", "0:100000:0", ":1:1", "0::1", "0:1:"]) {
      expect([map, (await config(blob([...SHIM_PAIRS, ["uid_map", map]]))).shim]).toEqual([map, -1]);
    }
    expect((await config(blob([...SHIM_PAIRS, ["uid_map", "0:100000:65536"]]))).shim).toBe(0);
  });

  it("oci.c read_id_maps: containerID + size past 2^32 is refused without overflowing", async () => {
    const c = ociUserns() as { linux: { uidMappings: { containerID: number }[] } };
    const r = await oci(JSON.stringify(c).replace('"containerID":0', '"containerID":9223372036854775807'));
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/config\.json linux\.uidMappings\[0\]/);
  });

  it("oci.c load_bundle: a cpu quota too large for quota * 1000 is refused without overflowing", async () => {
    const r = await oci(JSON.stringify(ociSample()).replace('"quota":50000', '"quota":9223372036854775807'));
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/linux\.resources\.cpu\.quota: at most/);
  });
});

describe("fuzzing the C parsers under ASan and UBSan", () => {
  it(
    "random JSON comes back from the tokens as it went in",
    async () => {
      const value = fc.oneof(
        fc.jsonValue({ maxDepth: 8, stringUnit: "binary" }),
        fc.jsonValue({ depthSize: "large", maxDepth: MAX_DEPTH + 4 }),
      );
      await fuzz(parsers, 0.3, 100, value, async (v) => {
        const text = JSON.stringify(v);
        const line = await parsers.run("J", Buffer.from(text, "utf8"));
        const n = Number(line.split(" ", 2)[1]);
        if (depth(v) > MAX_DEPTH) {
          expect(n).toBe(-1);
          return;
        }
        expect(n).toBeGreaterThanOrEqual(1);
        // The line is read as latin1 (byte for byte); the JSON in it is UTF-8.
        const back = Buffer.from(line.slice(line.indexOf(" ", 2) + 1), "latin1").toString("utf8");
        expect(JSON.stringify(JSON.parse(back))).toBe(JSON.stringify(JSON.parse(lossy(text))));
      });
    },
    FUZZ_MS * 0.3 + 90_000,
  );

  it(
    "mutated config.json and spec.json samples: no crash, JSON.parse's verdict, refusals name config.json",
    async () => {
      const samples = [ociSample(), ociUserns(), specSample(), ociJoined()].map((s, i) =>
        Buffer.from(i === 2 ? JSON.stringify(s) : JSON.stringify(s, null, i === 0 ? "\t" : undefined), "utf8"),
      );
      const input = fc
        .integer({ min: 0, max: samples.length - 1 })
        .chain((i) => mutated(samples[i] ?? Buffer.alloc(0)).map((b) => [i, b] as const));
      await fuzz(parsers, 0.5, 100, input, async ([i, b]) => {
        const valid = jsonVerdict(b);
        if (i === 2) {
          expect([b.toString("base64"), (await json(b)) >= 1]).toEqual([b.toString("base64"), valid]);
          return;
        }
        const line = await parsers.run("o", b);
        const m = /^o (-?\d+) (-?\d+) (\d+) ?(.*)$/s.exec(line);
        expect(m).not.toBeNull();
        const [tokens, code, message] = [Number(m?.[1]), Number(m?.[2]), m?.[4] ?? ""];
        expect([b.toString("base64"), tokens >= 1]).toEqual([b.toString("base64"), valid]);
        if (code !== 0) expect(message).toMatch(/config\.json/);
        if (!valid) expect(code).toBe(1);
      });
    },
    FUZZ_MS * 0.5 + 90_000,
  );

  it(
    "random and mutated key/value blobs: no crash, grove_config_next's verdict",
    async () => {
      const key = fc.oneof(fc.constantFrom(...SHIM_PAIRS.map(([k]) => k), ...EXEC_PAIRS.map(([k]) => k)), fc.string());
      const val = fc.oneof(
        fc.constantFrom(...SHIM_PAIRS.map(([, v]) => v), ...HUGE, "", "1", "a:b:c", "0:0:0:0", "-5", ":::"),
        fc.string({ unit: "binary" }),
      );
      const pairs = fc.array(fc.tuple(key, val), { maxLength: 40 }).map((p) => blob(p));
      const input = fc.oneof(
        pairs,
        pairs.chain((b) => mutated(b)),
        mutated(blob(SHIM_PAIRS)),
        mutated(blob(EXEC_PAIRS)),
        fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      );
      await fuzz(parsers, 0.2, 100, input, async (b) => {
        const r = await config(b);
        expect([b.toString("base64"), r.pairs]).toEqual([b.toString("base64"), configPairs(b)]);
      });
    },
    FUZZ_MS * 0.2 + 90_000,
  );
});
