// The default seccomp filter (Docker's allow-list semantics, compiled at build
// time from agent/native/seccomp/default.json), seen from inside containers
// started by the real runtime (grove-shim, addon, kernel) and from processes
// `grove-shim exec` runs in them. A static probe (harness/seccomp-probe.c,
// built here with cc) makes each system call raw and prints its errno.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import type { ContainerSpec, ExecProcess } from "@grove/agent";
import { RuntimeFixture } from "./harness/runtime-fixture";
import { RUN_TAG } from "./harness/run-id";

const PARENT = `grove-seccomp-${RUN_TAG}`;
const PROBE_SRC = path.join(__dirname, "harness", "seccomp-probe.c");

const fx = new RuntimeFixture({ cgroupParent: PARENT, name: "grove-seccomp", idPrefix: "s" });
let probe: string;

/** The probe's "name=result" lines as a map. */
function parse(out: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const m = /^([a-z0-9_]+)=(\S+)$/.exec(line);
    if (m) r[m[1]!] = m[2]!;
  }
  return r;
}

async function probeIn(over: Partial<ContainerSpec> = {}): Promise<Record<string, string>> {
  const { code, out } = await fx.run("/bin/seccomp-probe", over);
  expect(code).toBe(0);
  return parse(out);
}

function collect(p: ExecProcess): Promise<{ code: number; out: string }> {
  let out = "";
  p.stdout.setEncoding("utf8");
  p.stdout.on("data", (c: string) => (out += c));
  p.stderr?.resume();
  const ended = new Promise<void>((r) => p.stdout.on("end", r));
  p.stdin.end();
  return Promise.all([p.exited, ended]).then(([exit]) => ({ code: exit.exitCode, out }));
}

// What the filter decides for a container with Docker's default capabilities.
const CONFINED: Record<string, string> = {
  io_uring_setup: "EPERM",
  io_uring_enter: "EPERM",
  io_uring_register: "EPERM",
  socket_vsock: "EPERM",
  socket_alg: "EPERM",
  socket_alg_high_bits: "EPERM",
  socket_inet: "ok",
  socket_unix: "ok",
  personality_read_implies_exec: "EPERM",
  personality_addr_no_randomize: "EPERM",
  personality_linux: "ok",
  personality_query: "ok",
  clone3: "ENOSYS", // libc falls back to clone, whose flags the filter can read
  clone_newuser: "EPERM",
  unshare_user: "EPERM",
  keyctl: "EPERM",
  kcmp: "EPERM",
  // A syscall newer than every one the profile names: ENOSYS, so a libc falls back (as runc does).
  fchmodat2: "ENOSYS",
  ...(process.arch === "x64" ? { x32_getpid: "EPERM" } : {}),
};
// The calls the filter refuses that the kernel itself allows here (checked on the host first).
const FILTERED = Object.keys(CONFINED).filter((k) => CONFINED[k] !== "ok" && k !== "x32_getpid");

beforeAll(() => {
  const { rootfs } = fx.setUp();
  probe = path.join(fx.tmp, "seccomp-probe");
  execFileSync("cc", ["-static", "-O2", "-o", probe, PROBE_SRC], { stdio: "pipe" });
  fs.copyFileSync(probe, path.join(rootfs, "bin", "seccomp-probe"));
  fs.chmodSync(path.join(rootfs, "bin", "seccomp-probe"), 0o755);
});

afterAll(async () => {
  await fx.tearDown();
  for (const c of ["memory", "cpu", "pids", "cpuacct", "devices", "freezer", ""]) {
    expect(fs.existsSync(path.join("/sys/fs/cgroup", c, PARENT))).toBe(false);
  }
});

