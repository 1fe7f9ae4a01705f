// runtime-spec features of grove-runtime beside runc, the lifecycle side: hooks,
// linux.devices, linux.cgroupsPath, other mount types, the mount order, the bundle's
// masked and read-only paths, uts and ipc namespaces joined by path. Each case runs ONE
// config.json through Debian's runc and the static grove-runtime and compares
// what they report and what a process inside sees.
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  bundle,
  cli,
  created,
  expectSame,
  nextSeq,
  sideBySide,
  stateOf,
  TAG,
  tmp,
  waitFor,
  writeConfig,
  type Config,
} from "./harness/oci-side-by-side";

sideBySide("speclc");

describe("grove-runtime vs runc: hooks", () => {
  /** runc; grove-runtime with its own grove-shim; grove-runtime for a caller that reaps the init (the agent's handler). */
  const VARIANTS = [
    ["runc", false],
    ["grove", false],
    ["grove", true],
  ] as const;
  const KINDS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] as const;
  interface Seen {
    hook: string;
    id: string;
    status: string;
    pid?: number;
    env: string;
    arg: string;
  }

  /**
   * A hook appending "NAME ARG ENV STATE" to log (startContainer's path and log are the container's), on one
   * line: the state holds the config's annotations as written (writeConfig indents them).
   */
  function hook(name: string, log: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      path: "/bin/sh",
      args: ["sh", "-c", `s=$(tr -d '\\n'); echo "${name} $1 $X $s" >> ${log}`, "sh", `arg-${name}`],
      env: [`X=env-${name}`],
      ...extra,
    };
  }

  function hooksConfig(
    logDir: string,
    reaped: boolean,
    edit: (hooks: Record<string, unknown[]>) => void = () => {},
  ): void {
    writeConfig((c) => {
      c.process.args = ["/bin/true"];
      if (reaped) c.annotations = { ...(c.annotations as object), "org.grove.runtime.reaper": "caller" };
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
    const dir = path.join(tmp, `hooks-${runtime}-${nextSeq()}`);
    fs.mkdirSync(dir);
    return dir;
  }

  it("every kind runs once, in the lifecycle's order, with the state on stdin, its args and env", async () => {
    const runs: Record<string, Seen[]> = {};
    for (const [runtime, reaped] of VARIANTS) {
      const logDir = logDirFor(runtime);
      hooksConfig(logDir, reaped);
      const id = `${TAG}-${runtime}-${nextSeq()}`;
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
      runs[reaped ? "grove-reaped" : runtime] = all.map(({ hook: h, status }) => ({ hook: h, status }) as Seen);
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
    expect(byHook(runs["grove-reaped"]!)).toEqual(byHook(runs.runc!));
    expect(Object.keys(runs)).toHaveLength(3);
    expect(byHook(runs.grove!)).toEqual({
      prestart: "creating",
      createRuntime: "creating",
      createContainer: "creating",
      startContainer: "created",
      poststop: "stopped",
    });
    expect(runs.grove!.find((s) => s.hook === "poststart")!.status).toBe("running");
    expect(runs["grove-reaped"]!.find((s) => s.hook === "poststart")!.status).toBe("running");
  });

  it("a hook that fails or runs past its timeout fails create, then poststop runs and nothing is left", () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["exit 3", { path: "/bin/sh", args: ["sh", "-c", "exit 3"] }, /hook|exit status 3/],
      ["sleep 30", { path: "/bin/sh", args: ["sh", "-c", "exec sleep 30"], timeout: 1 }, /timeout/],
    ];
    for (const [what, failing, reason] of cases) {
      for (const [runtime, reaped] of VARIANTS) {
        const logDir = logDirFor(runtime);
        hooksConfig(logDir, reaped, (h) => h.createRuntime!.unshift(failing));
        const id = `${TAG}-${runtime}-${nextSeq()}`;
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
      const id = `${TAG}-${runtime}-${nextSeq()}`;
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

  it("a relative path: where runc puts it (under our own cgroup; per hierarchy on v1: runtime-oci-cgroups2)", () => {
    const lines: Record<string, string[]> = {};
    for (const runtime of ["grove", "runc"] as const) {
      writeConfig((c) => {
        c.process.args = ["/bin/true"];
        c.linux.cgroupsPath = `${TOP}-rel/c-${runtime}`;
      });
      const id = `${TAG}-${runtime}-${nextSeq()}`;
      created.push({ runtime, id });
      expect(cli(runtime, ["create", "--bundle", bundle, id])).toMatchObject({ code: 0 });
      lines[runtime] = cgroupsOf(stateOf(runtime, id).pid).lines.map((l) => l.replace(`c-${runtime}`, "c-X"));
      expect(cli(runtime, ["delete", "--force", id])).toMatchObject({ code: 0 });
    }
    expect(lines.grove).toEqual(lines.runc);
    // Both leave the cgroups above the container's: under our own cgroup in each v1 hierarchy (and runc in the
    // unified one of a hybrid host), under its parent on v2.
    const v2 = !fs.existsSync("/sys/fs/cgroup/memory");
    for (const line of fs
      .readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .filter((l) => l !== "")) {
      const [, controllers, own] = line.split(":") as [string, string, string];
      const rel = v2
        ? path.join("/sys/fs/cgroup", path.dirname(own), `${TOP}-rel`)
        : path.join(
            "/sys/fs/cgroup",
            controllers === "" ? "unified" : controllers.replace(/^name=/, ""),
            own,
            `${TOP}-rel`,
          );
      if (fs.existsSync(rel)) fs.rmdirSync(rel);
    }
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

  it("in the listed order: a bind under /dev or /proc listed before them is covered, one listed after them is seen", () => {
    const dir = path.join(tmp, `order-${nextSeq()}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "marker"), "from the host\n");
    const file = path.join(tmp, `order-${nextSeq()}.txt`);
    fs.writeFileSync(file, "42.00 1.00\n");
    const out = expectSame((c) => {
      c.mounts = [
        { destination: "/dev/early", type: "bind", source: dir, options: ["rbind"] },
        { destination: "/proc/loadavg", type: "bind", source: file, options: ["bind"] },
        ...c.mounts, // runc spec's: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup
        { destination: "/dev/shm", type: "bind", source: dir, options: ["rbind"] },
        { destination: "/proc/uptime", type: "bind", source: file, options: ["bind"] },
      ];
    }, "ls /dev/early 2>&1; cat /dev/shm/marker /proc/uptime; echo loadavg $(grep -c '^42.00 1.00$' /proc/loadavg)");
    // Grove made its /proc, /dev and /sys first: /dev/early and the fake loadavg were seen, the /dev/shm bind dropped.
    expect(out).toBe("ls: /dev/early: No such file or directory\nfrom the host\n42.00 1.00\nloadavg 0\n");
    // The TypeScript command line makes them before the bundle's mounts: it refuses this order, naming the field.
    const cli = path.resolve(__dirname, "../../agent/bin/grove-runtime-node.js");
    const state = path.join(tmp, "node-state");
    const ts = spawnSync(
      process.execPath,
      [cli, "--root", state, "--cgroup-parent", TAG, "create", "--bundle", bundle, `${TAG}-node-${nextSeq()}`],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect({ code: ts.status, err: ts.stderr }).toEqual({
      code: 1,
      err: expect.stringContaining("config.json mounts: is applied by the static grove-runtime only"),
    });
    expect(fs.existsSync(state) ? fs.readdirSync(state) : []).toEqual([]);
  });

  it("a mount that fails is named by its field: config.json mounts[N] (destination D), through run and create", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      // Refused before the container starts (the source is looked at first) ...
      [
        { destination: "/gone", type: "bind", source: path.join(tmp, "no-such-source"), options: ["rbind"] },
        /: mount source \S*no-such-source: No such file or directory$/,
      ],
      // ... and by the kernel, in the container's init.
      [{ destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["size=nonsense"] }, /: Invalid argument$/],
    ];
    for (const [mount, reason] of cases) {
      let index = -1;
      writeConfig((c) => {
        c.process.args = ["/bin/true"];
        index = c.mounts.push(mount) - 1;
      });
      const field = `config.json mounts[${index}] (destination ${mount.destination as string}): `;
      expect(cli("runc", ["run", "--bundle", bundle, `${TAG}-runc-${nextSeq()}`]).code).not.toBe(0);
      for (const cmd of ["run", "create"]) {
        const id = `${TAG}-grove-${nextSeq()}`;
        created.push({ runtime: "grove", id });
        const g = cli("grove", [cmd, "--bundle", bundle, id]);
        expect(g.code).toBe(1);
        expect(g.err.trim()).toMatch(reason);
        expect(g.err).toContain(field);
        expect(cli("grove", ["state", id]).code).not.toBe(0);
      }
    }
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
      const id = `${TAG}-grove-${nextSeq()}`;
      const g = cli("grove", ["run", "--bundle", bundle, id]);
      expect(g.code).toBe(1);
      expect(g.err).toContain("config.json hostname: needs a uts namespace of the container's own");
    } finally {
      holder.kill("SIGKILL");
    }
    expect(os.hostname()).not.toBe(`${TAG}-uts`);
  });
});
