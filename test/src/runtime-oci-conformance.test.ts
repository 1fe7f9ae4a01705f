// OCI runtime-spec conformance of grove-runtime, checked side by side with runc.
//
// Not the runtime-tools validation suite (it cannot run here: Debian ships no
// validation/ programs and nothing is fetched from outside): a differential
// test over the areas those programs cover. Each case writes ONE config.json
// (from `runc spec`, edited for the case) into ONE bundle, runs it through
// Debian's runc and through grove-runtime (the static C command line), and
// compares what a process inside observes and what the command line reports.
// Where Grove differs on purpose, the case asserts Grove's clear refusal naming
// the field (or the documented difference); docs/runtime.md "Conformance"
// lists them.
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RUN_TAG, tempDir } from "./harness/run-id";

const REPO = path.resolve(__dirname, "../..");
const GROVE = path.join(REPO, "agent", "bin", "grove-runtime");
const TAG = `grove-conf-${RUN_TAG}`;
const RUNC_CGROUP = `${TAG}-runc`; // runc's cgroupsPath parent
const NETNS = TAG;

type Config = Record<string, unknown> & {
  process: Record<string, unknown> & { args: string[]; env: string[]; capabilities: Record<string, string[]> };
  root: { path: string; readonly: boolean };
  linux: Record<string, unknown> & {
    namespaces: { type: string; path?: string }[];
    resources: Record<string, unknown> & { devices?: unknown[] };
    maskedPaths: string[];
    readonlyPaths: string[];
  };
  mounts: { destination: string; type?: string; source?: string; options?: string[] }[];
};

interface Result {
  code: number;
  out: string;
  err: string;
}

let tmp: string;
let bundle: string;
let groveRoot: string;
let runcRoot: string;
let base: Config;
let seq = 0;
let configs = 0;
const runcIds: string[] = [];
const groveIds: string[] = [];

function result(r: SpawnSyncReturns<string>): Result {
  return { code: r.status ?? -1, out: r.stdout ?? "", err: r.stderr ?? "" };
}

/** A command whose output goes to files: a created container's init may hold
 * inherited stdio open (runc's does), which would keep a pipe from closing. */
function detached(file: string, args: string[]): Result {
  const out = path.join(tmp, "cmd.out");
  const err = path.join(tmp, "cmd.err");
  const fds = [fs.openSync(out, "w"), fs.openSync(err, "w")];
  try {
    const r = spawnSync(file, args, { stdio: ["ignore", fds[0]!, fds[1]!], timeout: 30_000 });
    return { code: r.status ?? -1, out: fs.readFileSync(out, "utf8"), err: fs.readFileSync(err, "utf8") };
  } finally {
    fds.forEach((fd) => fs.closeSync(fd));
  }
}

function runc(...args: string[]): Result {
  return detached("runc", ["--root", runcRoot, ...args]);
}

function grove(...args: string[]): Result {
  return detached(GROVE, ["--root", groveRoot, "--cgroup-parent", TAG, ...args]);
}

/** Writes the bundle's one config.json: runc spec's, edited by the case. */
function writeConfig(edit: (c: Config) => void = () => undefined): void {
  const c = JSON.parse(JSON.stringify(base)) as Config;
  // The container's cgroup, one per config (the TypeScript grove-runtime: <--cgroup-parent>/<id> instead; documented).
  c.linux.cgroupsPath = `/${RUNC_CGROUP}/c${++configs}`;
  edit(c);
  fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(c, null, 2));
}

function ids(): { r: string; g: string } {
  seq += 1;
  const r = `${TAG}-r${seq}`;
  const g = `g${seq}`;
  runcIds.push(r);
  groveIds.push(g);
  return { r, g };
}

/** `run` of the current bundle in both, stdin given. */
function runBoth(input = ""): { runc: Result; grove: Result } {
  const { r, g } = ids();
  const rr = result(
    spawnSync("runc", ["--root", runcRoot, "run", "--bundle", bundle, r], { encoding: "utf8", input, timeout: 30_000 }),
  );
  const gr = result(
    spawnSync(GROVE, ["--root", groveRoot, "--cgroup-parent", TAG, "run", "--bundle", bundle, g], {
      encoding: "utf8",
      input,
      timeout: 30_000,
    }),
  );
  return { runc: rr, grove: gr };
}

/** The same program under both: same output and exit code. */
function expectSame(edit: (c: Config) => void, script: string, input = ""): string {
  writeConfig((c) => {
    c.process.args = ["/bin/sh", "-c", script];
    edit(c);
  });
  const { runc: r, grove: g } = runBoth(input);
  expect(r.err).not.toContain("level=error"); // runc itself failed
  expect({ code: g.code, out: g.out, err: g.err }).toEqual({ code: r.code, out: r.out, err: r.err });
  return r.out;
}

