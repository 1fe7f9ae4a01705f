// grove-runtime beside runc (test/src/harness/oci-side-by-side.ts): a bundle's
// seccomp profile that lists x86_64's other ABIs (x86, x32), as generators
// write it; rbind of a source that has a submount; mount destinations that
// are not clean paths (/dev/, /./dev, //proc, /../x). Each case runs ONE
// config.json through Debian's runc and the static grove-runtime and compares
// what a process inside sees. docs/runtime.md "Conformance" lists them.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { DOCKER_CAPS, ociFromDefault } from "./fuzz/seccomp-samples";
import { bundle, expectSame, sideBySide, tmp } from "./harness/oci-side-by-side";

sideBySide("abimnt");

const x64 = process.arch === "x64";

describe("grove-runtime vs runc: seccomp architectures beyond the native one", () => {
  const PROBE_SRC = path.join(__dirname, "harness", "abi-probe.c");
  const NATIVE = ["mkdir", "socket_inet"];
  const X86 = [
    "i386_mkdir",
    "i386_getpid",
    "i386_socket_inet",
    "i386_socket_unix",
    "i386_socketcall_inet",
    "i386_socketcall_unix",
  ];
  const X32 = ["x32_mkdir", "x32_getpid"];
  // A deny-list: mkdir EPERM, socket(AF_INET) EACCES (an argument condition).
  const denyList = (architectures: string[]): Record<string, unknown> => ({
    defaultAction: "SCMP_ACT_ALLOW",
    architectures,
    syscalls: [
      { names: ["mkdir"], action: "SCMP_ACT_ERRNO" },
      {
        names: ["socket"],
        action: "SCMP_ACT_ERRNO",
        errnoRet: 13,
        args: [{ index: 0, value: 2, op: "SCMP_CMP_EQ" }],
      },
    ],
  });
  const probe = (calls: string[]): string => `rm -rf /tmp/abi-*; /bin/abi-probe ${calls.join(" ")}; rm -rf /tmp/abi-*`;
  const lines = (o: Record<string, string>): string =>
    Object.entries(o)
      .map(([k, v]) => `${k}=${v}\n`)
      .join("");
  let hostX32 = "";

  beforeAll(() => {
    if (!x64) return;
    const bin = path.join(tmp, "abi-probe");
    execFileSync("cc", ["-static", "-no-pie", "-O1", "-o", bin, PROBE_SRC], { stdio: "pipe" });
    fs.copyFileSync(bin, path.join(bundle, "rootfs", "bin", "abi-probe"));
    fs.chmodSync(path.join(bundle, "rootfs", "bin", "abi-probe"), 0o755);
    // On the host (no filter): every x86 call works (the kernel runs i386 code), x32's
    // answer is the kernel's (ENOSYS without CONFIG_X86_X32_ABI): what a filter lets through.
    const host = spawnSync(bin, [...X86, "x32_getpid"], { encoding: "utf8", cwd: "/" }).stdout;
    for (const c of X86) expect(host).toContain(`${c}=ok\n`);
    hostX32 = /x32_getpid=(\S+)/.exec(host)![1]!;
    spawnSync("sh", ["-c", "rm -rf /tmp/abi-*"]);
  });

  (x64 ? it : it.skip)(
    "a deny-list for [X86_64, X86, X32]: each ABI gets the rules with its own numbers, x86's socketcall as libseccomp's",
    () => {
      const out = expectSame(
        (c) => (c.linux.seccomp = denyList(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])),
        probe([...NATIVE, ...X86, ...X32]),
      );
      expect(out).toBe(
        lines({
          mkdir: "EPERM",
          socket_inet: "EACCES",
          i386_mkdir: "EPERM", // mkdir is 39 there, not 83
          i386_getpid: "ok",
          i386_socket_inet: "EACCES", // the direct socket (359) with its condition
          i386_socket_unix: "ok",
          // socketcall(SYS_SOCKET, ...): its arguments are in memory, so the rule holds for every family
          i386_socketcall_inet: "EACCES",
          i386_socketcall_unix: "EACCES",
          x32_mkdir: "EPERM",
          x32_getpid: hostX32,
        }),
      );
    },
  );

  (x64 ? it : it.skip)("[X86_64, X86] and [X86_64, X32]: the ABI not listed is killed", () => {
    // x86 listed, x32 not: an x32 call is killed (libseccomp's bad-architecture action under runc).
    const x86 = expectSame(
      (c) => (c.linux.seccomp = denyList(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])),
      probe([...NATIVE, ...X86, ...X32]),
    );
    expect(x86).toBe(
      lines({
        mkdir: "EPERM",
        socket_inet: "EACCES",
        i386_mkdir: "EPERM",
        i386_getpid: "ok",
        i386_socket_inet: "EACCES",
        i386_socket_unix: "ok",
        i386_socketcall_inet: "EACCES",
        i386_socketcall_unix: "EACCES",
        x32_mkdir: "killed",
        x32_getpid: "killed",
      }),
    );
    // x32 listed, x86 not: an i386 call is killed by both.
    const out = expectSame(
      (c) => (c.linux.seccomp = denyList(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"])),
      probe([...NATIVE, "i386_getpid", "i386_mkdir", ...X32]),
    );
    expect(out).toBe(
      lines({
        mkdir: "EPERM",
        socket_inet: "EACCES",
        i386_getpid: "killed",
        i386_mkdir: "killed",
        x32_mkdir: "EPERM",
        x32_getpid: hostX32,
      }),
    );
  });

  (x64 ? it : it.skip)(
    "a generator's allow-list (Grove's default.json for Docker's capabilities) for the three ABIs",
    () => {
      const profile = {
        ...ociFromDefault(DOCKER_CAPS),
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
      };
      const out = expectSame(
        (c) => (c.linux.seccomp = profile),
        `${probe([...NATIVE, ...X86, ...X32])}; grep Seccomp: /proc/self/status`,
      );
      expect(out).toBe(
        lines({
          mkdir: "ok",
          socket_inet: "ok",
          i386_mkdir: "ok",
          i386_getpid: "ok",
          i386_socket_inet: "ok",
          i386_socket_unix: "ok",
          i386_socketcall_inet: "ok",
          i386_socketcall_unix: "ok",
          x32_mkdir: hostX32, // allowed by the filter: the kernel's answer
          x32_getpid: hostX32,
        }) + "Seccomp:\t2\n",
      );
    },
  );
});

