// runtime-spec features of grove-runtime beside runc (the neighbour of
// runtime-oci-conformance.test.ts, which holds the first cases): unknown
// properties, all five capability sets, oomScoreAdj and umask, the command line's create (stdio
// passed through, --pid-file, a process that cannot be executed), a bundle's own seccomp
// profile and memory.swap. Each case
// runs ONE config.json through Debian's runc and the static grove-runtime and
// compares what they report and what a process inside sees.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RUN_TAG, tempDir } from "./harness/run-id";

const REPO = path.resolve(__dirname, "../..");
const GROVE = path.join(REPO, "agent", "bin", "grove-runtime");
const TAG = `grove-spec-${RUN_TAG}`;
const RUNC_CGROUP = `${TAG}-runc`;

type Config = Record<string, unknown> & {
  process: Record<string, unknown> & { args: string[]; user: Record<string, unknown> };
  linux: Record<string, unknown> & { resources: Record<string, unknown> };
  mounts: Record<string, unknown>[];
  root: Record<string, unknown>;
};

interface Result {
  code: number;
  out: string;
  err: string;
}

let tmp: string;
let bundle: string;
let base: Config;
let seq = 0;
const created: { runtime: "runc" | "grove"; id: string }[] = [];

/** stdio to files: a created container holds the caller's stdio (that is the point). */
function cli(runtime: "runc" | "grove", args: string[], name = "cmd"): Result {
  const out = path.join(tmp, `${name}.out`);
  const err = path.join(tmp, `${name}.err`);
  const fds = [fs.openSync(out, "w"), fs.openSync(err, "w")];
  const argv =
    runtime === "runc"
      ? ["runc", ["--root", path.join(tmp, "runc-state"), ...args]]
      : [GROVE, ["--root", path.join(tmp, "grove-state"), "--cgroup-parent", TAG, ...args]];
  try {
    const r = spawnSync(argv[0] as string, argv[1] as string[], {
      stdio: ["ignore", fds[0]!, fds[1]!],
      timeout: 30_000,
    });
    return { code: r.status ?? -1, out: fs.readFileSync(out, "utf8"), err: fs.readFileSync(err, "utf8") };
  } finally {
    fds.forEach((fd) => fs.closeSync(fd));
  }
}

function writeConfig(edit: (c: Config) => void): void {
  const c = JSON.parse(JSON.stringify(base)) as Config;
  c.linux.cgroupsPath = `/${RUNC_CGROUP}/c${++seq}`;
  edit(c);
  fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(c, null, 2));
}

function run(runtime: "runc" | "grove"): Result {
  const id = `${TAG}-${runtime}-${++seq}`;
  return cli(runtime, ["run", "--bundle", bundle, id], `run-${runtime}`);
}

/** The program under both: same exit code, output and error output. */
function expectSame(edit: (c: Config) => void, script: string): string {
  writeConfig((c) => {
    c.process.args = ["/bin/sh", "-c", script];
    edit(c);
  });
  const r = run("runc");
  const g = run("grove");
  expect(r.err).not.toContain("level=error");
  expect(g).toEqual(r);
  return r.out;
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > until) throw new Error("timed out");
    await new Promise((res) => setTimeout(res, 20));
  }
}

function stateOf(runtime: "runc" | "grove", id: string): { status: string; pid: number; annotations?: unknown } {
  const st = cli(runtime, ["state", id], "state");
  expect(st).toMatchObject({ code: 0 });
  return JSON.parse(st.out) as { status: string; pid: number; annotations?: unknown };
}

beforeAll(() => {
  tmp = tempDir("grove-spec");
  bundle = path.join(tmp, "bundle");
  fs.mkdirSync(bundle);
  execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [path.join(bundle, "rootfs")], { stdio: "pipe" });
  fs.writeFileSync(path.join(bundle, "rootfs", "not-executable"), "#!/bin/sh\necho never\n", { mode: 0o644 });
  execFileSync("runc", ["spec"], { cwd: bundle });
  base = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as Config;
  base.process.terminal = false;
  base.root.readonly = false;
});