/** runc runs it; grove-runtime refuses it naming the field, and leaves nothing behind. */
function expectRefused(edit: (c: Config) => void, message: string, script = "true"): Result {
  writeConfig((c) => {
    c.process.args = ["/bin/sh", "-c", script];
    edit(c);
  });
  const { runc: r, grove: g } = runBoth();
  expect(g.code).toBe(1);
  expect(g.err).toContain(message);
  expect(fs.existsSync(groveRoot) ? fs.readdirSync(groveRoot) : []).toEqual([]);
  return r;
}

function cgroupOf(pid: number, controller: string): string {
  const line = fs
    .readFileSync(`/proc/${pid}/cgroup`, "utf8")
    .split("\n")
    .find((l) => l.split(":")[1]?.split(",").includes(controller));
  if (line === undefined) throw new Error(`no ${controller} cgroup for ${pid}`);
  return path.join("/sys/fs/cgroup", controller, line.split(":")[2]!);
}

function readCg(pid: number, controller: string, file: string): string {
  return fs.readFileSync(path.join(cgroupOf(pid, controller), file), "utf8").trim();
}

interface OciState {
  ociVersion: string;
  id: string;
  status: string;
  pid: number;
  bundle: string;
  annotations?: Record<string, string>;
}

function stateOf(r: Result): OciState {
  expect(r).toMatchObject({ code: 0 });
  return JSON.parse(r.out) as OciState;
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error("timed out");
    await new Promise((res) => setTimeout(res, 25));
  }
}

beforeAll(() => {
  tmp = tempDir("grove-conf");
  bundle = path.join(tmp, "bundle");
  groveRoot = path.join(tmp, "grove-state");
  runcRoot = path.join(tmp, "runc-state");
  fs.mkdirSync(bundle);
  execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [path.join(bundle, "rootfs")], { stdio: "pipe" });
  // /dev/fuse (10:229) as a node in the rootfs: the device cgroup decides whether it opens.
  execFileSync("mknod", ["-m", "666", path.join(bundle, "rootfs", "fuse-test"), "c", "10", "229"]);
  fs.mkdirSync(path.join(tmp, "share"));
  fs.writeFileSync(path.join(tmp, "share", "hello"), "from the host\n");
  execFileSync("runc", ["spec"], { cwd: bundle });
  base = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as Config;
  base.process.terminal = false;
  base.root.readonly = false;
  base.hostname = "conformance";
  execFileSync("ip", ["netns", "add", NETNS]);
});