describe("grove-runtime vs runc: mounts", () => {
  let source = "";

  beforeAll(() => {
    // A bind source with a submount (a tmpfs) under it.
    source = path.join(tmp, "with-submount");
    fs.mkdirSync(path.join(source, "sub"), { recursive: true });
    fs.writeFileSync(path.join(source, "top"), "outer\n");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", `grove-abimnt`, path.join(source, "sub")]);
    fs.writeFileSync(path.join(source, "sub", "f"), "inner\n");
  });

  afterAll(() => {
    if (source !== "") spawnSync("umount", [path.join(source, "sub")]);
  });

  it("rbind brings the source's submounts (MS_REC), bind does not; ro makes the top read-only only", () => {
    const script =
      "cat /data/top; cat /data/sub/f 2>/dev/null || echo no-submount; " +
      "awk '$2 ~ /^\\/data/ {print $2, $3}' /proc/self/mounts; " +
      "touch /data/w 2>/dev/null || echo top-ro; touch /data/sub/w 2>/dev/null && echo sub-rw";
    const rbind = expectSame((c) => {
      c.mounts.push({ destination: "/data", type: "bind", source, options: ["rbind", "ro"] });
    }, script);
    expect(rbind).toBe(`outer\ninner\n/data ${fsType(tmp)}\n/data/sub tmpfs\ntop-ro\nsub-rw\n`);
    fs.rmSync(path.join(source, "sub", "w"), { force: true });
    const bind = expectSame((c) => {
      c.mounts.push({ destination: "/data", type: "bind", source, options: ["bind", "ro"] });
    }, script);
    expect(bind).toBe(`outer\nno-submount\n/data ${fsType(tmp)}\ntop-ro\n`);
  });

  it("destinations are cleaned as runc cleans them: /dev/, /./dev and //proc are Grove's own, /../x is /x", () => {
    const script = "awk '$2 ~ /^\\/(proc|dev|x|y)$/ {print $2, $3}' /proc/self/mounts; ls /dev | tr '\\n' ' '";
    const own = "/proc proc\n/dev tmpfs\n";
    const devs = "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero ";
    const at = (dst: string): number => (dst === "/proc" ? 0 : 1); // runc spec's mounts[0] and [1]
    for (const [from, to] of [
      ["/dev", "/dev/"],
      ["/dev", "/./dev"],
      ["/dev", "/dev//."],
      ["/proc", "//proc"],
      ["/proc", "/sys/../proc"],
    ] as const) {
      const out = expectSame((c) => {
        const m = c.mounts[at(from)]!;
        expect(m.destination).toBe(from);
        m.destination = to;
      }, script);
      expect([to, out]).toEqual([to, own + devs]);
    }
    // ".." stops at the root: runc mounts /../../x at /x (no refusal), and so does grove-runtime.
    const up = expectSame((c) => {
      c.mounts.push({ destination: "/../../x", type: "tmpfs", source: "tmpfs" });
      c.mounts.push({ destination: "/tmp/../y/", type: "tmpfs", source: "tmpfs" });
    }, script);
    expect(up).toBe(`${own}/x tmpfs\n/y tmpfs\n${devs}`);
  });
});

/** The filesystem type /proc/self/mounts shows for the mount that holds dir. */
function fsType(dir: string): string {
  return execFileSync("findmnt", ["-n", "-o", "FSTYPE", "-T", dir], { encoding: "utf8" }).trim();
}