afterAll(() => {
  for (const { runtime, id } of created) cli(runtime, ["delete", "--force", id]);
  for (const c of fs.readdirSync("/sys/fs/cgroup")) {
    for (const parent of [RUNC_CGROUP, TAG]) {
      const dir = path.join("/sys/fs/cgroup", c, parent);
      if (!fs.existsSync(dir)) continue;
      for (const sub of fs.readdirSync(dir, { withFileTypes: true })) {
        if (sub.isDirectory()) fs.rmdirSync(path.join(dir, sub.name));
      }
      fs.rmdirSync(dir);
    }
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("grove-runtime vs runc: runtime-spec features", () => {
  it("unknown properties are ignored at every level (runtime-spec: a runtime must not fail on them)", () => {
    const out = expectSame((c) => {
      c["org.example.future"] = { nested: [1, 2, { deep: true }] };
      c.windows = { layerFolders: ["C:\\layers"] };
      c.process.futureKnob = 3;
      c.process.user.futureName = "x";
      c.root.futureFlag = true;
      c.linux.futureSetting = { a: "b" };
      c.linux.resources.futureController = { limit: 1 };
      c.linux.resources.memory = { limit: 64 * 1024 * 1024, futureField: 1 };
      c.mounts[0]!.futureOption = "ignored";
    }, "echo ran; id -u");
    expect(out).toBe("ran\n0\n");
  });

  it("capabilities: all five sets as given, for root and for another user", () => {
    const caps = "grep -E '^Cap' /proc/self/status";
    const bnd = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_SETUID"];
    const five = {
      bounding: bnd,
      effective: ["CAP_CHOWN", "CAP_KILL"],
      permitted: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
      inheritable: ["CAP_NET_RAW", "CAP_KILL"],
      ambient: ["CAP_NET_RAW"],
    };
    // Root: execve would raise permitted and effective to bounding | inheritable, but with
    // noNewPrivileges (runc spec's) the kernel keeps them within the permitted set given.
    const root = expectSame((c) => (c.process.capabilities = five), caps);
    expect(root).toContain("CapInh:\t0000000000002020");
    expect(root).toContain("CapEff:\t0000000000002021");
    expect(root).toContain("CapBnd:\t00000000000420a1");
    expect(root).toContain("CapAmb:\t0000000000002000");
    // Another user keeps its ambient set across execve: NET_RAW permitted and effective.
    const user = expectSame((c) => {
      c.process.capabilities = five;
      c.process.user = { uid: 1000, gid: 1000 };
    }, caps);
    expect(user).toContain("CapPrm:\t0000000000002000");
    expect(user).toContain("CapEff:\t0000000000002000");
    // A generator's bundle with all five sets equal (inheritable too).
    const all = { bounding: bnd, effective: bnd, permitted: bnd, inheritable: bnd, ambient: bnd };
    expect(
      expectSame((c) => {
        c.process.capabilities = all;
        c.process.user = { uid: 1000, gid: 1000 };
      }, caps),
    ).toContain("CapAmb:\t00000000000420a1");
    // The capability really works for the non-root user: chown needs CAP_CHOWN.
    expect(
      expectSame((c) => {
        c.process.capabilities = all;
        c.process.user = { uid: 1000, gid: 1000 };
      }, "f=$(mktemp) && chown 0:0 $f && echo chowned"),
    ).toBe("chowned\n");
  });

  it("process.oomScoreAdj and user.umask as given", () => {
    const probe = "cat /proc/self/oom_score_adj; umask; touch /tmp/u.$$ && stat -c %a /tmp/u.$$; rm /tmp/u.$$";
    expect(
      expectSame((c) => {
        c.process.oomScoreAdj = 500;
        c.process.user = { uid: 0, gid: 0, umask: 0o077 };
      }, probe),
    ).toBe("500\n0077\n600\n");
    // Another user (the value is written while the init is still privileged).
    expect(
      expectSame((c) => {
        c.process.oomScoreAdj = 200;
        c.process.user = { uid: 1000, gid: 1000, umask: 0o027 };
      }, probe),
    ).toBe("200\n0027\n640\n");
  });

  it("create: the caller's stdio is the container's, --pid-file, annotations in state", async () => {
    writeConfig((c) => {
      c.process.args = ["/bin/sh", "-c", "echo out-$$; echo err-$$ >&2"];
      c.annotations = { "org.example.kept": "yes" };
    });
    const seen: Record<string, unknown> = {};
    for (const runtime of ["runc", "grove"] as const) {
      const id = `${TAG}-${runtime}-${++seq}`;
      created.push({ runtime, id });
      const pidFile = path.join(tmp, `${runtime}.pid`);
      const c = cli(runtime, ["create", "--bundle", bundle, "--pid-file", pidFile, id], `create-${runtime}`);
      expect(c.code).toBe(0);
      const st = stateOf(runtime, id);
      expect(Number(fs.readFileSync(pidFile, "utf8"))).toBe(st.pid);
      expect(cli(runtime, ["start", id])).toMatchObject({ code: 0 });
      await waitFor(() => stateOf(runtime, id).status === "stopped");
      // The container wrote into create's stdout and stderr files (after create returned).
      await waitFor(() => fs.readFileSync(path.join(tmp, `create-${runtime}.err`), "utf8").includes("err-1"));
      seen[runtime] = {
        out: fs.readFileSync(path.join(tmp, `create-${runtime}.out`), "utf8"),
        err: fs.readFileSync(path.join(tmp, `create-${runtime}.err`), "utf8"),
        annotations: st.annotations,
      };
      expect(cli(runtime, ["delete", id])).toMatchObject({ code: 0 });
    }
    expect(seen.grove).toEqual(seen.runc);
    expect(seen.runc).toEqual({ out: "out-1\n", err: "err-1\n", annotations: { "org.example.kept": "yes" } });
  });

  it("create: a process that cannot be executed is an error of create, and nothing is left", () => {
    for (const [args, reason] of [
      [["/bin/no-such-program"], /no such file or directory/i],
      [["/not-executable"], /permission denied/i],
      [["no-such-command-in-path"], /no-such-command-in-path/],
    ] as const) {
      writeConfig((c) => (c.process.args = [...args]));
      for (const runtime of ["runc", "grove"] as const) {
        const id = `${TAG}-${runtime}-${++seq}`;
        created.push({ runtime, id });
        const c = cli(runtime, ["create", "--bundle", bundle, id]);
        expect(c.code).not.toBe(0);
        expect(c.err).toContain(args[0]);
        expect(c.err).toMatch(reason);
        expect(cli(runtime, ["state", id]).code).not.toBe(0);
      }
    }
    const state = path.join(tmp, "grove-state");
    expect(fs.existsSync(state) ? fs.readdirSync(state) : []).toEqual([]);
  });
});

describe("grove-runtime vs runc: hooks", () => {
  const KINDS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] as const;
  interface Seen {
    hook: string;
    id: string;
    status: string;
    pid?: number;
    env: string;
    arg: string;
  }

  /** A hook appending "NAME ARG ENV STATE" to log (startContainer's path and log are the container's). */
  function hook(name: string, log: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      path: "/bin/sh",
      args: ["sh", "-c", `s=$(cat); echo "${name} $1 $X $s" >> ${log}`, "sh", `arg-${name}`],
      env: [`X=env-${name}`],
      ...extra,
    };
  }

  function hooksConfig(logDir: string, edit: (hooks: Record<string, unknown[]>) => void = () => {}): void {
    writeConfig((c) => {
      c.process.args = ["/bin/true"];
      c.mounts.push({ destination: "/hooklog", type: "bind", source: logDir, options: ["rbind", "rw"] });
      const hooks: Record<string, unknown[]> = {};
      for (const k of KINDS) hooks[k] = [hook(k, k === "startContainer" ? "/hooklog/log" : `${logDir}/log`)];
      edit(hooks);
      c.hooks = hooks;
    });
  }

  function seen(logDir: string): Seen[] {
    const file = path.join(logDir, "log");
    if (!fs.existsSync(file)) return [];
    return fs
      .readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((line) => {
        const [hookName, arg, env, ...json] = line.split(" ");
        const st = JSON.parse(json.join(" ")) as { id: string; status: string; pid?: number };
        return { hook: hookName!, arg: arg!, env: env!, id: st.id, status: st.status, pid: st.pid };
      });
  }

  function logDirFor(runtime: string): string {
    const dir = path.join(tmp, `hooks-${runtime}-${++seq}`);
    fs.mkdirSync(dir);
    return dir;
  }

  it("every kind runs once, in the lifecycle's order, with the state on stdin, its args and env", async () => {
    const runs: Record<string, Seen[]> = {};
    for (const runtime of ["runc", "grove"] as const) {
      const logDir = logDirFor(runtime);
      hooksConfig(logDir);
      const id = `${TAG}-${runtime}-${++seq}`;
      created.push({ runtime, id });
      expect(cli(runtime, ["create", "--bundle", bundle, id])).toMatchObject({ code: 0 });
      const pid = stateOf(runtime, id).pid;
      expect(cli(runtime, ["start", id])).toMatchObject({ code: 0 });
      await waitFor(() => stateOf(runtime, id).status === "stopped");
      await waitFor(() => seen(logDir).length >= 5);
      expect(cli(runtime, ["delete", id])).toMatchObject({ code: 0 });
      const all = seen(logDir);
      for (const s of all) {
        expect(s.id).toBe(id);
        expect([s.arg, s.env]).toEqual([`arg-${s.hook}`, `env-${s.hook}`]);
      }
      // pid: the init's on the host for the runtime's hooks, 1 for those run inside the container.
      expect(all.filter((s) => s.hook === "prestart" || s.hook === "createRuntime").map((s) => s.pid)).toEqual([
        pid,
        pid,
      ]);
      expect(all.filter((s) => s.hook.endsWith("Container")).map((s) => s.pid)).toEqual([1, 1]);
      runs[runtime] = all.map(({ hook: h, status }) => ({ hook: h, status }) as Seen);
    }
    const order = (r: Seen[]): string[] => r.map((s) => s.hook);
    for (const r of Object.values(runs)) {
      // startContainer and poststart race (one in the container, one in `start`): their order is free.
      expect(order(r).slice(0, 3)).toEqual(["prestart", "createRuntime", "createContainer"]);
      expect(new Set(order(r).slice(3, 5))).toEqual(new Set(["startContainer", "poststart"]));
      expect(order(r)[5]).toBe("poststop");
      expect(r).toHaveLength(6);
    }
    // Same states, but poststart's: runc reads "created" before the init has run, grove says "running".
    const byHook = (r: Seen[]) =>
      Object.fromEntries(r.filter((s) => s.hook !== "poststart").map((s) => [s.hook, s.status]));
    expect(byHook(runs.grove!)).toEqual(byHook(runs.runc!));
    expect(byHook(runs.grove!)).toEqual({
      prestart: "creating",
      createRuntime: "creating",
      createContainer: "creating",
      startContainer: "created",
      poststop: "stopped",
    });
    expect(runs.grove!.find((s) => s.hook === "poststart")!.status).toBe("running");
  });

  it("a hook that fails or runs past its timeout fails create, then poststop runs and nothing is left", () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["exit 3", { path: "/bin/sh", args: ["sh", "-c", "exit 3"] }, /hook|exit status 3/],
      ["sleep 30", { path: "/bin/sh", args: ["sh", "-c", "exec sleep 30"], timeout: 1 }, /timeout/],
    ];
    for (const [what, failing, reason] of cases) {
      for (const runtime of ["runc", "grove"] as const) {
        const logDir = logDirFor(runtime);
        hooksConfig(logDir, (h) => h.createRuntime!.unshift(failing));
        const id = `${TAG}-${runtime}-${++seq}`;
        created.push({ runtime, id });
        const t0 = performance.now();
        const c = cli(runtime, ["create", "--bundle", bundle, id]);
        if (runtime === "grove") expect(performance.now() - t0).toBeLessThan(what === "sleep 30" ? 10_000 : 5_000);
        expect(c.code).not.toBe(0);
        expect(c.err).toMatch(reason);
        expect(cli(runtime, ["state", id]).code).not.toBe(0);
        expect(seen(logDir).map((s) => s.hook)).toEqual(["prestart", "poststop"]);
      }
    }
    const state = path.join(tmp, "grove-state");
    expect(fs.existsSync(state) ? fs.readdirSync(state) : []).toEqual([]);
  });
});

