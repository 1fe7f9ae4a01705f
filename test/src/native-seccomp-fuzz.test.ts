// Malformed input and fuzzing for Grove's seccomp profile compiler
// (agent/native/seccomp/profile.c), which grove-runtime runs on a bundle's
// own linux.seccomp (untrusted input, oci_seccomp.c) and the build on
// default.json, and for the config.json reader's path to it (oci_config.c,
// then grove_oci_seccomp, as grove-runtime's load_bundle).
//
// The same grove-parsers-fuzz as native-parsers-fuzz.test.ts (ASan, UBSan,
// and LeakSanitizer after every profile and config.json: a leak fails, on the
// refusal path too). Besides the sanitizers it checks each program it gets
// back without trusting the compiler (agent/native/fuzz/seccomp-profile.c):
// only instructions the compiler emits, every jump inside and forward, a
// return at the end, every syscall number run through it (also through the
// sections of the other ABIs a profile lists), another architecture killed, an
// ABI not listed killed (x32 in Docker's format: EPERM), one answer past the highest
// syscall in each section, and the same program back from its hex text. A refusal must name
// its field ("config.json linux.seccomp.syscalls[0].action: ...").
//
// Bounded: a quarter of GROVE_FUZZ_SECONDS (default 12, so 3 s) more than
// native-parsers-fuzz; `npm run test:fuzz` runs both longer.
import * as fs from "node:fs";
import fc from "fast-check";
import { buildParsers, fuzz, FUZZ_MS, HUGE, mutated, Parsers } from "./fuzz/native-parsers";
import {
  ALL_ABIS,
  bundle,
  COMPAT,
  defaultText,
  denyList,
  DOCKER_CAPS,
  NATIVE,
  NATIVE_DOCKER,
  ociFromDefault,
  samples,
  type Profile,
  type Rule,
} from "./fuzz/seccomp-samples";
import { tempDir } from "./harness/run-id";

// ---- the parsers process ---------------------------------------------------

let tmp: string;
let parsers: Parsers;

beforeAll(() => {
  tmp = tempDir("grove-seccomp-fuzz");
  parsers = new Parsers(buildParsers(), tmp);
}, 300_000);

