// Isolation defaults and CVE defences, each checked from inside a container
// started by the real runtime (grove-shim, addon, kernel).
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { NativeRuntime, SHIM_PATH, loadNativeBinding } from "@grove/agent";
import { RuntimeFixture } from "./harness/runtime-fixture";
import { RUN_TAG } from "./harness/run-id";

const PARENT = `grove-iso-${RUN_TAG}`;
const DOCKER_CAPS = "00000000a80425fb";

const fx = new RuntimeFixture({ cgroupParent: PARENT, name: "grove-iso", idPrefix: "c", users: true });
const { run } = fx;
let tmp: string;
let rootfs: string;
let rt: NativeRuntime;

function field(out: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(.*)$`, "m").exec(out)?.[1]?.trim();
}

function sha(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

beforeAll(() => {
  ({ tmp, rootfs, rt } = fx.setUp());
});

afterAll(async () => {
  await fx.tearDown();
  for (const c of ["memory", "cpu", "pids", "cpuacct", "devices"]) {
    expect(fs.existsSync(path.join("/sys/fs/cgroup", c, PARENT))).toBe(false);
  }
});

describe("isolation defaults, seen from inside the container", () => {
  it("has Docker's 14 capabilities in bounding, permitted and effective; none inheritable or ambient; no_new_privs; seccomp", async () => {
    const { code, out } = await run("cat /proc/self/status");
    expect(code).toBe(0);
    expect(field(out, "CapBnd")).toBe(DOCKER_CAPS);
    expect(field(out, "CapPrm")).toBe(DOCKER_CAPS);
    expect(field(out, "CapEff")).toBe(DOCKER_CAPS);
    expect(field(out, "CapInh")).toBe("0000000000000000");
    expect(field(out, "CapAmb")).toBe("0000000000000000");
    expect(field(out, "NoNewPrivs")).toBe("1");
    expect(field(out, "Seccomp")).toBe("2");
  });

  it("applies capabilities.add and capabilities.drop", async () => {
    const { out } = await run(
      "cat /proc/self/status; touch /tmp/f; chown 1 /tmp/f && echo chown=ok || echo chown=denied",
      {
        capabilities: { add: ["CAP_NET_ADMIN"], drop: ["CHOWN"] },
      },
    );
    // + NET_ADMIN (bit 12), - CHOWN (bit 0)
    expect(field(out, "CapEff")).toBe("00000000a80435fa");
    expect(field(out, "CapBnd")).toBe("00000000a80435fa");
    expect(out).toContain("chown=denied");
    await expect(run("true", { capabilities: { add: ["CAP_NOPE"] } })).rejects.toThrow(
      'capabilities.add: unknown capability "CAP_NOPE"',
    );
  });

  it("denies namespace creation, keyctl-class and mount calls through seccomp; unconfined lets user namespaces through", async () => {
    // A user namespace needs no capability: only the filter stops it.
    const confined = await run(
      "unshare -U true && echo userns=yes || echo userns=no; unshare -m true || echo mountns=no",
    );
    expect(confined.out).toContain("userns=no");
    expect(confined.out).toContain("mountns=no");
    expect(confined.out).toMatch(/unshare: unshare\(.*\): Operation not permitted/);
    const unconfined = await run(
      "unshare -U true && echo userns=yes || echo userns=no; grep Seccomp: /proc/self/status",
      {
        seccomp: "unconfined",
      },
    );
    expect(unconfined.out).toContain("userns=yes");
    expect(field(unconfined.out, "Seccomp")).toBe("0");
  });

  it("masks Docker's masked paths, makes its read-only paths and /sys read-only", async () => {
    // Only what this kernel has can be masked (this VM has no /proc/kcore or /proc/sysrq-trigger).
    const masked = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats"].filter(
      (p) => fs.existsSync(p),
    );
    expect(masked.length).toBeGreaterThan(0);
    const { out } = await run(
      [
        ...masked.map((p) => `echo ${p}=$(cat ${p} | wc -c)`),
        "echo acpi=$(ls /proc/acpi 2>/dev/null | wc -l)",
        "grep -E ' /proc/(acpi|keys|timer_list|sys|bus|fs|irq) ' /proc/self/mounts",
        "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys=rw || echo procsys=ro",
        "touch /sys/grove 2>/dev/null && echo sys=rw || echo sys=ro",
        "grep ' /sys ' /proc/self/mounts",
        "echo firmware=$(ls /sys/firmware | wc -l)",
      ].join("; "),
    );
    for (const p of masked) expect(out).toContain(`${p}=0\n`);
    expect(out).toContain("acpi=0\n");
    expect(out).toMatch(/^tmpfs \/proc\/acpi tmpfs ro,/m);
    expect(out).toMatch(/^\S+ \/proc\/keys \S+ rw,/m); // /dev/null bound over it
    for (const ro of ["sys", "bus", "fs", "irq"]) {
      if (fs.existsSync(`/proc/${ro}`)) expect(out).toMatch(new RegExp(`^proc /proc/${ro} proc ro,`, "m"));
    }
    expect(out).toContain("procsys=ro\n");
    expect(out).toContain("sys=ro\n");
    expect(out).toMatch(/^sysfs \/sys sysfs ro,/m);
    expect(out).toContain("firmware=0\n");
  });

  it("masks /proc/interrupts and every cpu's thermal_throttle directory (Docker's later additions)", async () => {
    expect(fs.readFileSync("/proc/interrupts", "utf8").length).toBeGreaterThan(0);
    const throttle = fs
      .readdirSync("/sys/devices/system/cpu")
      .filter((d) => /^cpu\d+$/.test(d))
      .map((d) => `/sys/devices/system/cpu/${d}/thermal_throttle`)
      .filter((p) => fs.existsSync(p)); // none on this VM; real hardware has them
    const { out } = await run(
      [
        "echo interrupts=$(cat /proc/interrupts | wc -c)",
        "grep ' /proc/interrupts ' /proc/self/mounts | cut -d' ' -f2",
        ...throttle.map((p) => `echo ${p}=$(ls ${p} | wc -l)`),
      ].join("; "),
    );
    expect(out).toContain("interrupts=0\n/proc/interrupts\n");
    for (const p of throttle) expect(out).toContain(`${p}=0\n`);
  });

  it("has a private cgroup namespace rooted at its cgroups: /proc/self/cgroup shows /", async () => {
    const s = fx.spec("cat /proc/self/cgroup; readlink /proc/self/ns/cgroup; exec sleep 1000");
    const h = await rt.start(s);
    try {
      // The host sees the container in its own cgroups and another cgroup namespace.
      const host = fs.readFileSync(`/proc/${h.pid}/cgroup`, "utf8");
      expect(host).toMatch(new RegExp(`^\\d+:[^:]*pids[^:]*:/${PARENT}/${s.id}$`, "m"));
      expect(fs.readlinkSync(`/proc/${h.pid}/ns/cgroup`)).not.toBe(fs.readlinkSync("/proc/self/ns/cgroup"));
      let out = "";
      for (let i = 0; i < 200 && !out.includes("cgroup:["); i++) {
        await new Promise((r) => setTimeout(r, 25));
        out = fs.readFileSync(s.logPath, "utf8");
      }
      const lines = out.split("\n").filter((l) => /^\d+:[^:]*:/.test(l));
      // Every hierarchy (the v1 ones and the unified one), as many as the host shows.
      expect(lines.length).toBe(host.trim().split("\n").length);
      for (const l of lines) expect(l).toMatch(/:\/$/);
      expect(out).toContain(fs.readlinkSync(`/proc/${h.pid}/ns/cgroup`));
    } finally {
      await rt.stop(s.id, 0);
      await rt.remove(s.id);
    }
  });

  it("refuses to run containers on cgroup v1 without the devices controller", async () => {
    // A fake v1 tree (plain directories): the check comes before anything is created.
    const root = path.join(tmp, "fake-v1");
    for (const c of ["memory", "cpu", "pids"]) fs.mkdirSync(path.join(root, c), { recursive: true });
    const native = loadNativeBinding();
    const res = { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024, pids: 8 };
    await expect(native.setupCgroup("v1", root, "grove", "c1", res)).rejects.toThrow(
      `cgroup v1: the devices controller is not mounted (no ${root}/devices)`,
    );
    for (const c of ["memory", "cpu", "pids"]) expect(fs.readdirSync(path.join(root, c))).toEqual([]);
    // With it mounted the same setup gets past the check (and fails later on the fake files).
    fs.mkdirSync(path.join(root, "devices"));
    const later = await native.setupCgroup("v1", root, "grove", "c1", res).then(
      () => "set up",
      (err: Error) => err.message,
    );
    expect(later).not.toMatch(/devices controller/);
    expect(fs.existsSync(path.join(root, "memory", "grove", "c1"))).toBe(true);
  });

  it("has a minimal /dev and a device cgroup that refuses other devices", async () => {
    const { out } = await run(
      [
        "echo devs=$(ls /dev | tr '\\n' ' ')",
        "echo pts=$(grep ' /dev/pts ' /proc/self/mounts | cut -d' ' -f3)",
        "echo shm=$(grep ' /dev/shm ' /proc/self/mounts | cut -d' ' -f3)",
        "echo mqueue=$(grep ' /dev/mqueue ' /proc/self/mounts | cut -d' ' -f3)",
        "echo ptmx=$(readlink /dev/ptmx)",
        // mknod is allowed (as with Docker); using the device is not.
        "mknod /dev/mem c 1 1 && echo mknod=ok",
        "head -c1 /dev/mem > /dev/null 2>&1 && echo mem=open || echo mem=denied",
        "head -c1 /dev/urandom > /dev/null && echo urandom=open",
      ].join("; "),
    );
    expect(out).toContain("devs=fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero\n");
    expect(out).toContain("pts=devpts\n");
    expect(out).toContain("shm=tmpfs\n");
    expect(out).toContain("mqueue=mqueue\n");
    expect(out).toContain("ptmx=pts/ptmx\n");
    expect(out).toContain("mknod=ok\n");
    expect(out).toContain("mem=denied\n");
    expect(out).toContain("urandom=open\n");
  });

  it("runs as a user and group by name or number from the rootfs's /etc/passwd and /etc/group", async () => {
    const byName = await run("id; grep -E '^(Cap(Eff|Prm)|Groups):' /proc/self/status", { user: "app" });
    expect(byName.out).toContain("uid=1000(app) gid=1000(app) groups=2000(extra)");
    expect(field(byName.out, "CapEff")).toBe("0000000000000000");
    expect(field(byName.out, "CapPrm")).toBe("0000000000000000");
    const numeric = await run("id -u; id -g; id -G", { user: "1234:other", additionalGids: [4000] });
    expect(numeric.out).toBe("1234\n3000\n3000 4000\n");
    await expect(run("true", { user: "nosuchuser" })).rejects.toThrow(/user: no user "nosuchuser" in .*etc\/passwd/);
  });

  it("looks the user up inside the rootfs even when /etc/passwd is a symlink to the host's", async () => {
    const other = path.join(tmp, "rootfs-link");
    fs.cpSync(rootfs, other, { recursive: true, verbatimSymlinks: true });
    fs.rmSync(path.join(other, "etc/passwd"));
    // An absolute link means the rootfs's own /etc/passwd.real, never the host's file.
    fs.writeFileSync(path.join(other, "etc/passwd.real"), "root:x:0:0::/:/bin/sh\nguest:x:777:777::/:/bin/sh\n");
    fs.symlinkSync("/etc/passwd.real", path.join(other, "etc/passwd"));
    const { out } = await run("id -u", { rootfs: other, user: "guest" });
    expect(out).toBe("777\n");
    // A link to a host file (absolute or climbing out with ..) stays inside the rootfs.
    const hostFile = path.join(tmp, "host-passwd");
    fs.writeFileSync(hostFile, "root:x:0:0::/:/bin/sh\nhostonly:x:4242:4242::/:/bin/sh\n");
    for (const target of [hostFile, `../../../../../../..${hostFile}`]) {
      fs.rmSync(path.join(other, "etc/passwd"));
      fs.symlinkSync(target, path.join(other, "etc/passwd"));
      await expect(run("true", { rootfs: other, user: "hostonly" })).rejects.toThrow(/no user "hostonly"/);
    }
  });

  it("sets rlimits; without an RLIMIT_NOFILE the container gets soft 1024, hard 524288 (or the agent's hard limit)", async () => {
    const { out } = await run("ulimit -n; ulimit -Hn", { rlimits: [{ type: "RLIMIT_NOFILE", soft: 123, hard: 456 }] });
    expect(out).toBe("123\n456\n");
    const ownHard = Number(/^Max open files\s+\S+\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"))![1]);
    const hard = Math.min(524288, ownHard);
    const dflt = await run("ulimit -n; ulimit -Hn", { rlimits: [{ type: "RLIMIT_CORE", soft: 0, hard: 0 }] });
    expect(dflt.out).toBe(`${Math.min(1024, hard)}\n${hard}\n`);
    // What the container had without a default: this process's soft limit (not 1024 here).
    expect(Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"))![1])).not.toBe(1024);
    await expect(run("true", { rlimits: [{ type: "RLIMIT_NOPE", soft: 1, hard: 1 }] })).rejects.toThrow(
      'rlimits[0].type: unknown rlimit "RLIMIT_NOPE"',
    );
  });
});

describe("defences", () => {
  it("CVE-2019-5736: overwriting /proc/*/exe from inside changes nothing on the host", async () => {
    const shimBefore = sha(SHIM_PATH);
    const nodeBefore = sha(process.execPath);
    const { out } = await run(
      [
        "for p in /proc/[0-9]*; do (echo pwned >> $p/exe) 2>/dev/null && echo wrote=$p; done",
        "(echo pwned >> /proc/self/exe) 2>/dev/null && echo wrote=self",
        "echo exe1=$(readlink /proc/1/exe)",
        "echo done",
      ].join("; "),
    );
    expect(out).toContain("done\n");
    expect(out).not.toContain("wrote=");
    // pid 1 inside is the workload itself (exec'd from the rootfs), never a host binary.
    expect(out).toMatch(/exe1=\/bin\/(busybox|sh)\n/);
    expect(sha(SHIM_PATH)).toBe(shimBefore);
    expect(sha(process.execPath)).toBe(nodeBefore);
  });

  it("CVE-2024-21626: no host descriptor leaks in and a cwd of /proc/self/fd/N cannot reach the host", async () => {
    const { out } = await run("ls -l /proc/self/fd; echo fds=$(ls /proc/self/fd | wc -l)");
    // ls's own 0, 1, 2 and the directory it reads.
    expect(out).toContain("fds=4\n");
    for (const fd of [3, 4, 5, 6, 7, 8, 9, 10]) {
      // Refused at start: every descriptor beyond stdio is closed before the
      // chdir, and a cwd that resolves outside the root is refused.
      await expect(run("pwd; ls /", { workingDir: `/proc/self/fd/${fd}` })).rejects.toThrow(
        /chdir \/proc\/self\/fd\/\d+|working directory escapes the root/,
      );
    }
  });

  it.each(["dev", "sys", "proc"])("refuses a rootfs whose /%s is a symlink", async (dir) => {
    const evil = path.join(tmp, `evil-${dir}`);
    fs.mkdirSync(path.join(evil, "bin"), { recursive: true });
    fs.copyFileSync(path.join(rootfs, "bin/busybox"), path.join(evil, "bin/busybox"));
    fs.symlinkSync("/", path.join(evil, dir));
    await expect(run("true", { rootfs: evil, command: ["/bin/busybox", "true"] })).rejects.toThrow(
      new RegExp(`refusing to mount over symlink .*evil-${dir}/${dir}`),
    );
    expect(rt.list()).toEqual([]);
  });
});
