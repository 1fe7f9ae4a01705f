// Seccomp profiles for native-seccomp-fuzz.test.ts: Grove's default.json,
// default.json as bundle generators write it into linux.seccomp, a runc-style
// deny-list, and a small config.json carrying a profile.
import * as fs from "node:fs";
import * as path from "node:path";

export const DEFAULT_JSON = path.resolve(__dirname, "../../../agent/native/seccomp/default.json");
export const NATIVE = process.arch === "arm64" ? "SCMP_ARCH_AARCH64" : "SCMP_ARCH_X86_64";
export const NATIVE_DOCKER = process.arch === "arm64" ? "arm64" : "amd64";
export const COMPAT = process.arch === "arm64" ? "SCMP_ARCH_ARM" : "SCMP_ARCH_X86";
/** The native architecture's other ABIs, as generators list them (x86_64: x86 and x32). */
export const ALL_ABIS = process.arch === "arm64" ? [NATIVE, COMPAT] : [NATIVE, COMPAT, "SCMP_ARCH_X32"];

export type Profile = Record<string, unknown>;
export type Rule = {
  names?: unknown;
  action?: unknown;
  errnoRet?: unknown;
  args?: unknown;
  includes?: { caps?: string[]; arches?: string[] };
  excludes?: { caps?: string[]; arches?: string[] };
  comment?: string;
};

// ---- samples ---------------------------------------------------------------

export const defaultText = (): string => fs.readFileSync(DEFAULT_JSON, "utf8");

/**
 * default.json as a bundle generator writes linux.seccomp for a container
 * with the capabilities caps (as containerd's and moby's do: includes and
 * excludes decided, archMap turned into architectures, runtime-spec's
 * errnoRet per rule).
 */
export function ociFromDefault(caps: string[]): Profile {
  const d = JSON.parse(defaultText()) as { defaultAction: string; defaultErrnoRet?: number; syscalls: Rule[] };
  const holds = (r: Rule): boolean => {
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if (inc.arches && inc.arches.length > 0 && !inc.arches.includes(NATIVE_DOCKER)) return false;
    if (exc.arches && exc.arches.includes(NATIVE_DOCKER)) return false;
    if (inc.caps && !inc.caps.every((c) => caps.includes(c))) return false;
    if (exc.caps && exc.caps.some((c) => caps.includes(c))) return false;
    return true;
  };
  const errno = d.defaultErrnoRet ?? 1;
  return {
    defaultAction: d.defaultAction,
    defaultErrnoRet: errno,
    architectures: [NATIVE],
    flags: [],
    syscalls: d.syscalls.filter(holds).map((r) => ({
      names: r.names,
      action: r.action,
      ...(r.action === "SCMP_ACT_ERRNO" ? { errnoRet: r.errnoRet ?? errno } : {}),
      ...(r.args !== undefined ? { args: r.args } : {}),
    })),
  };
}

export const DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"];

/** A deny-list in runc's style: everything allowed but what it names, with each action and operator. */
export function denyList(): Profile {
  return {
    defaultAction: "SCMP_ACT_ALLOW",
    architectures: [NATIVE],
    syscalls: [
      { names: ["mount", "umount2", "pivot_root"], action: "SCMP_ACT_ERRNO", errnoRet: 1 },
      { names: ["personality"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 0xffffffff, op: "SCMP_CMP_NE" }] },
      { names: ["kill"], action: "SCMP_ACT_LOG" },
      { names: ["ptrace"], action: "SCMP_ACT_KILL_PROCESS" },
      { names: ["reboot"], action: "SCMP_ACT_TRAP" },
      { names: ["kexec_load"], action: "SCMP_ACT_KILL" },
      { names: ["kexec_file_load"], action: "SCMP_ACT_KILL_THREAD" },
      {
        names: ["socket"],
        action: "SCMP_ACT_ERRNO",
        errnoRet: 97,
        args: [
          { index: 0, value: 16, op: "SCMP_CMP_EQ" },
          { index: 2, value: 9, op: "SCMP_CMP_EQ" },
        ],
      },
      {
        names: ["clone"],
        action: "SCMP_ACT_ERRNO",
        args: [{ index: 0, value: 0x10000000, valueTwo: 0x10000000, op: "SCMP_CMP_MASKED_EQ" }],
      },
      { names: ["setpriority"], action: "SCMP_ACT_ERRNO", args: [{ index: 2, value: 0, op: "SCMP_CMP_LT" }] },
      { names: ["setrlimit"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 7, op: "SCMP_CMP_LE" }] },
      {
        names: ["ioctl"],
        action: "SCMP_ACT_ERRNO",
        args: [
          { index: 1, value: 0x5412, op: "SCMP_CMP_GE" },
          { index: 1, value: 0x5413, op: "SCMP_CMP_GT" },
        ],
      },
      { name: "not_a_syscall_grove", action: "SCMP_ACT_ERRNO" },
    ],
  };
}

export const samples = (): { kind: "s" | "d"; text: string }[] => [
  { kind: "d", text: defaultText() },
  { kind: "s", text: JSON.stringify(ociFromDefault(DOCKER_CAPS)) },
  { kind: "s", text: JSON.stringify(ociFromDefault(["CAP_SYS_ADMIN", ...DOCKER_CAPS]), null, 2) },
  { kind: "s", text: JSON.stringify(denyList()) },
  { kind: "s", text: '{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":null}' },
  // As generators write them: every ABI of the architecture, each compiled with its own numbers.
  { kind: "s", text: JSON.stringify({ ...ociFromDefault(DOCKER_CAPS), architectures: ALL_ABIS }) },
  { kind: "s", text: JSON.stringify({ ...denyList(), architectures: ALL_ABIS }) },
];

/** A small bundle config.json (runc spec's shape) with a linux.seccomp. */
export function bundle(seccomp: unknown): Record<string, unknown> {
  return {
    ociVersion: "1.0.2-dev",
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: ["sh"], cwd: "/", noNewPrivileges: true },
    root: { path: "rootfs", readonly: true },
    linux: { namespaces: [{ type: "pid" }, { type: "network" }, { type: "mount" }], seccomp },
  };
}