describe("grove-runtime vs runc: devices", () => {
  it("linux.devices are made with their type, numbers, mode and owner; the device rules decide what opens", () => {
    const devices = [
      { path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o666, uid: 5, gid: 6 },
      { path: "/dev/oci/loop0", type: "b", major: 7, minor: 0, fileMode: 0o600, uid: 0, gid: 0 },
      { path: "/dev/oci/fifo", type: "p", fileMode: 0o620, uid: 1000, gid: 1000 },
    ];
    const probe =
      "for d in /dev/fuse /dev/oci/loop0 /dev/oci/fifo; do stat -c '%n %F %t:%T %a %u:%g' $d; done; " +
      "exec 3<>/dev/fuse && echo opened";
    const allowed = expectSame((c) => {
      c.linux.devices = devices;
      c.linux.resources.devices = [
        { allow: false, access: "rwm" },
        { allow: true, type: "c", major: 10, minor: 229, access: "rw" },
      ];
    }, probe);
    expect(allowed).toBe(
      [
        "/dev/fuse character special file a:e5 666 5:6",
        "/dev/oci/loop0 block special file 7:0 600 0:0",
        "/dev/oci/fifo fifo 0:0 620 1000:1000",
        "opened",
        "",
      ].join("\n"),
    );
    // runc's spec denies every device but its defaults: /dev/fuse is there and may not be opened.
    const denied = expectSame((c) => {
      c.linux.devices = devices;
      c.linux.resources.devices = [{ allow: false, access: "rwm" }];
    }, "(exec 3<>/dev/fuse) 2>&1; echo status $?");
    expect(denied).toMatch(/can't create \/dev\/fuse: Operation not permitted\nstatus 1\n$/);
  });
});

describe("grove-runtime vs runc: linux.cgroupsPath", () => {
  const TOP = `${TAG}-cg`;
  const controllers = (): string[] =>
    fs.readdirSync("/sys/fs/cgroup").filter((c) => fs.existsSync(path.join("/sys/fs/cgroup", c, "cgroup.procs")));
  /** The container's memory and pids cgroups as the host sees them, and its memory limit there. */
  function cgroupsOf(pid: number): { lines: string[]; limit: string } {
    const lines = fs
      .readFileSync(`/proc/${pid}/cgroup`, "utf8")
      .split("\n")
      // v1 (hybrid): the memory and pids hierarchies (runc also uses the unified one there, Grove not); v2: the one.
      .filter((l) => (fs.existsSync("/sys/fs/cgroup/memory") ? /:(memory|pids):/ : /^0::/).test(l))
      .map((l) => l.replace(/^\d+:/, ""));
    const mem = lines.find((l) => l.startsWith("memory:"));
    const file = mem
      ? path.join("/sys/fs/cgroup/memory", mem.slice("memory:".length), "memory.limit_in_bytes")
      : path.join("/sys/fs/cgroup", lines.find((l) => l.startsWith(":"))!.slice(1), "memory.max");
    return { lines, limit: fs.readFileSync(file, "utf8").trim() };
  }

  afterAll(() => {
    // Both runtimes leave the cgroups above the container's (they are the caller's).
    for (const c of controllers()) {
      for (const dir of [path.join(TOP, "a"), TOP]) {
        const p = path.join("/sys/fs/cgroup", c, dir);
        if (fs.existsSync(p)) fs.rmdirSync(p);
      }
    }
  });

  it("an absolute path, three levels deep: the container's cgroup is there, with its limits, and goes at delete", () => {
    const seen: Record<string, unknown> = {};
    for (const runtime of ["runc", "grove"] as const) {
      const cgPath = `/${TOP}/a/c-${runtime}`;
      writeConfig((c) => {
        c.process.args = ["/bin/sleep", "30"];
        c.linux.cgroupsPath = cgPath;
        c.linux.resources.memory = { limit: 48 * 1024 * 1024 };
      });
      const id = `${TAG}-${runtime}-${++seq}`;
      created.push({ runtime, id });
      expect(cli(runtime, ["create", "--bundle", bundle, id])).toMatchObject({ code: 0 });
      const { lines, limit } = cgroupsOf(stateOf(runtime, id).pid);
      seen[runtime] = { lines: lines.map((l) => l.replace(`c-${runtime}`, "c-X")), limit };
      expect(cli(runtime, ["delete", "--force", id])).toMatchObject({ code: 0 });
      for (const c of controllers()) expect(fs.existsSync(path.join("/sys/fs/cgroup", c, cgPath))).toBe(false);
    }
    expect(seen.grove).toEqual(seen.runc);
    expect((seen.grove as { lines: string[] }).lines).toContain(
      fs.existsSync("/sys/fs/cgroup/memory") ? `memory:/${TOP}/a/c-X` : `:/${TOP}/a/c-X`,
    );
    expect((seen.grove as { limit: string }).limit).toBe(String(48 * 1024 * 1024));
  });

  it("a relative path: as runc (under our own cgroup), or refused where v1 gives us different cgroups per controller", () => {
    const own = fs
      .readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .filter((l) => /:(memory|cpu|pids|devices|freezer|cpuacct)(,|:)/.test(l.replace(/^\d+/, "")))
      .map((l) => l.split(":")[2]);
    const uniform = new Set(own).size <= 1;
    writeConfig((c) => {
      c.process.args = ["/bin/true"];
      c.linux.cgroupsPath = `${TOP}-rel/c`;
    });
    const id = `${TAG}-grove-${++seq}`;
    created.push({ runtime: "grove", id });
    const g = cli("grove", ["create", "--bundle", bundle, id]);
    if (!uniform) {
      expect(g.code).toBe(1);
      expect(g.err).toContain("config.json linux.cgroupsPath: a relative path on this cgroup v1 host");
      return;
    }
    expect(g.code).toBe(0);
    const mine = cgroupsOf(stateOf("grove", id).pid).lines;
    expect(cli("grove", ["delete", "--force", id])).toMatchObject({ code: 0 });
    const rid = `${TAG}-runc-${++seq}`;
    created.push({ runtime: "runc", id: rid });
    expect(cli("runc", ["create", "--bundle", bundle, rid])).toMatchObject({ code: 0 });
    expect(cgroupsOf(stateOf("runc", rid).pid).lines).toEqual(mine);
    expect(cli("runc", ["delete", "--force", rid])).toMatchObject({ code: 0 });
  });
});

describe("grove-runtime vs runc: mounts and paths", () => {
  it("other filesystem types with their options: mqueue, devpts, sysfs, tmpfs", () => {
    const out = expectSame((c) => {
      c.mounts.push(
        { destination: "/mq", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
        {
          destination: "/pts2",
          type: "devpts",
          source: "devpts",
          options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        { destination: "/sys2", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
        { destination: "/scratch", type: "tmpfs", source: "scratch", options: ["rprivate", "size=64k"] },
      );
    }, "grep -E ' /(mq|pts2|sys2|scratch) ' /proc/self/mounts");
    expect(out.split("\n")).toEqual([
      "mqueue /mq mqueue rw,nosuid,nodev,noexec,relatime 0 0",
      expect.stringMatching(/^devpts \/pts2 devpts rw,nosuid,noexec,relatime,.*mode=620,ptmxmode=666 0 0$/),
      "sysfs /sys2 sysfs ro,nosuid,nodev,noexec,relatime 0 0",
      expect.stringMatching(/^scratch \/scratch tmpfs rw,relatime,size=64k/),
      "",
    ]);
  });

  it("linux.maskedPaths and readonlyPaths beyond Grove's lists: a file, a directory, read-only", () => {
    const out = expectSame((c) => {
      c.linux.maskedPaths = [...(c.linux.maskedPaths as string[]), "/proc/cpuinfo", "/etc"];
      c.linux.readonlyPaths = [...(c.linux.readonlyPaths as string[]), "/tmp"];
    }, "wc -c < /proc/cpuinfo; ls -A /etc | wc -l; touch /tmp/x 2>/dev/null || echo tmp=read-only; grep -c . /proc/self/mounts >/dev/null");
    expect(out).toBe("0\n0\ntmp=read-only\n");
  });
});

describe("grove-runtime vs runc: uts and ipc namespaces", () => {
  const probe = "for n in uts ipc; do readlink /proc/self/ns/$n; done; hostname";
  const without = (c: Config): void => {
    c.linux.namespaces = (c.linux.namespaces as { type: string }[]).filter((n) => n.type !== "uts" && n.type !== "ipc");
    c.hostname = "";
  };
  const ns = (pid: number | string): string =>
    ["uts", "ipc"].map((n) => fs.readlinkSync(`/proc/${pid}/ns/${n}`)).join("\n") + "\n";

  it("not listed: the runtime's own (and its hostname is left alone)", () => {
    expect(expectSame(without, probe)).toBe(ns("self") + os.hostname() + "\n");
    expect(os.hostname()).not.toBe("runc");
  });

  it("joined by path, with the namespace's hostname; a hostname of the bundle's own needs a new uts namespace", async () => {
    const holder = spawn("unshare", ["--uts", "--ipc", "sh", "-c", `hostname ${TAG}-uts && exec sleep 60`], {
      stdio: "ignore",
    });
    try {
      const pid = holder.pid!;
      await waitFor(() => fs.existsSync(`/proc/${pid}/ns/uts`) && ns(pid) !== ns("self"));
      await waitFor(
        () =>
          spawnSync("nsenter", ["-t", String(pid), "-u", "hostname"])
            .stdout.toString()
            .trim() === `${TAG}-uts`,
      );
      const join = (c: Config): void => {
        without(c);
        (c.linux.namespaces as { type: string; path?: string }[]).push(
          { type: "uts", path: `/proc/${pid}/ns/uts` },
          { type: "ipc", path: `/proc/${pid}/ns/ipc` },
        );
      };
      expect(expectSame(join, probe)).toBe(ns(pid) + `${TAG}-uts\n`);
      writeConfig((c) => {
        join(c);
        c.hostname = "mine";
      });
      const id = `${TAG}-grove-${++seq}`;
      const g = cli("grove", ["run", "--bundle", bundle, id]);
      expect(g.code).toBe(1);
      expect(g.err).toContain("config.json hostname: needs a uts namespace of the container's own");
    } finally {
      holder.kill("SIGKILL");
    }
    expect(os.hostname()).not.toBe(`${TAG}-uts`);
  });
});

/** Reads a created container's cgroup file on the host (both runtimes put it at its cgroupsPath). */
function cgroupFile(cgroupsPath: string, v1: string, v2: string): string {
  const v2Host = fs.existsSync("/sys/fs/cgroup/cgroup.controllers");
  const rel = cgroupsPath;
  const file = v2Host ? path.join("/sys/fs/cgroup", rel, v2) : path.join("/sys/fs/cgroup/memory", rel, v1);
  return fs.readFileSync(file, "utf8").trim();
}

/** create, start, wait until stopped: what the container wrote to create's stdout and stderr. */
async function createAndStart(runtime: "runc" | "grove"): Promise<{ out: string; err: string }> {
  const id = `${TAG}-${runtime}-${++seq}`;
  created.push({ runtime, id });
  const name = `seccomp-create-${runtime}`;
  expect(cli(runtime, ["create", "--bundle", bundle, id], name)).toMatchObject({ code: 0 });
  expect(cli(runtime, ["start", id])).toMatchObject({ code: 0 });
  await waitFor(() => stateOf(runtime, id).status === "stopped");
  // The output is written by the container after create returned: wait for its last line.
  await waitFor(() => fs.readFileSync(path.join(tmp, `${name}.out`), "utf8").includes("Seccomp"));
  const r = {
    out: fs.readFileSync(path.join(tmp, `${name}.out`), "utf8"),
    err: fs.readFileSync(path.join(tmp, `${name}.err`), "utf8"),
  };
  expect(cli(runtime, ["delete", id])).toMatchObject({ code: 0 });
  return r;
}

describe("grove-runtime vs runc: a bundle's seccomp profile and memory.swap", () => {
  const arch = process.arch === "x64" ? "SCMP_ARCH_X86_64" : "SCMP_ARCH_AARCH64";
  // A deny-list profile: mkdir with mode 0700 gets EPERM (an argument condition), chmod
  // EACCES (errnoRet), everything else is allowed.
  const profile = {
    defaultAction: "SCMP_ACT_ALLOW",
    architectures: [arch],
    syscalls: [
      { names: ["mkdir"], action: "SCMP_ACT_ERRNO", args: [{ index: 1, value: 0o700, op: "SCMP_CMP_EQ" }] },
      { names: ["mkdirat"], action: "SCMP_ACT_ERRNO", args: [{ index: 2, value: 0o700, op: "SCMP_CMP_EQ" }] },
      { names: ["chmod", "fchmodat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
    ],
  };
  // The rootfs is shared by the runs: the probe leaves nothing behind. mktemp -d makes its
  // directory with mode 0700 (refused), mkdir with 0777.
  const probe =
    "rm -rf /tmp/sc; mkdir /tmp/sc; echo mkdir=$?; mktemp -d /tmp/sc/XXXXXX >/dev/null 2>&1; echo mktemp=$?; " +
    "touch /tmp/sc/f; chmod 600 /tmp/sc/f; echo chmod=$?; rm -rf /tmp/sc; grep Seccomp: /proc/self/status";

  it("linux.seccomp: errno and errnoRet for a syscall, an argument condition; run and create/start", async () => {
    const out = expectSame((c) => (c.linux.seccomp = profile), probe);
    expect(out).toBe("mkdir=0\nmktemp=1\nchmod=1\nSeccomp:\t2\n");
    // Through create/start (grove-runtime's own monitor gets the program from create).
    writeConfig((c) => {
      c.process.args = ["/bin/sh", "-c", probe];
      c.linux.seccomp = profile;
    });
    const r = await createAndStart("runc");
    const g = await createAndStart("grove");
    expect(g).toEqual(r);
    expect(g).toEqual({
      out: "mkdir=0\nmktemp=1\nchmod=1\nSeccomp:\t2\n",
      err: "chmod: /tmp/sc/f: Permission denied\n",
    });
  });

  it("linux.seccomp: what Grove's filter cannot express is refused naming the field, nothing is left", () => {
    for (const [edit, message] of [
      [
        (p: Record<string, unknown>) => ((p.syscalls as { action: string }[])[2]!.action = "SCMP_ACT_NOTIFY"),
        "config.json linux.seccomp.syscalls[2].action: SCMP_ACT_NOTIFY is not supported",
      ],
      [
        (p: Record<string, unknown>) =>
          (p.architectures = [arch, arch === "SCMP_ARCH_X86_64" ? "SCMP_ARCH_X86" : "SCMP_ARCH_ARM"]),
        "config.json linux.seccomp.architectures[1]: SCMP_ARCH_",
      ],
      [
        (p: Record<string, unknown>) =>
          ((p.syscalls as { args?: { value: number }[] }[])[0]!.args![0]!.value = 2 ** 33),
        "config.json linux.seccomp.syscalls[0].args[0].value: 8589934592 does not fit in 32 bits",
      ],
    ] as const) {
      const p = JSON.parse(JSON.stringify(profile)) as Record<string, unknown>;
      edit(p);
      writeConfig((c) => {
        c.process.args = ["/bin/true"];
        c.linux.seccomp = p;
      });
      const g = run("grove");
      expect(g.code).not.toBe(0);
      expect(g.err).toContain(message);
      const id = `${TAG}-grove-${++seq}`;
      expect(cli("grove", ["create", "--bundle", bundle, id]).err).toContain(message);
    }
    const state = path.join(tmp, "grove-state");
    expect(fs.existsSync(state) ? fs.readdirSync(state) : []).toEqual([]);
  });

  it("linux.resources.memory.swap: the same memory+swap limit as runc (-1 unlimited), refused below the limit", () => {
    const limit = 64 * 1024 * 1024;
    for (const swap of [2 * limit, -1]) {
      const seen: Record<string, string> = {};
      for (const runtime of ["runc", "grove"] as const) {
        let cgroupsPath = "";
        writeConfig((c) => {
          c.process.args = ["/bin/true"];
          c.linux.resources.memory = { limit, swap };
          cgroupsPath = c.linux.cgroupsPath as string;
        });
        const id = `${TAG}-${runtime}-${++seq}`;
        created.push({ runtime, id });
        expect(cli(runtime, ["create", "--bundle", bundle, id])).toMatchObject({ code: 0 });
        seen[runtime] = cgroupFile(cgroupsPath, "memory.memsw.limit_in_bytes", "memory.swap.max");
        expect(cli(runtime, ["delete", "--force", id])).toMatchObject({ code: 0 });
      }
      expect(seen.grove).toBe(seen.runc);
      // v1: memory + swap; v2: swap alone (swap - limit), "max" for -1.
      const v2 = fs.existsSync("/sys/fs/cgroup/cgroup.controllers");
      const want = swap === -1 ? (v2 ? "max" : "9223372036854771712") : String(v2 ? swap - limit : swap);
      expect(seen.grove).toBe(want);
    }
    writeConfig((c) => (c.linux.resources.memory = { limit, swap: limit / 2 }));
    expect(run("grove").err).toContain("config.json linux.resources.memory.swap: 33554432 is below memory.limit");
  });
});
