// runtime-spec features of grove-runtime beside runc (the neighbour of
// runtime-oci-conformance.test.ts, which holds the first cases): unknown
// properties, all five capability sets, oomScoreAdj and umask, the command line's create (stdio
// passed through, --pid-file, a process that cannot be executed), a bundle's own seccomp
// profile, memory.swap and mount propagation. Each case
// runs ONE config.json through Debian's runc and the static grove-runtime and
// compares what they report and what a process inside sees.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  bundle,
  cli,
  created,
  expectSame,
  nextSeq,
  run,
  sideBySide,
  stateOf,
  TAG,
  tmp,
  waitFor,
  writeConfig,
} from "./harness/oci-side-by-side";

sideBySide("spec");

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
      const id = `${TAG}-${runtime}-${nextSeq()}`;
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
        const id = `${TAG}-${runtime}-${nextSeq()}`;
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

/** Reads a created container's cgroup file on the host (both runtimes put it at its cgroupsPath). */
function cgroupFile(cgroupsPath: string, v1: string, v2: string): string {
  const v2Host = fs.existsSync("/sys/fs/cgroup/cgroup.controllers");
  const rel = cgroupsPath;
  const file = v2Host ? path.join("/sys/fs/cgroup", rel, v2) : path.join("/sys/fs/cgroup/memory", rel, v1);
  return fs.readFileSync(file, "utf8").trim();
}