describe("the default seccomp filter", () => {
  it("on the host (no filter) the kernel allows each call the filter refuses", () => {
    const host = parse(execFileSync(probe, { encoding: "utf8" }));
    for (const k of FILTERED) {
      // Where the kernel would give the filter's answer itself, the container case proves nothing.
      expect({ [k]: host[k] }).not.toEqual({ [k]: CONFINED[k] });
      expect(host[k]).toBeDefined();
    }
  });

  it("refuses io_uring, AF_VSOCK and AF_ALG sockets, other personas, namespaces, keyctl; ENOSYS for clone3 and newer calls", async () => {
    const r = await probeIn();
    expect(r).toEqual(CONFINED);
  });

  it("with seccomp: unconfined the same calls reach the kernel", async () => {
    const r = await probeIn({ seccomp: "unconfined" });
    for (const k of FILTERED) expect({ [k]: r[k] }).not.toEqual({ [k]: CONFINED[k] });
    expect(r.personality_read_implies_exec).toBe("ok");
    expect(r.io_uring_setup).toBe("ok");
  });

  it("follows the capability set: CAP_SYS_ADMIN opens namespaces and clone3, CAP_SYS_PTRACE kcmp", async () => {
    const admin = await probeIn({ capabilities: { add: ["SYS_ADMIN"] } });
    expect(admin.clone_newuser).toBe("ok");
    expect(admin.unshare_user).toBe("ok");
    expect(admin.clone3).toBe("EINVAL"); // the kernel's answer to a NULL clone_args
    expect(admin.kcmp).toBe("EPERM");
    expect(admin.io_uring_setup).toBe("EPERM");
    const ptrace = await probeIn({ capabilities: { add: ["SYS_PTRACE"] } });
    expect(ptrace.kcmp).toBe("ok");
    expect(ptrace.clone_newuser).toBe("EPERM");
    expect(ptrace.clone3).toBe("ENOSYS");
  });

  it("a busybox session of ordinary commands works under it", async () => {
    // A second container joins the first one's network namespace and fetches from its httpd.
    const www = fx.spec(
      "mkdir -p /tmp/www && echo hello from httpd > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/www",
    );
    const server = await fx.rt.start(www);
    try {
      const { code, out } = await fx.run(
        [
          "set -e",
          "echo sh=$((6 * 7))",
          "ls / > /dev/null && echo ls=ok",
          "ps > /tmp/ps && grep -q 'ps' /tmp/ps && echo ps=ok",
          "date +%Y > /dev/null && echo date=ok",
          "sleep 1 && echo sleep=ok",
          "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /tmp/page http://127.0.0.1:8080/index.html && break; sleep 1; done",
          "cat /tmp/page",
          "grep Seccomp: /proc/self/status",
        ].join("\n"),
        { netnsPath: `/proc/${server.pid}/ns/net` },
      );
      expect(out).toContain("sh=42\nls=ok\nps=ok\ndate=ok\nsleep=ok\nhello from httpd\n");
      expect(out).toMatch(/^Seccomp:\s+2$/m);
      expect(code).toBe(0);
    } finally {
      await fx.rt.stop(www.id, 0);
      await fx.rt.remove(www.id);
    }
  });

  it("grove-shim exec installs the same filter (with the container's capability gates)", async () => {
    for (const [over, expected] of [
      [{}, CONFINED],
      [{ capabilities: { add: ["SYS_PTRACE"] } }, { ...CONFINED, kcmp: "ok" }],
    ] as [Partial<ContainerSpec>, Record<string, string>][]) {
      const s = fx.spec("exec sleep 1000", over);
      const h = await fx.rt.start(s);
      try {
        const { code, out } = await collect(
          await fx.rt.exec(h.id, {
            command: ["/bin/sh", "-c", "grep Seccomp: /proc/self/status; /bin/seccomp-probe"],
          }),
        );
        expect(code).toBe(0);
        expect(out).toMatch(/^Seccomp:\s+2$/m);
        expect(parse(out)).toEqual(expected);
      } finally {
        await fx.rt.stop(s.id, 0);
        await fx.rt.remove(s.id);
      }
    }
  });
});