afterAll(() => {
  for (const id of runcIds) runc("delete", "--force", id);
  for (const id of groveIds) grove("delete", "--force", id);
  spawnSync("ip", ["netns", "delete", NETNS]);
  for (const c of fs.readdirSync("/sys/fs/cgroup")) {
    for (const parent of [RUNC_CGROUP, TAG]) {
      const dir = path.join("/sys/fs/cgroup", c, parent);
      for (const sub of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
        if (sub.isDirectory()) fs.rmdirSync(path.join(dir, sub.name));
      }
      if (fs.existsSync(dir)) fs.rmdirSync(dir);
    }
  }
  for (const c of ["memory", "cpu", "pids", "devices"]) {
    expect(fs.existsSync(path.join("/sys/fs/cgroup", c, TAG))).toBe(false);
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("grove-runtime vs runc on the same bundle", () => {
  it("process: args, env, cwd, user uid/gid/additionalGids, stdio without a terminal", () => {
    const edit = (c: Config): void => {
      c.process.env.push("GREETING=hello world", "EMPTY=");
      c.process.cwd = "/tmp";
      c.process.user = { uid: 1000, gid: 1000, additionalGids: [5, 7] };
    };
    const out = expectSame(
      edit,
      'printf "%s|" "$0" "$@"; echo; pwd; id; env | sort; ls /proc/self/fd | tr "\\n" " "; echo; ' +
        "read line; echo stdin=$line; echo to-stderr >&2; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
      "through stdin\n",
    );
    expect(out).toContain("uid=1000 gid=1000 groups=5,7");
    expect(out).toContain("stdin=through stdin");
    expect(out).toContain("GREETING=hello world");
    // HOME from the rootfs's /etc/passwd, "/" for a uid it does not list (as runc).
    expect(out).toContain("HOME=/\n");
    // Arguments with spaces travel as they are.
    writeConfig((c) => {
      c.process.args = ["/bin/sh", "-c", 'printf "<%s>" "$@"', "sh", "a b", "", "c"];
    });
    const both = runBoth();
    expect(both.grove).toEqual(both.runc);
    expect(both.runc.out).toBe("<a b><><c>");
    // root's HOME from /etc/passwd
    expect(expectSame(() => undefined, "echo $HOME")).toBe("/root\n");
  });

  it("exit codes: the process's status, and a missing program fails the run", () => {
    expect(expectSame(() => undefined, "exit 0")).toBe("");
    writeConfig((c) => {
      c.process.args = ["/bin/sh", "-c", "exit 42"];
    });
    let both = runBoth();
    expect(both.runc.code).toBe(42);
    expect(both.grove.code).toBe(42);
    writeConfig((c) => {
      c.process.args = ["/bin/no-such-program"];
    });
    both = runBoth();
    expect(both.runc.code).not.toBe(0);
    expect(both.grove.code).not.toBe(0);
    expect(both.runc.err).toContain("/bin/no-such-program");
    expect(both.grove.err).toContain("/bin/no-such-program");
  });

  it("run: a process killed by SIGKILL exits 137 in both, through kill on the run container's state", async () => {
    writeConfig((c) => {
      c.process.args = ["/bin/sleep", "30"];
    });
    const { r, g } = ids();
    const exitOf = (child: ReturnType<typeof spawn>): Promise<number | null> =>
      new Promise((res) => child.on("exit", (code) => res(code)));
    const rExit = exitOf(spawn("runc", ["--root", runcRoot, "run", "--bundle", bundle, r], { stdio: "ignore" }));
    await waitFor(() => {
      const st = runc("state", r);
      return st.code === 0 && (JSON.parse(st.out) as OciState).status === "running";
    });
    expect(runc("kill", r, "KILL")).toMatchObject({ code: 0 });
    expect(await rExit).toBe(137);

    const pidFile = path.join(tmp, "run.pid");
    fs.rmSync(pidFile, { force: true });
    const gExit = exitOf(
      spawn(GROVE, ["--root", groveRoot, "--cgroup-parent", TAG, "run", "--pid-file", pidFile, "--bundle", bundle, g], {
        stdio: "ignore",
      }),
    );
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, "utf8") !== "");
    // As runc's, grove-runtime's run container has a state (runtime-oci-seccomp2.test.ts checks kill and delete).
    expect(JSON.parse(grove("state", g).out)).toMatchObject({ status: "running" });
    expect(grove("kill", g, "KILL")).toMatchObject({ code: 0 });
    expect(await gExit).toBe(137);
  });

  it("rlimits", () => {
    const out = expectSame((c) => {
      c.process.rlimits = [
        { type: "RLIMIT_NOFILE", soft: 512, hard: 1024 },
        { type: "RLIMIT_NPROC", soft: 100, hard: 200 },
        { type: "RLIMIT_CORE", soft: 0, hard: 0 },
        { type: "RLIMIT_MSGQUEUE", soft: 4096, hard: 8192 },
      ];
    }, "cat /proc/self/limits");
    expect(out).toMatch(/Max open files\s+512\s+1024/);
    expect(out).toMatch(/Max processes\s+100\s+200/);
  });

  it("capabilities: all five sets as /proc/self/status shows them", () => {
    const caps = "grep -E '^Cap' /proc/self/status";
    // runc spec's sets (ambient listed, inheritable empty: ambient stays empty in both).
    const dflt = expectSame(() => undefined, caps);
    expect(dflt).toContain("CapBnd:\t0000000020000420");
    expect(dflt).toContain("CapAmb:\t0000000000000000");
    const three = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_CHROOT"];
    const out = expectSame((c) => {
      c.process.capabilities = { bounding: three, effective: three, permitted: three };
    }, caps);
    expect(out).toContain("CapEff:\t0000000000042001");
    // A non-root user with the same sets.
    expectSame((c) => {
      c.process.capabilities = { bounding: three, effective: three, permitted: three };
      c.process.user = { uid: 1000, gid: 1000 };
    }, caps);
    // Sets that differ from each other, inheritable filled: applied as given, as runc
    // (more in runtime-oci-spec.test.ts).
    expectSame((c) => {
      c.process.capabilities = { bounding: three, effective: ["CAP_CHOWN"], permitted: three };
    }, caps);
    expectSame((c) => {
      c.process.capabilities = { bounding: three, effective: three, permitted: three, inheritable: ["CAP_CHOWN"] };
    }, caps);
    expectRefused((c) => {
      c.process.capabilities = { bounding: ["CAP_NO_SUCH"] };
    }, "config.json process.capabilities.bounding[0]: unknown capability CAP_NO_SUCH");
  });

  it("noNewPrivileges: true and false (or absent) as runc", () => {
    expect(expectSame((c) => (c.process.noNewPrivileges = true), "grep NoNewPrivs /proc/self/status")).toBe(
      "NoNewPrivs:\t1\n",
    );
    expect(expectSame((c) => (c.process.noNewPrivileges = false), "grep NoNewPrivs /proc/self/status")).toBe(
      "NoNewPrivs:\t0\n",
    );
    expect(expectSame((c) => delete c.process.noNewPrivileges, "grep NoNewPrivs /proc/self/status")).toBe(
      "NoNewPrivs:\t0\n",
    );
  });

  it("hostname", () => {
    // (domainname, linux.personality and the other process attributes grove-runtime refused
    // before: runtime-oci-attrs.test.ts.)
    expect(expectSame(() => undefined, "hostname")).toBe("conformance\n");
  });

  it("namespaces: new pid/mount/uts/ipc/net, or a network namespace by path", async () => {
    const self = (ns: string): string => fs.readlinkSync(`/proc/self/ns/${ns}`);
    const probe = "echo pid=$$; for n in pid mnt uts ipc net; do readlink /proc/self/ns/$n; done";
    writeConfig((c) => {
      c.process.args = ["/bin/sh", "-c", probe];
    });
    const both = runBoth();
    for (const r of [both.runc, both.grove]) {
      const lines = r.out.trim().split("\n");
      expect(lines[0]).toBe("pid=1");
      ["pid", "mnt", "uts", "ipc", "net"].forEach((ns, i) => {
        expect(lines[i + 1]).toMatch(new RegExp(`^${ns}:\\[\\d+\\]$`));
        expect(lines[i + 1]).not.toBe(self(ns));
      });
    }
    // A network namespace by path: both join it.
    const netns = `net:[${fs.statSync(`/run/netns/${NETNS}`).ino}]`;
    const joined = expectSame((c) => {
      c.linux.namespaces = c.linux.namespaces.map((n) =>
        n.type === "network" ? { type: "network", path: `/run/netns/${NETNS}` } : n,
      );
    }, "readlink /proc/self/ns/net");
    expect(joined).toBe(`${netns}\n`);
    // Joining another kind by path (a uts namespace this test made: runc sets the hostname in
    // it), or running without a namespace of its own: refused.
    const holder = spawn("unshare", ["--uts", "sleep", "60"], { stdio: "ignore" });
    try {
      await waitFor(() => {
        try {
          return fs.readlinkSync(`/proc/${holder.pid}/ns/uts`) !== self("uts");
        } catch {
          return false;
        }
      });
      // Joined by path (without a hostname of the bundle's own: runtime-oci-spec.test.ts).
      const uts = expectSame((c) => {
        c.linux.namespaces = c.linux.namespaces.map((n) =>
          n.type === "uts" ? { type: "uts", path: `/proc/${holder.pid}/ns/uts` } : n,
        );
        c.hostname = "";
      }, "readlink /proc/self/ns/uts");
      expect(uts).toBe(`${fs.readlinkSync(`/proc/${holder.pid}/ns/uts`)}\n`);
    } finally {
      holder.kill("SIGKILL");
    }
    expect(os.hostname()).not.toBe("conformance");
    // A cgroup namespace: both root it at the container's cgroups (every hierarchy shows "/");
    // without one in the bundle both stay in the runtime's (runtime-spec).
    writeConfig((c) => {
      c.linux.namespaces.push({ type: "cgroup" });
      c.process.args = ["/bin/sh", "-c", "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup"];
    });
    const cgroupNs = runBoth();
    expect(cgroupNs.grove.code).toBe(0);
    const [groveNs, ...groveCgroups] = cgroupNs.grove.out.trim().split("\n");
    const [runcNs, ...runcCgroups] = cgroupNs.runc.out.trim().split("\n");
    for (const ns of [groveNs, runcNs]) expect(ns).not.toBe(self("cgroup"));
    expect(groveCgroups.length).toBeGreaterThan(1);
    expect(groveCgroups).toEqual(runcCgroups);
    for (const line of groveCgroups) expect(line).toMatch(/^\d+:[^:]*:\/$/);
    expect(expectSame(() => undefined, "readlink /proc/self/ns/cgroup")).toBe(`${self("cgroup")}\n`);
    // Without pid or network: the host's, as runc (runtime-oci-mounts2.test.ts).
  });

  it("mounts: bind read-only and read-write, tmpfs with options, mqueue as runc; bind options refused naming the mount", () => {
    const share = path.join(tmp, "share");
    const out = expectSame((c) => {
      c.mounts.push({ destination: "/data", type: "bind", source: share, options: ["rbind", "ro"] });
    }, "cat /data/hello; touch /data/x 2>/dev/null && echo wrote || echo read-only; " + "grep ' /data ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1");
    expect(out).toBe("from the host\nread-only\nro\n");
    expect(fs.existsSync(path.join(share, "x"))).toBe(false);
    const rw = expectSame((c) => {
      c.mounts.push({ destination: "/data", type: "bind", source: share, options: ["rbind", "rw"] });
    }, "echo $$ >> /data/written && echo wrote");
    expect(rw).toBe("wrote\n");
    expect(fs.readFileSync(path.join(share, "written"), "utf8")).toBe("1\n1\n");
    // tmpfs with its options (flags and the filesystem's own), read-only too.
    const tmpfs = expectSame((c) => {
      const scratch = ["nosuid", "nodev", "size=1m", "mode=750"];
      c.mounts.push({ destination: "/scratch", type: "tmpfs", source: "tmpfs", options: scratch });
      c.mounts.push({ destination: "/frozen", type: "tmpfs", source: "tmpfs", options: ["ro", "noexec"] });
    }, "grep -E ' /(scratch|frozen) ' /proc/self/mounts; stat -c %a /scratch; echo x > /scratch/f && echo wrote; " + "(echo x > /frozen/f) 2>/dev/null || echo read-only");
    expect(tmpfs).toBe(
      "tmpfs /scratch tmpfs rw,nosuid,nodev,relatime,size=1024k,mode=750 0 0\n" +
        "tmpfs /frozen tmpfs ro,noexec,relatime 0 0\n750\nwrote\nread-only\n",
    );
    // Other types are mounted too (runtime-oci-spec.test.ts compares mqueue, devpts, sysfs).
    expect(
      expectSame(
        (c) => c.mounts.push({ destination: "/q", type: "mqueue", source: "mqueue" }),
        "grep -c ' /q mqueue ' /proc/self/mounts",
      ),
    ).toBe("1\n");
    // Bind options such as nosuid, and runc spec's /sys/fs/cgroup: runtime-oci-mounts2.test.ts.
  });

  it("maskedPaths and readonlyPaths: runc spec's lists and others as runc", () => {
    expectSame(
      () => undefined,
      "cat /proc/keys /proc/timer_list 2>&1 | wc -c; ls /sys/firmware | wc -l; (echo x > /proc/sysrq-trigger) 2>&1; " +
        "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1; grep -c processor /proc/cpuinfo >/dev/null && echo cpuinfo",
    );
    // Paths beyond Grove's lists are masked too (runtime-oci-spec.test.ts: a directory, read-only).
    expect(expectSame((c) => c.linux.maskedPaths.push("/proc/cpuinfo"), "wc -c < /proc/cpuinfo")).toBe("0\n");
    // Docker's newer masks, which Grove always applies, are accepted (a missing path is skipped by both).
    const interrupts = expectSame(
      (c) => c.linux.maskedPaths.push("/proc/interrupts", "/sys/devices/system/cpu/cpu0/thermal_throttle"),
      "wc -c < /proc/interrupts",
    );
    expect(interrupts).toBe("0\n");
    expect(
      expectSame((c) => c.linux.readonlyPaths.push("/proc/loadavg"), "(true > /proc/loadavg) 2>/dev/null || echo ro"),
    ).toBe("ro\n");
  });

  it("root.readonly", () => {
    const probe = "touch /probe-file 2>/dev/null && echo writable || echo read-only; rm -f /probe-file";
    expect(expectSame((c) => (c.root.readonly = true), probe)).toBe("read-only\n");
    expect(expectSame((c) => (c.root.readonly = false), probe)).toBe("writable\n");
  });

  it("linux.resources: memory limit, cpu quota and period, pids limit in the cgroup files", () => {
    const limits = (c: Config): void => {
      c.process.args = ["/bin/sleep", "30"];
      c.linux.resources.memory = { limit: 64 * 1024 * 1024 };
      c.linux.resources.cpu = { quota: 25_000, period: 50_000 };
      c.linux.resources.pids = { limit: 42 };
    };
    writeConfig(limits);
    const { r, g } = ids();
    expect(runc("create", "--bundle", bundle, r)).toMatchObject({ code: 0 });
    writeConfig(limits); // a cgroupsPath of its own: both run at once (grove-runtime honours it too)
    expect(grove("create", "--bundle", bundle, g)).toMatchObject({ code: 0 });
    const seen = (pid: number): string[] => [
      readCg(pid, "memory", "memory.limit_in_bytes"),
      readCg(pid, "cpu", "cpu.cfs_quota_us"),
      readCg(pid, "cpu", "cpu.cfs_period_us"),
      readCg(pid, "pids", "pids.max"),
    ];
    const runcSeen = seen(stateOf(runc("state", r)).pid);
    expect(runcSeen).toEqual([String(64 * 1024 * 1024), "25000", "50000", "42"]);
    expect(seen(stateOf(grove("state", g)).pid)).toEqual(runcSeen);
    expect(runc("delete", "--force", r).code).toBe(0);
    expect(grove("delete", "--force", g).code).toBe(0);
    // (reservation, blockIO and the other further resources: runtime-oci-attrs.test.ts.)
  });

  it("linux.sysctl: those of the container's namespaces as runc; the host's refused by both", () => {
    expect(
      expectSame(
        (c) => (c.linux.sysctl = { "net.ipv4.ip_forward": "1", "kernel.shmmni": "2048", "fs.mqueue.msg_max": "20" }),
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/sys/fs/mqueue/msg_max",
      ),
    ).toBe("1\n2048\n20\n");
    writeConfig((c) => (c.linux.sysctl = { "vm.swappiness": "10" }));
    const both = runBoth();
    expect(both.runc.code).not.toBe(0);
    expect(both.grove.code).toBe(1);
    expect(both.grove.err).toContain("config.json linux.sysctl.vm.swappiness: is not a sysctl of the container's");
  });

  it("seccomp: a bundle profile is applied as by runc (more in runtime-oci-spec); Grove's filter by annotation", () => {
    const out = expectSame(
      (c) =>
        (c.linux.seccomp = {
          defaultAction: "SCMP_ACT_ALLOW",
          syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }],
        }),
      "mkdir /tmp/d 2>&1; grep '^Seccomp:' /proc/self/status",
    );
    expect(out).toBe("mkdir: can't create directory '/tmp/d': Operation not permitted\nSeccomp:\t2\n");
    // No linux.seccomp: no filter in either.
    expect(expectSame(() => undefined, "grep '^Seccomp:' /proc/self/status")).toBe("Seccomp:\t0\n");
    writeConfig((c) => {
      c.process.args = ["/bin/sh", "-c", "grep '^Seccomp:' /proc/self/status"];
      c.annotations = { "org.grove.seccomp": "default" };
    });
    expect(runBoth().grove).toMatchObject({ code: 0, out: "Seccomp:\t2\n" });
  });

  it("devices: linux.resources.devices rules decide as in runc; linux.devices made", () => {
    const probe =
      "(head -c 0 /fuse-test && echo read=ok || echo read=denied) 2>/dev/null; " +
      "(true > /fuse-test && echo write=ok || echo write=denied) 2>/dev/null; " +
      "echo x > /dev/null && echo null=ok; ls /dev | tr '\\n' ' '";
    const rules = (extra: unknown[]) => (c: Config) => {
      c.linux.resources.devices = [{ allow: false, access: "rwm" }, ...extra];
    };
    expect(expectSame(rules([]), probe)).toMatch(/^read=denied\nwrite=denied\nnull=ok\n/);
    expect(expectSame(rules([{ allow: true, type: "c", major: 10, minor: 229, access: "r" }]), probe)).toMatch(
      /^read=ok\nwrite=denied\n/,
    );
    expect(expectSame(rules([{ allow: true, type: "c", major: 10, minor: 229, access: "rw" }]), probe)).toMatch(
      /^read=ok\nwrite=ok\n/,
    );
    // A device node Grove's /dev already has: accepted. (runc then leaves its cgroup rule to the
    // config, hence the allow rule.)
    expectSame((c) => {
      c.linux.devices = [{ path: "/dev/null", type: "c", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 }];
      rules([{ allow: true, type: "c", major: 1, minor: 3, access: "rwm" }])(c);
    }, "ls -l /dev/null | cut -c1-10");
    // Other nodes are made (runtime-oci-spec.test.ts checks their type, numbers, mode and owner).
    expect(
      expectSame((c) => {
        c.linux.devices = [{ path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }];
      }, "ls /dev/fuse"),
    ).toBe("/dev/fuse\n");
  });

  it("state through the lifecycle, kill by name and number, start twice, delete without and with --force", async () => {
    // Each runtime in turn (the rootfs is shared; the signals land in /tmp/signals).
    const seenBy: Record<string, unknown> = {};
    for (const [name, cli] of [
      ["runc", runc],
      ["grove", grove],
    ] as const) {
      const log = path.join(bundle, "rootfs", "tmp", "signals");
      fs.rmSync(log, { force: true });
      writeConfig((c) => {
        c.process.args = [
          "/bin/sh",
          "-c",
          "trap 'echo USR1 >> /tmp/signals' USR1; trap 'echo HUP >> /tmp/signals' HUP; " +
            "trap 'echo USR2 >> /tmp/signals' USR2; trap 'echo TERM >> /tmp/signals; exit 3' TERM; " +
            "echo ready >> /tmp/signals; while true; do sleep 0.05; done",
        ];
        c.annotations = { "org.example.owner": "conformance", "org.example.n": "1" };
      });
      const { r, g } = ids();
      const id = name === "runc" ? r : g;
      const steps: unknown[] = [];
      expect(cli("create", "--bundle", bundle, id)).toMatchObject({ code: 0 });
      const dup = cli("create", "--bundle", bundle, id);
      steps.push({ duplicateCreateRefused: dup.code !== 0 });
      const created = stateOf(cli("state", id));
      expect(created.pid).toBeGreaterThan(0);
      expect(created.ociVersion).toMatch(/^1\.0\.\d/);
      steps.push({
        status: created.status,
        id: created.id === id,
        bundle: created.bundle,
        annotations: created.annotations,
      });
      expect(fs.existsSync(log)).toBe(false); // not started yet
      expect(cli("start", id)).toMatchObject({ code: 0 });
      await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, "utf8").includes("ready"));
      const running = stateOf(cli("state", id));
      steps.push({ status: running.status, samePid: running.pid === created.pid });
      steps.push({ secondStartRefused: cli("start", id).code !== 0 });
      steps.push({ deleteRunningRefused: cli("delete", id).code !== 0 });
      steps.push({ badSignalRefused: cli("kill", id, "NOSUCHSIG").code !== 0 });
      for (const [sig, want] of [
        ["USR1", "USR1"],
        ["SIGHUP", "HUP"],
        ["12", "USR2"],
        ["10", "USR1"],
      ] as const) {
        expect(cli("kill", id, sig)).toMatchObject({ code: 0 });
        await waitFor(() => fs.readFileSync(log, "utf8").trim().endsWith(want));
      }
      expect(cli("kill", id, "15")).toMatchObject({ code: 0 });
      await waitFor(() => stateOf(cli("state", id)).status === "stopped");
      const stopped = stateOf(cli("state", id));
      steps.push({ status: stopped.status, pid: stopped.pid, annotations: stopped.annotations });
      steps.push({ signals: fs.readFileSync(log, "utf8") });
      steps.push({ killStoppedRefused: cli("kill", id, "KILL").code !== 0 });
      expect(cli("delete", id)).toMatchObject({ code: 0 });
      steps.push({ stateAfterDelete: cli("state", id).code !== 0 });
      // A running container: delete without --force refused, with --force it goes.
      expect(cli("create", "--bundle", bundle, id)).toMatchObject({ code: 0 });
      expect(cli("start", id)).toMatchObject({ code: 0 });
      steps.push({ deleteRunningRefusedAgain: cli("delete", id).code !== 0 });
      const pid = stateOf(cli("state", id)).pid;
      expect(cli("delete", "--force", id)).toMatchObject({ code: 0 });
      steps.push({ gone: cli("state", id).code !== 0 });
      await waitFor(() => !fs.existsSync(`/proc/${pid}`));
      seenBy[name] = steps;
    }
    expect(seenBy.grove).toEqual(seenBy.runc);
    expect(seenBy.runc).toEqual(
      expect.arrayContaining([
        {
          status: "created",
          id: true,
          bundle,
          annotations: { "org.example.owner": "conformance", "org.example.n": "1" },
        },
        { signals: "ready\nUSR1\nHUP\nUSR2\nUSR1\nTERM\n" },
      ]),
    );
  });
});