/** create, start, wait until stopped: what the container wrote to create's stdout and stderr. */
async function createAndStart(runtime: "runc" | "grove"): Promise<{ out: string; err: string }> {
  const id = `${TAG}-${runtime}-${nextSeq()}`;
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

  it("linux.seccomp: a profile runc refuses too is refused naming the field, nothing is left", () => {
    for (const [edit, message] of [
      [
        (p: Record<string, unknown>) => ((p.syscalls as { action: string }[])[2]!.action = "SCMP_ACT_NOTIFY"),
        "config.json linux.seccomp.listenerPath: is required with SCMP_ACT_NOTIFY",
      ],
      [
        (p: Record<string, unknown>) => ((p.syscalls as { args?: { value: number }[] }[])[0]!.args![0]!.value = -1),
        "config.json linux.seccomp.syscalls[0].args[0].value: -1 is not an integer",
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
      const id = `${TAG}-grove-${nextSeq()}`;
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
        const id = `${TAG}-${runtime}-${nextSeq()}`;
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

/** mountinfo's optional fields of the container's /p-* and /t-* mounts, one line each:
 * the host's peer group (the test's shared tmpfs) as "host", others as "n". */
const PROPAGATION_PROBE = "sed -E 's/ - .*//' /proc/self/mountinfo | cut -d' ' -f5,7- | grep -E '^/(p|t)-'";
function propagationSeen(out: string, hostGroup: string): string[] {
  return out
    .trim()
    .split("\n")
    .map((l) =>
      l
        .trim()
        .replace(new RegExp(`:${hostGroup}\\b`, "g"), ":host")
        .replace(/:\d+/g, ":n"),
    );
}

describe("grove-runtime vs runc: mount propagation", () => {
  // A tmpfs of the host's, shared (this machine's own mounts are private), bound into the
  // container in several ways; the options apply after the mount in the listed order.
  let src = "";
  let hostGroup = "";
  const mountsOf = (c: { mounts: Record<string, unknown>[] }): void => {
    const bind = (dst: string, ...opts: string[]): Record<string, unknown> => ({
      destination: dst,
      type: "bind",
      source: src,
      options: ["rbind", ...opts],
    });
    c.mounts.push(
      bind("/p-shared", "rshared"),
      bind("/p-slave", "rslave"),
      bind("/p-private", "rprivate"),
      bind("/p-default"),
      bind("/p-slave-then-shared", "rslave", "rshared"),
      bind("/p-shared-then-private", "rshared", "rprivate"),
      { destination: "/t-unbindable", type: "tmpfs", source: "tmpfs", options: ["nosuid", "runbindable"] },
      { destination: "/t-shared", type: "tmpfs", source: "tmpfs", options: ["shared"] },
    );
  };
  const hostMounts = (): string[] =>
    fs
      .readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => l.includes(tmp));

  beforeAll(() => {
    src = path.join(tmp, "propagation-src");
    fs.mkdirSync(src);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", `${TAG}-src`, src]);
    execFileSync("mount", ["--make-shared", src]);
    fs.mkdirSync(path.join(src, "sub"));
    const line = hostMounts().find((l) => l.split(" ")[4] === src) ?? "";
    hostGroup = /shared:(\d+)/.exec(line)?.[1] ?? "";
    expect(hostGroup).not.toBe("");
  });
  afterAll(() => {
    for (const dir of [path.join(src, "sub"), src]) {
      if (src !== "" && hostMounts().some((l) => l.split(" ")[4] === dir)) execFileSync("umount", [dir]);
    }
  });

  it("options shared, slave, private, unbindable (r forms) and rootfsPropagation as runc; a host mount reaches slaves, not private ones", async () => {
    const probe =
      `${PROPAGATION_PROBE}; cat /p-slave/sub/mark /p-shared/sub/mark /p-default/sub/mark; ` +
      "cat /p-private/sub/mark /p-shared-then-private/sub/mark 2>/dev/null | wc -l";
    // Both created (their mounts made), then a tmpfs mounted on the host under the source
    // before they start: propagation carries it into the container's slaves and peers.
    const ids = { runc: `${TAG}-runc-${nextSeq()}`, grove: `${TAG}-grove-${nextSeq()}` };
    for (const runtime of ["runc", "grove"] as const) {
      writeConfig((c) => {
        mountsOf(c);
        c.linux.rootfsPropagation = "rslave";
        c.process.args = ["/bin/sh", "-c", probe];
      }); // a cgroupsPath of its own: both exist at once
      created.push({ runtime, id: ids[runtime] });
      const r = cli(runtime, ["create", "--bundle", bundle, ids[runtime]], `propagation-${runtime}`);
      expect(r).toMatchObject({ code: 0 });
    }
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", `${TAG}-sub`, path.join(src, "sub")]);
    fs.writeFileSync(path.join(src, "sub", "mark"), "from the host\n");
    const seen: Record<string, string[]> = {};
    for (const runtime of ["runc", "grove"] as const) {
      expect(cli(runtime, ["start", ids[runtime]])).toMatchObject({ code: 0 });
      await waitFor(() => stateOf(runtime, ids[runtime]).status === "stopped");
      const out = path.join(tmp, `propagation-${runtime}.out`);
      await waitFor(() => /^\d+$/m.test(fs.readFileSync(out, "utf8")));
      seen[runtime] = propagationSeen(fs.readFileSync(out, "utf8"), hostGroup);
      expect(fs.readFileSync(path.join(tmp, `propagation-${runtime}.err`), "utf8")).toBe("");
      expect(cli(runtime, ["delete", ids[runtime]])).toMatchObject({ code: 0 });
    }
    execFileSync("umount", [path.join(src, "sub")]);
    expect(seen.grove).toEqual(seen.runc);
    expect(seen.grove).toEqual([
      "/p-shared shared:n master:host",
      "/p-slave master:host",
      "/p-private",
      "/p-default master:host",
      "/p-slave-then-shared shared:n master:host",
      "/p-shared-then-private",
      "/t-unbindable unbindable",
      "/t-shared shared:n",
      // The host's new mount, propagated to the peer and the slaves (into a private: no).
      "/p-slave-then-shared/sub shared:n master:n",
      "/p-slave/sub master:n",
      "/p-default/sub master:n",
      "/p-shared/sub shared:n master:n",
      "from the host",
      "from the host",
      "from the host",
      "0",
    ]);
  });

  it("rootfsPropagation shared and private; absent: runc's rslave; the host gains no mount", () => {
    const before = hostMounts();
    const runBoth = (rootfsPropagation: string | undefined): { runc: string[]; grove: string[] } => {
      writeConfig((c) => {
        mountsOf(c);
        if (rootfsPropagation !== undefined) c.linux.rootfsPropagation = rootfsPropagation;
        c.process.args = ["/bin/sh", "-c", PROPAGATION_PROBE];
      });
      const r = run("runc");
      const g = run("grove");
      expect([r.code, r.err, g.code, g.err]).toEqual([0, "", 0, ""]);
      return { runc: propagationSeen(r.out, hostGroup), grove: propagationSeen(g.out, hostGroup) };
    };
    const rshared = runBoth("rshared");
    expect(rshared.grove).toEqual(rshared.runc);
    expect(rshared.grove.slice(0, 4)).toEqual([
      "/p-shared shared:host",
      "/p-slave master:host",
      "/p-private",
      "/p-default shared:host",
    ]);
    const rprivate = runBoth("rprivate");
    expect(rprivate.grove).toEqual(rprivate.runc);
    expect(rprivate.grove.slice(0, 4)).toEqual(["/p-shared shared:n", "/p-slave", "/p-private", "/p-default"]);
    const absent = runBoth(undefined);
    expect(absent.grove).toEqual(absent.runc);
    expect(absent.runc.slice(0, 4)).toEqual([
      "/p-shared shared:n master:host",
      "/p-slave master:host",
      "/p-private",
      "/p-default master:host",
    ]);
    // What the containers mounted did not propagate out (rshared made the host's copy a peer).
    expect(hostMounts()).toEqual(before);
    // A value that is no propagation: refused naming the field (runc refuses it too).
    writeConfig((c) => (c.linux.rootfsPropagation = "sideways"));
    expect(run("runc").code).not.toBe(0);
    expect(run("grove")).toMatchObject({
      code: 1,
      err: expect.stringContaining("config.json linux.rootfsPropagation: must be shared, slave, private or unbindable"),
    });
  });
});