afterAll(async () => {
  await parsers?.close();
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

type Compiled = {
  code: number;
  insns: number;
  rules: number;
  maxNr: number;
  gates: number;
  warnings: number;
  isDefault: boolean;
  message: string;
};

async function compile(kind: "s" | "d", profile: unknown): Promise<Compiled> {
  const text = typeof profile === "string" || Buffer.isBuffer(profile) ? profile : JSON.stringify(profile);
  const line = await parsers.run(kind, Buffer.isBuffer(text) ? text : Buffer.from(text, "utf8"));
  const m = /^[sd] (-?\d+) (\d+) (\d+) (-?\d+) (\d+) (\d+) ([01]) ?(.*)$/s.exec(line);
  if (m === null) throw new Error(`unexpected answer ${line}`);
  const [code, insns, rules, maxNr, gates, warnings] = m.slice(1, 7).map(Number) as number[];
  return {
    code: code!,
    insns: insns!,
    rules: rules!,
    maxNr: maxNr!,
    gates: gates!,
    warnings: warnings!,
    isDefault: m[7] === "1",
    message: m[8] ?? "",
  };
}

async function load(config: unknown): Promise<{ code: number; insns: number; message: string }> {
  const text = typeof config === "string" || Buffer.isBuffer(config) ? config : JSON.stringify(config);
  const line = await parsers.run("o", Buffer.isBuffer(text) ? text : Buffer.from(text, "utf8"));
  const m = /^o (-?\d+) (-?\d+) (\d+) ?(.*)$/s.exec(line);
  if (m === null) throw new Error(`unexpected answer ${line}`);
  return { code: Number(m[2]), insns: Number(m[3]), message: m[4] ?? "" };
}

// ---- the tests -------------------------------------------------------------

describe("the seccomp profile compiler on valid profiles", () => {
  it("compiles default.json (Docker's format) into the very program the build made of it", async () => {
    const r = await compile("d", defaultText());
    expect(r).toMatchObject({ code: 0, isDefault: true, warnings: 0, message: "" });
    expect(r.gates).toBeGreaterThan(0);
  });

  it("compiles default.json as generators write it into linux.seccomp, a runc-style deny-list and a default-only profile", async () => {
    for (const { kind, text } of samples()) {
      const r = await compile(kind, text);
      expect([text.slice(0, 80), r.code, r.message]).toEqual([text.slice(0, 80), 0, ""]);
      expect(r.insns).toBeGreaterThan(0);
    }
    expect(await compile("s", '{"defaultAction":"SCMP_ACT_ALLOW"}')).toMatchObject({ code: 0, rules: 0, maxNr: -1 });
  });

  it("compiles the profile of a config.json as grove-runtime does (oci_config.c, then oci_seccomp.c)", async () => {
    const alone = await compile("s", denyList());
    expect(await load(bundle(denyList()))).toEqual({ code: 0, insns: alone.insns, message: "" });
    expect(await load(bundle(null))).toEqual({ code: 0, insns: 0, message: "" });
    expect(await load(bundle(ociFromDefault(DOCKER_CAPS)))).toMatchObject({ code: 0, message: "" });
  });

  it("compiles the rules again for each other ABI a profile lists (x86, x32; arm on aarch64)", async () => {
    // Only the native section: the same program as without architectures.
    const native = await compile("s", { ...denyList(), architectures: [NATIVE] });
    expect(await compile("s", { ...denyList(), architectures: undefined })).toEqual(native);
    let last = native.insns;
    for (let n = 2; n <= ALL_ABIS.length; n++) {
      const r = await compile("s", { ...denyList(), architectures: ALL_ABIS.slice(0, n) });
      expect(r).toMatchObject({ code: 0, maxNr: native.maxNr, message: "" });
      expect(r.insns).toBeGreaterThan(last); // a section more (the harness ran every number through it)
      last = r.insns;
    }
    // An architecture this kernel never runs adds nothing.
    expect(await compile("s", { ...denyList(), architectures: [NATIVE, "SCMP_ARCH_MIPS"] })).toEqual(native);
    const all = await compile("s", { ...ociFromDefault(DOCKER_CAPS), architectures: ALL_ABIS });
    expect(all).toMatchObject({ code: 0, message: "" });
    expect(all.insns).toBeLessThan(4096);
  });
});

describe("the seccomp profile compiler on the OCI fields runc 1.1 has too", () => {
  it("compiles SCMP_ACT_TRACE, _NOTIFY with a listener, _LOG, flags and 64-bit argument values", async () => {
    const p = {
      defaultAction: "SCMP_ACT_ALLOW",
      flags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      listenerPath: "/run/l",
      listenerMetadata: "m",
      syscalls: [
        { names: ["read"], action: "SCMP_ACT_TRACE", errnoRet: 7 },
        { names: ["mkdir"], action: "SCMP_ACT_NOTIFY" },
        { names: ["getpid"], action: "SCMP_ACT_LOG" },
        ...["EQ", "NE", "LT", "LE", "GT", "GE"].map((op) => ({
          names: ["getppid"],
          action: "SCMP_ACT_ERRNO",
          args: [{ index: 1, value: 2 ** 40 + 5, op: `SCMP_CMP_${op}` }],
        })),
      ],
    };
    const text = JSON.stringify(p).replace(
      '"names":["getpid"]',
      '"names":["getpid"],"args":[{"index":0,"value":18446744073709551615,"valueTwo":4294967296,"op":"SCMP_CMP_MASKED_EQ"}]',
    );
    const r = await compile("s", text);
    expect(r).toMatchObject({ code: 0, rules: 9, message: "" });
    expect(await load(bundle(p))).toMatchObject({ code: 0, message: "" });
  });
});

describe("the seccomp profile compiler refuses what it cannot express, naming the field", () => {
  const rule = (over: Record<string, unknown>) => ({
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: [{ names: ["read"], action: "SCMP_ACT_ERRNO", ...over }],
  });
  const arg = (a: Record<string, unknown>) => rule({ args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ", ...a }] });
  const notify = (o: Record<string, unknown>) => ({ ...rule({ action: "SCMP_ACT_NOTIFY" }), listenerPath: "/l", ...o });
  const cases: [string, unknown, RegExp][] = [
    ["not an object", [], /^config\.json linux\.seccomp\.must be an object/],
    ["no defaultAction", { syscalls: [] }, /defaultAction: must be a string/],
    [
      "SCMP_ACT_NOTIFY as the default action",
      { defaultAction: "SCMP_ACT_NOTIFY", listenerPath: "/run/l" },
      /defaultAction: SCMP_ACT_NOTIFY cannot be the default action/,
    ],
    ["NOTIFY without a listenerPath", rule({ action: "SCMP_ACT_NOTIFY" }), /listenerPath: is required with SCMP/],
    [
      "NOTIFY for write",
      notify({ syscalls: [{ names: ["write"], action: "SCMP_ACT_NOTIFY" }] }),
      /names\[0\]: SCMP_ACT_NOTIFY cannot be used for write/,
    ],
    ["a relative listenerPath", notify({ listenerPath: "run/l" }), /listenerPath: must be an absolute path/],
    ["a listenerMetadata that is no string", notify({ listenerMetadata: 5 }), /listenerMetadata: must be a string/],
    ["a trace errnoRet past 16 bits", rule({ action: "SCMP_ACT_TRACE", errnoRet: 65536 }), /errnoRet: 65536/],
    ["an unknown action", rule({ action: "SCMP_ACT_FOO" }), /syscalls\[0\]\.action: SCMP_ACT_FOO is not supported/],
    [
      "an unknown flag",
      { defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_X"] },
      /flags\[1\]: SECCOMP_FILTER_FLAG_X is not supported/,
    ],
    ["flags that are not a list", { defaultAction: "SCMP_ACT_ALLOW", flags: "x" }, /flags: must be an array/],
    [
      "an architecture that is not a string",
      { defaultAction: "SCMP_ACT_ALLOW", architectures: [NATIVE, COMPAT, 5] },
      /architectures\[2\]: must be a string/,
    ],
    ["errnoRet 0", rule({ errnoRet: 0 }), /syscalls\[0\]\.errnoRet: errno 0, must be 1 to 4095/],
    ["errnoRet 4096", rule({ errnoRet: 4096 }), /syscalls\[0\]\.errnoRet: errno 4096/],
    [
      "a value above 64 bits",
      '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":18446744073709551616,"op":"SCMP_CMP_EQ"}]}]}',
      /args\[0\]\.value: 18446744073709551616 is not an integer from 0 to 18446744073709551615/,
    ],
    ["a negative value", arg({ value: -1 }), /args\[0\]\.value: -1 is not an integer/],
    ["argument 6", arg({ index: 6 }), /args\[0\]\.index: 6, a syscall has arguments 0 to 5/],
    ["an unknown operator", arg({ op: "SCMP_CMP_XX" }), /args\[0\]\.op: unknown operator SCMP_CMP_XX/],
    [
      "seven conditions",
      rule({ args: Array(7).fill({ index: 0, value: 1, op: "SCMP_CMP_EQ" }) }),
      /syscalls\[0\]\.args: more than 6/,
    ],
    ["a name that is not a string", rule({ names: [{ a: 1 }] }), /syscalls\[0\]\.names\[0\]: must be a string/],
    ["names that are not a list", rule({ names: { a: 1 } }), /syscalls\[0\]\.names: must be an array of syscall names/],
    ["a rule without names", rule({ names: undefined }), /syscalls\[0\]: has neither names nor name/],
    ["syscalls that are not a list", { defaultAction: "SCMP_ACT_ALLOW", syscalls: {} }, /syscalls: must be an array/],
  ];
  it.each(cases)("%s", async (_name, profile, why) => {
    const r = await compile("s", profile);
    expect([r.code, r.message]).toEqual([-1, expect.stringMatching(why)]);
    expect(r.message.startsWith("config.json linux.seccomp.")).toBe(true);
    // And from a bundle, as grove-runtime's create refuses it (exit 1).
    if (typeof profile === "object" && !Array.isArray(profile)) {
      expect(await load(bundle(profile))).toEqual({ code: 1, insns: 0, message: r.message });
    }
  });

  it("refuses in Docker's format what only the OCI format has, and a profile without this architecture", async () => {
    const d = JSON.parse(defaultText()) as Profile;
    expect((await compile("d", { ...d, flags: [] })).message).toMatch(/^default\.json: flags: is not supported/);
    expect((await compile("d", { ...d, archMap: [] })).message).toMatch(/archMap: does not list SCMP_ARCH_/);
    expect(await compile("d", { ...d, syscalls: [{ names: ["x_no_such"], action: "SCMP_ACT_ALLOW" }] })).toMatchObject({
      code: -1,
      warnings: 1,
      message: expect.stringMatching(/syscalls: names no syscall of this architecture/) as string,
    });
  });
});

// What the fuzzer found, fixed; each input stays as a plain case.
describe("bugs the fuzzer found in the seccomp compiler stay fixed", () => {
  it("profile.c: a refused profile no longer leaks the string it was reading (LeakSanitizer)", async () => {
    // The parsers process is started by its first input: start it with one that compiles, so a
    // start counted below can only be a restart after a crash (whatever ran before this test).
    expect((await compile("d", JSON.parse(defaultText()) as Profile)).code).toBe(0);
    const starts = parsers.starts;
    for (const p of [
      { defaultAction: "SCMP_ACT_FOO" },
      {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, op: "SCMP_CMP_XX" }] }],
      },
      { defaultAction: "SCMP_ACT_ALLOW", architectures: [COMPAT, 5] },
    ]) {
      expect((await compile("s", p)).code).toBe(-1);
    }
    expect((await compile("d", { ...(JSON.parse(defaultText()) as Profile), nope: 1 })).code).toBe(-1);
    expect(parsers.starts).toBe(starts); // no crash, so no restart of the parsers process
  });

  it("profile.c: a rule whose names is a string or a number is refused, not kept naming no syscall", async () => {
    // {"names":"ptrace"} was accepted as a rule of no syscall: the bundle's deny rule silently not applied.
    for (const names of ["ptrace", 5, true]) {
      const p = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names, action: "SCMP_ACT_KILL_PROCESS" }] };
      expect(await compile("s", p)).toMatchObject({
        code: -1,
        message: "config.json linux.seccomp.syscalls[0].names: must be an array of syscall names",
      });
    }
    // The fuzzer's find after that fix: in Docker's format, a rule for another architecture was
    // skipped before its names were looked at.
    const other = { names: "read", action: "SCMP_ACT_ALLOW", excludes: { arches: [NATIVE_DOCKER] } };
    const d = {
      ...(JSON.parse(defaultText()) as Profile),
      syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }, other],
    };
    expect((await compile("d", d)).message).toBe("default.json: syscalls[1].names: must be an array of syscall names");
    const ok = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["ptrace"], action: "SCMP_ACT_KILL_PROCESS" }] };
    expect(await compile("s", ok)).toMatchObject({ code: 0, rules: 1 });
  });
});