// The TypeScript command line (bin/grove-runtime-node.js, over NativeRuntime and
// grove-shim) reads bundles with the C reader through the addon (oci_config.c,
// readOciBundle; agent/src/oci/config.ts maps the result): the same fields are
// refused with the same messages, and what it runs is seen as under runc. Its
// `run` prints the container's log afterwards (stdout and stderr merged, no
// stdin), so the cases here write to stdout only.
describe("the TypeScript grove-runtime on the same bundles", () => {
  const NODE_CLI = path.join(REPO, "agent", "bin", "grove-runtime-node.js");
  function node(...args: string[]): Result {
    return detached(process.execPath, [NODE_CLI, "--root", groveRoot, "--cgroup-parent", TAG, ...args]);
  }

  it("runs what runc runs and sees the same", () => {
    const cases: [(c: Config) => void, string][] = [
      [
        (c) => {
          c.process.user = { uid: 1000, gid: 1000, additionalGids: [5, 7] };
          c.process.cwd = "/tmp";
          c.process.env.push("GREETING=hello world");
        },
        "pwd; id; env | sort; hostname",
      ],
      [() => undefined, "echo $HOME; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status"],
      [(c) => (c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 512, hard: 1024 }]), "ulimit -n; ulimit -Hn"],
      [
        (c) =>
          c.mounts.push({
            destination: "/data",
            type: "bind",
            source: path.join(tmp, "share"),
            options: ["rbind", "ro"],
          }),
        "cat /data/hello; touch /data/y 2>/dev/null && echo wrote || echo read-only",
      ],
      [(c) => (c.root.readonly = true), "touch /x 2>/dev/null && echo writable || echo read-only"],
      [(c) => c.linux.namespaces.push({ type: "cgroup" }), "cat /proc/self/cgroup"],
      [() => undefined, "readlink /proc/self/ns/cgroup"],
    ];
    for (const [edit, script] of cases) {
      writeConfig((c) => {
        c.process.args = ["/bin/sh", "-c", script];
        edit(c);
      });
      const { r, g } = ids();
      const rr = runc("run", "--bundle", bundle, r);
      const nr = node("run", "--bundle", bundle, g);
      expect(rr.err).toBe("");
      expect({ code: nr.code, out: nr.out }).toEqual({ code: rr.code, out: rr.out });
    }
  });

  it("refuses the fields the C grove-runtime refuses, with the same messages", () => {
    const refusals: [(c: Config) => void, string][] = [
      [(c) => (c.linux.sysctl = { "vm.swappiness": "10" }), "config.json linux.sysctl.vm.swappiness: is not a sysctl"],
      [
        (c) => (c.linux.namespaces = c.linux.namespaces.filter((n) => n.type !== "mount")),
        "config.json linux.namespaces: has no mount namespace",
      ],
    ];
    writeConfig((c) => c.linux.resources.devices!.push({ allow: true, type: "c", major: 10, minor: 229 }));
    const devices = node("create", "--bundle", bundle, ids().g);
    expect(devices.code).toBe(1);
    expect(devices.err).toContain("config.json linux.resources.devices[1]: the TypeScript grove-runtime applies");
    // What the C grove-runtime applies and the TypeScript one does not: capability sets that
    // differ, oomScoreAdj, umask, sysctls, noNewPrivileges false.
    const staticOnly: [(c: Config) => void, string][] = [
      [
        (c) => (c.process.capabilities = { bounding: ["CAP_CHOWN"], effective: [] }),
        "config.json process.capabilities.effective: must equal bounding",
      ],
      [
        (c) => (c.process.capabilities = { bounding: ["CAP_KILL"], inheritable: ["CAP_KILL"] }),
        "config.json process.capabilities.inheritable: must be",
      ],
      [(c) => (c.process.oomScoreAdj = 1), "config.json process.oomScoreAdj: is applied by the static grove-runtime"],
      [(c) => (c.process.user = { uid: 0, gid: 0, umask: 18 }), "config.json process.user.umask: is applied by"],
      [(c) => (c.linux.sysctl = { "net.ipv4.ip_forward": "1" }), "config.json linux.sysctl: is applied by"],
      [(c) => (c.process.noNewPrivileges = false), "config.json process.noNewPrivileges: is applied by"],
      [(c) => (c.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW" }), "config.json linux.seccomp: is applied by"],
      [
        (c) => (c.linux.resources.memory = { limit: 1 << 26, swap: 1 << 27 }),
        "config.json linux.resources.memory.swap: is applied by",
      ],
      [
        (c) => c.mounts.push({ destination: "/s", type: "tmpfs", source: "tmpfs" }),
        "config.json mounts: is applied by",
      ],
      [(c) => (c.hooks = { prestart: [{ path: "/bin/true" }] }), "config.json hooks: is applied by"],
      [
        (c) => (c.linux.namespaces = c.linux.namespaces.filter((n) => n.type !== "pid")),
        "config.json linux.namespaces: is applied by",
      ],
      [(c) => (c.linux.rootfsPropagation = "rslave"), "config.json linux.rootfsPropagation: is applied by"],
      [
        (c) => c.mounts.push({ destination: "/b", type: "bind", source: "/tmp", options: ["rbind", "rslave"] }),
        "config.json mounts: is applied by",
      ],
      [(c) => c.linux.maskedPaths.push("/proc/cpuinfo"), "config.json linux.maskedPaths: is applied by"],
      [(c) => c.linux.readonlyPaths.push("/proc/loadavg"), "config.json linux.readonlyPaths: is applied by"],
      [
        (c) => c.mounts.push({ destination: "/q", type: "mqueue", source: "mqueue" }),
        "config.json mounts: is applied by",
      ],
      [
        (c) => (c.linux.devices = [{ path: "/dev/fuse", type: "c", major: 10, minor: 229 }]),
        "config.json linux.devices: is applied by",
      ],
    ];
    for (const [edit, message] of staticOnly) {
      writeConfig(edit);
      const r = node("create", "--bundle", bundle, ids().g);
      expect(r.code).toBe(1);
      expect(r.err).toContain(message);
    }
    for (const [edit, message] of refusals) {
      writeConfig(edit);
      const { g } = ids();
      for (const r of [node("create", "--bundle", bundle, g), grove("create", "--bundle", bundle, g)]) {
        expect(r.code).toBe(1);
        expect(r.err).toContain(message);
      }
      expect(fs.existsSync(groveRoot) ? fs.readdirSync(groveRoot) : []).toEqual([]);
    }
  });
});