describe("the seccomp profile compiler's limits", () => {
  it("refuses more than 4096 rules and a program past 4096 instructions, naming them", async () => {
    const many = (n: number, args: unknown[]) => ({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: Array.from({ length: n }, () => ({ names: ["read"], action: "SCMP_ACT_ERRNO", args })),
    });
    expect((await compile("s", many(4097, []))).message).toBe(
      "config.json linux.seccomp.syscalls: more than 4096 rules",
    );
    const six = Array.from({ length: 6 }, (_, i) => ({ index: i, value: i, valueTwo: 1, op: "SCMP_CMP_MASKED_EQ" }));
    expect((await compile("s", many(300, six))).message).toMatch(/the program would exceed 4096 instructions$/);
    expect(await compile("s", many(200, six))).toMatchObject({ code: 0, rules: 200 });
  });
});

// ---- fuzzing ---------------------------------------------------------------

const ACTIONS = [
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_LOG",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_NOTIFY",
];
const FLAGS = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"];
/** A 64-bit value as JSON digits (beyond 2 ** 53, which a JavaScript number cannot hold). */
const BIG = "__big__";
const OPS = [
  "SCMP_CMP_EQ",
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_GT",
  "SCMP_CMP_GE",
  "SCMP_CMP_MASKED_EQ",
];
const NAMES = [
  "read",
  "write",
  "socket",
  "clone",
  "clone3",
  "personality",
  "ioctl",
  "mount",
  "kill",
  "arch_prctl",
  "breakpoint",
  "socketcall",
  "_llseek",
  "x_no_such",
  "",
  "exit_group",
];

/**
 * Profiles in either format (the envelope of the other is refused or
 * ignored), with their JSON text: with `bad`, each field sometimes holds
 * what a profile may not; without, only what it may (most compile, so the
 * code generation is reached), bar unknown syscall names.
 */
function profiles(bad: boolean) {
  const often = <T, U>(good: fc.Arbitrary<T>, wrong: fc.Arbitrary<U>): fc.Arbitrary<T | U> =>
    bad ? fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: wrong, weight: 1 }) : good;
  const num = often(
    fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(1, 38, 4095)),
    fc.oneof(fc.constantFrom(-1, 4096, 2 ** 32, 2 ** 53, 0.5, ...HUGE.map(Number)), fc.string(), fc.constant(null)),
  );
  const action = often(fc.constantFrom(...ACTIONS), fc.oneof(fc.string(), fc.integer()));
  // Argument values: all 64 bits (as digits in the JSON text), past them with `bad`.
  const value = fc.oneof(
    num,
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => `${BIG}${v}`),
    ...(bad ? [fc.constant(`${BIG}18446744073709551616`)] : []),
  );
  const sysName = often(fc.constantFrom(...NAMES), fc.oneof(fc.string(), fc.integer(), fc.constant(null)));
  const condition = fc.record(
    {
      index: often(fc.integer({ min: 0, max: 5 }), num),
      value,
      valueTwo: value,
      op: often(fc.constantFrom(...OPS), fc.string()),
    },
    { requiredKeys: ["index", "value", "op"] },
  );
  const gate = fc.record(
    {
      caps: fc.array(often(fc.constantFrom("CAP_SYS_ADMIN", "CAP_KILL", "CAP_SYS_BOOT"), fc.string()), {
        maxLength: bad ? 5 : 2,
      }),
      arches: fc.array(fc.constantFrom("amd64", "arm64", "x86", "x32"), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  );
  const syscallRule = fc.record(
    {
      names: often(fc.array(sysName, { maxLength: 8 }), fc.oneof(sysName, fc.dictionary(fc.string(), fc.nat()))),
      name: sysName,
      action,
      errnoRet: often(fc.integer({ min: 1, max: 4095 }), num),
      args: often(
        fc.array(condition, { maxLength: 3 }),
        fc.oneof(fc.array(condition, { minLength: 6, maxLength: 8 }), num),
      ),
      includes: gate,
      excludes: gate,
    },
    { requiredKeys: ["action"] },
  );
  return fc
    .tuple(
      fc.constantFrom<"s" | "d">("s", "s", "d"),
      fc.record(
        {
          defaultAction: action,
          defaultErrnoRet: num,
          architectures: fc.array(often(fc.constantFrom(NATIVE, "SCMP_ARCH_MIPS", ...ALL_ABIS), fc.constant(1)), {
            maxLength: 3,
          }),
          flags: often(
            fc.subarray(FLAGS),
            fc.oneof(fc.constant(["SECCOMP_FILTER_FLAG_NEW_LISTENER"]), fc.string(), fc.array(fc.integer())),
          ),
          listenerPath: often(fc.constantFrom("", "/run/l", "/run/l", "/run/l"), fc.oneof(fc.string(), fc.integer())),
          listenerMetadata: often(fc.string(), fc.integer()),
          archMap: often(
            fc.constant([{ architecture: NATIVE, subArchitectures: [] }]),
            fc.constant([{ architecture: 1 }]),
          ),
          syscalls: often(fc.array(syscallRule, { maxLength: 40 }), fc.oneof(fc.constant(null), fc.string())),
        },
        { requiredKeys: ["defaultAction"] },
      ),
    )
    .map(([kind, p]) => {
      if (kind === "d")
        for (const k of ["architectures", "flags", "listenerPath", "listenerMetadata"]) delete (p as Profile)[k];
      const text = JSON.stringify(p).replace(new RegExp(`"${BIG}(\\d+)"`, "g"), "$1");
      return [kind, Buffer.from(text, "utf8"), p as Profile] as const;
    });
}
const profile = fc.oneof(profiles(true), profiles(false));

describe("fuzzing the seccomp profile compiler under ASan, UBSan and LeakSanitizer", () => {
  /** One answer of a compile: refusals name the field, programs are checked by the harness. */
  async function compiles(kind: "s" | "d", b: Buffer): Promise<Compiled> {
    const r = await compile(kind, b);
    const id = `${kind} ${b.toString("base64")}`;
    expect([id, r.code === 0 || r.code === -1]).toEqual([id, true]);
    if (r.code === 0) expect([id, r.insns > 0, r.message]).toEqual([id, true, ""]);
    else
      expect([id, r.message]).toEqual([
        id,
        expect.stringMatching(/^(config\.json linux\.seccomp\.|default\.json: |invalid JSON$)/),
      ]);
    return r;
  }

  it(
    "generated profiles of both formats: no crash or leak, a program that checks out, or a refusal naming the field",
    async () => {
      let accepted = 0;
      await fuzz(parsers, 0.1, 30, profile, async ([kind, b, p]) => {
        if ((await compiles(kind, b)).code !== 0) return;
        accepted++;
        // Accepted: every rule named its syscalls with a list (or none), so each rule is in the program.
        const rules = Array.isArray(p.syscalls) ? (p.syscalls as Rule[]) : [];
        const id = `${kind} ${b.toString("base64")}`;
        for (const r of rules)
          expect([id, r.names === undefined || r.names === null || Array.isArray(r.names)]).toEqual([id, true]);
      });
      console.log(`generated profiles: ${accepted} accepted`);
      expect(accepted).toBeGreaterThan(0);
    },
    FUZZ_MS * 0.1 + 90_000,
  );

  it(
    "mutated default.json, its linux.seccomp form and runc-style profiles: the same",
    async () => {
      const all = samples().map(({ kind, text }) => ({ kind, b: Buffer.from(text, "utf8") }));
      const input = fc
        .integer({ min: 0, max: all.length - 1 })
        .chain((i) => mutated(all[i]!.b).map((b) => [all[i]!.kind, b] as const));
      await fuzz(parsers, 0.08, 30, input, async ([kind, b]) => {
        await compiles(kind, b);
      });
    },
    FUZZ_MS * 0.08 + 90_000,
  );

  it(
    "mutated config.json with a linux.seccomp, through grove-runtime's reader and compiler: refusals name config.json",
    async () => {
      const configs = [bundle(denyList()), bundle(ociFromDefault(DOCKER_CAPS))].map((c) =>
        Buffer.from(JSON.stringify(c), "utf8"),
      );
      const input = fc.integer({ min: 0, max: configs.length - 1 }).chain((i) => mutated(configs[i]!));
      await fuzz(parsers, 0.07, 30, input, async (b) => {
        const r = await load(b);
        const id = b.toString("base64");
        expect([id, r.code === 0 || r.code === 1]).toEqual([id, true]);
        if (r.code !== 0) expect([id, r.message]).toEqual([id, expect.stringMatching(/config\.json/)]);
      });
    },
    FUZZ_MS * 0.07 + 90_000,
  );
});
