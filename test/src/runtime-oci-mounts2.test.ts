// grove-runtime beside runc (test/src/harness/oci-side-by-side.ts), mounts and
// namespaces: bind options applied as runc applies them (a bind, then a remount
// with the flags; a user namespace's locked flags), runc spec's cgroup mount at
// /sys/fs/cgroup (with and without a cgroup namespace), runc's rslave when
// linux.rootfsPropagation is absent, the host's pid and network namespaces when
// linux.namespaces leaves them out, and the bind mounts of the agent's bundle
// writer (oci-bundle.ts) against its native path. docs/runtime.md "Conformance".
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ociConfig, type ContainerSpec } from "@grove/agent";
import {
  bundle,
  expectSame,
  nextSeq,
  run,
  sideBySide,
  TAG,
  tmp,
  writeConfig,
  type Config,
} from "./harness/oci-side-by-side";

sideBySide("mounts2");
// The rootfs under it is reached by a user namespace's root too.
beforeAll(() => fs.chmodSync(tmp, 0o755));

const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];
const namespaces = (c: Config): { type: string; path?: string }[] => c.linux.namespaces as { type: string }[];
/** linux.namespaces without `type`. */
const without = (type: string) => (c: Config) => (c.linux.namespaces = namespaces(c).filter((n) => n.type !== type));

/** A tmpfs of the test's at dir (options given), with a tmpfs mounted at dir/sub holding a file `mark`. */
function hostTmpfs(dir: string, options: string): void {
  fs.mkdirSync(dir);
  execFileSync("mount", ["-t", "tmpfs", "-o", options, `${TAG}-${path.basename(dir)}`, dir]);
  fs.mkdirSync(path.join(dir, "sub"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", `${TAG}-${path.basename(dir)}-sub`, path.join(dir, "sub")]);
  fs.writeFileSync(path.join(dir, "sub", "mark"), "from the host\n");
}
function unmountAll(dir: string): void {
  if (dir === "") return;
  for (const d of [path.join(dir, "sub"), dir]) spawnSync("umount", [d]);
}
function hostMounts(): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(tmp));
}
const bind = (destination: string, source: string, ...options: string[]) => ({
  destination,
  type: "bind",
  source,
  options,
});

describe("grove-runtime vs runc: bind options", () => {
  let src = "";
  beforeAll(() => {
    src = path.join(tmp, "flags");
    hostTmpfs(src, "nosuid,nodev,noexec,size=1m");
  });
  afterAll(() => unmountAll(src));
  // The mount point and its per-mount options, for each of the test's mounts and their submounts.
  const LIST = "grep -E ' /m[a-z]+(/sub)? ' /proc/self/mountinfo | cut -d' ' -f5,6";

  it("nosuid, noatime, strictatime, sync, dirsync, suid, dev, exec, nodiratime: a bind, then a remount with them (the top mount of an rbind only); rro, rnosuid, ... on every mount", () => {
    const out = expectSame((c) => {
      c.mounts.push(
        bind("/mro", src, "rbind", "ro"),
        bind("/mflags", src, "rbind", "nosuid", "relatime", "noatime"),
        bind("/mbind", src, "bind", "noexec", "nodev", "strictatime", "sync", "dirsync"),
        bind("/mrw", src, "rbind", "rw"),
        bind("/mclear", src, "rbind", "suid", "dev", "exec", "nodiratime", "defaults"),
        bind("/mrec", src, "rbind", "rro", "rnosuid", "rnoatime"),
        bind("/mrecclear", src, "rbind", "rexec", "rdev", "rstrictatime"),
      );
    }, LIST);
    // The source is nosuid,nodev,noexec: a remount with other flags clears them (as runc);
    // rw alone remounts nothing; the submount keeps its own flags.
    expect(out).toBe(
      [
        "/mro ro,relatime",
        "/mro/sub rw,relatime",
        "/mflags rw,nosuid,noatime",
        "/mflags/sub rw,relatime",
        "/mbind rw,nodev,noexec",
        "/mrw rw,nosuid,nodev,noexec,relatime",
        "/mrw/sub rw,relatime",
        "/mclear rw,nodiratime,relatime",
        "/mclear/sub rw,relatime",
        // rro, ...: mount_setattr(AT_RECURSIVE) on the mount and its submounts.
        "/mrec ro,nosuid,nodev,noexec,noatime",
        "/mrec/sub ro,nosuid,noatime",
        "/mrecclear rw,nosuid",
        "/mrecclear/sub rw",
        "",
      ].join("\n"),
    );
  });

  it("remount on a bind fails under both (the first mount(2) is then a remount); a misspelt option is refused by grove-runtime only", () => {
    writeConfig((c) => c.mounts.push(bind("/mx", src, "bind", "noexec", "remount")));
    expect(run("runc")).toMatchObject({ code: 1, err: expect.stringContaining("invalid argument") });
    expect(run("grove")).toMatchObject({
      code: 1,
      err: expect.stringContaining("config.json mounts[7] (destination /mx): bind-mount onto /mx: Invalid argument"),
    });
    // runc passes an option it does not know to mount(2) as data, which a bind ignores.
    writeConfig((c) => c.mounts.push(bind("/mx", src, "rbind", "nosiud")));
    expect(run("runc").code).toBe(0);
    expect(run("grove")).toMatchObject({
      code: 1,
      err: expect.stringContaining("config.json mounts[7].options[1]: nosiud is not an option of a bind mount"),
    });
  });

  it("in a user namespace: a remount that would clear the source's locked nosuid, nodev, noexec fails under both; keeping them works", () => {
    // The mount points, which the namespace's root may not make in the host's rootfs.
    for (const d of ["mro", "mlocked"]) fs.mkdirSync(path.join(bundle, "rootfs", d), { recursive: true });
    const userns = (c: Config): void => {
      namespaces(c).push({ type: "user" });
      c.linux.uidMappings = MAP;
      c.linux.gidMappings = MAP;
    };
    writeConfig((c) => {
      userns(c);
      c.mounts.push(bind("/mro", src, "rbind", "ro"));
    });
    expect(run("runc")).toMatchObject({ code: 1, err: expect.stringContaining("operation not permitted") });
    expect(run("grove")).toMatchObject({
      code: 1,
      err: expect.stringContaining(
        "(destination /mro): remount with the mount's options /mro: Operation not permitted",
      ),
    });
    const out = expectSame((c) => {
      userns(c);
      c.mounts.push(bind("/mlocked", src, "rbind", "ro", "nosuid", "nodev", "noexec"));
    }, LIST);
    expect(out.split("\n")[0]).toBe("/mlocked ro,nosuid,nodev,noexec,relatime");
  });
});

/**
 * The cgroup lines of mountinfo (root, mount point, options, fs type, source,
 * superblock options; peer groups left out), a bind's root named "<own>" when it
 * is the container's cgroup of that hierarchy by its /proc/self/cgroup, then
 * `ls /sys/fs/cgroup`.
 */
const CGROUP_PROBE =
  "grep ' /sys/fs/cgroup' /proc/self/mountinfo | cut -d' ' -f4-; echo --; cat /proc/self/cgroup; echo --; ls /sys/fs/cgroup";
function cgroupView(out: string): string[] {
  const [mounts = "", cgroups = "", ls = ""] = out.split("--\n");
  const own = new Map(
    cgroups
      .trim()
      .split("\n")
      .map((l) => [l.split(":")[1] ?? "", l.split(":")[2] ?? ""] as const),
  );
  const lines = mounts
    .trim()
    .split("\n")
    .map((l) => {
      const f = l.split(" ").filter((w) => !/^(shared|master|propagate_from):\d+$/.test(w));
      const controllers = (f.at(-1) ?? "")
        .split(",")
        .filter((o) => o !== "rw" && o !== "ro")
        .join(",");
      if (f.at(-3) === "cgroup" && own.get(controllers) === f[0]) f[0] = "<own>";
      return f.join(" ");
    });
  return [...lines, "--", ...ls.trim().split("\n")];
}

describe("grove-runtime vs runc: runc spec's cgroup mount at /sys/fs/cgroup", () => {
  const v1 = fs.existsSync("/sys/fs/cgroup/memory/cgroup.procs");
  const hierarchies = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => / - cgroup /.test(l)).length;

  it("without a cgroup namespace: a tmpfs, each hierarchy's cgroup of the container bound read-only under its name", () => {
    writeConfig((c) => (c.process.args = ["/bin/sh", "-c", CGROUP_PROBE]));
    const r = run("runc");
    const g = run("grove");
    expect([r.code, r.err, g.code, g.err]).toEqual([0, "", 0, ""]);
    const view = cgroupView(r.out);
    expect(cgroupView(g.out)).toEqual(view);
    // The container has a cgroup of its own in every v1 hierarchy (cpuset, blkio and name=systemd
    // too), as under runc: none of its /proc/self/cgroup lines is the root's.
    const v1Roots = (out: string): string[] =>
      out
        .split("--\n")[0]!
        .trim()
        .split("\n")
        .filter((l) => / - cgroup /.test(l))
        .map((l) => l.split(" ")[0]!);
    const v1Cgroups = (out: string): string[] =>
      out
        .split("--\n")[1]!
        .trim()
        .split("\n")
        .filter((l) => !l.startsWith("0::"))
        .sort();
    const differ = (a: string[], b: string[]): number => a.filter((x, i) => x !== b[i]).length;
    expect(differ(v1Roots(r.out), v1Roots(g.out))).toBe(differ(v1Cgroups(r.out), v1Cgroups(g.out)));
    const atRoot = (out: string): string[] =>
      v1Cgroups(out)
        .filter((l) => l.endsWith(":/"))
        .map((l) => l.split(":")[1]!);
    expect(atRoot(r.out)).toEqual([]);
    expect(atRoot(g.out)).toEqual([]);
    // On a hybrid host the unified (v2) hierarchy too ("0::", not mounted by either).
    const unified = (out: string): string | undefined =>
      out
        .split("--\n")[1]!
        .split("\n")
        .find((l) => l.startsWith("0::"));
    expect(unified(g.out) === "0::/").toBe(unified(r.out) === "0::/");
    if (!v1) return; // on cgroup v2 both mount a cgroup2 filesystem
    expect(view[0]).toBe("/ /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755");
    expect(view.slice(1, hierarchies + 1)).toEqual(
      expect.arrayContaining([
        "<own> /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory",
        "<own> /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,pids",
      ]),
    );
    expect(view[hierarchies + 1]).toBe("--");
    // runc 1.1.5 leaves the unified hierarchy of a hybrid host out.
    expect(view.slice(hierarchies + 2)).toContain("memory");
    expect(view).not.toContain("unified");
  });

  it("with a cgroup namespace: each hierarchy mounted anew (rooted at the namespace), read-only", () => {
    writeConfig((c) => {
      namespaces(c).push({ type: "cgroup" });
      c.process.args = ["/bin/sh", "-c", CGROUP_PROBE];
    });
    const r = run("runc");
    const g = run("grove");
    expect([r.code, r.err, g.code, g.err]).toEqual([0, "", 0, ""]);
    expect(cgroupView(g.out)).toEqual(cgroupView(r.out));
    expect(g.out.split("--\n")[1]).toMatch(/^(\d+:[^:]*:\/\n)+$/); // every hierarchy: the namespace's root
    if (v1) {
      expect(cgroupView(g.out)).toContain(
        "<own> /sys/fs/cgroup/systemd ro,nosuid,nodev,noexec,relatime - cgroup systemd rw,name=systemd",
      );
    }
  });
});

describe("grove-runtime vs runc: linux.rootfsPropagation absent", () => {
  let src = "";
  beforeAll(() => {
    src = path.join(tmp, "shared");
    hostTmpfs(src, "size=1m");
    execFileSync("mount", ["--make-shared", src]);
  });
  afterAll(() => unmountAll(src));

  it("is rslave, as runc: a bind of a shared host mount is its slave; the host gains no mount", () => {
    const before = hostMounts();
    const group = /shared:(\d+)/.exec(hostMounts().find((l) => l.split(" ")[4] === src) ?? "")?.[1];
    expect(group).toBeDefined();
    const out = expectSame(
      (c) => c.mounts.push(bind("/p", src, "rbind")),
      "grep ' /p ' /proc/self/mountinfo | cut -d' ' -f7",
    );
    expect(out).toBe(`master:${group}\n`);
    expect(hostMounts()).toEqual(before);
  });
});

describe("grove-runtime vs runc: linux.namespaces without pid, network or mount", () => {
  const self = (ns: string): string => fs.readlinkSync(`/proc/self/ns/${ns}`);

  it("without network: the host's network namespace, its interfaces", () => {
    const out = expectSame(
      without("network"),
      "readlink /proc/self/ns/net; ls /sys/class/net | grep -cxv lo; grep -c . /proc/net/route",
    );
    const [ns, others, routes] = out.trim().split("\n");
    expect(ns).toBe(self("net"));
    expect(Number(others)).toBeGreaterThan(0); // a new namespace has lo only
    expect(Number(routes)).toBeGreaterThan(1);
  });

  it("without pid: the host's pid namespace (the process is not pid 1, /proc/1 is the host's init)", () => {
    const out = expectSame(
      without("pid"),
      "readlink /proc/self/ns/pid; [ $$ -ne 1 ] && echo not pid 1; cat /proc/1/comm",
    );
    expect(out).toBe(`${self("pid")}\nnot pid 1\n${fs.readFileSync("/proc/1/comm", "utf8")}`);
  });

  it("a net.* sysctl without a network namespace, kernel.shm* without an ipc one: refused by both", () => {
    for (const [type, sysctl, ns] of [
      ["network", "net.ipv4.ip_forward", "network"],
      ["ipc", "kernel.shmmni", "ipc"],
    ] as const) {
      writeConfig((c) => {
        without(type)(c);
        c.linux.sysctl = { [sysctl]: "1" };
      });
      expect(run("runc").code).not.toBe(0);
      expect(run("grove")).toMatchObject({
        code: 1,
        err: expect.stringContaining(
          `config.json linux.sysctl.${sysctl}: is not allowed in the host's ${ns} namespace`,
        ),
      });
    }
  });

  it("without mount: refused (runc refuses it with masked paths; without them it leaves the container's mounts on the host)", () => {
    writeConfig(without("mount"));
    expect(run("runc")).toMatchObject({ code: 1, err: expect.stringContaining("without a private MNT namespace") });
    for (const masked of [true, false]) {
      writeConfig((c) => {
        without("mount")(c);
        if (!masked) c.linux.maskedPaths = c.linux.readonlyPaths = [];
      });
      expect(run("grove")).toMatchObject({
        code: 1,
        err: expect.stringContaining("config.json linux.namespaces: has no mount namespace"),
      });
    }
  });
});

describe("the agent's bundle (oci-bundle.ts) under runc and grove-runtime: an App's mounts as the native path binds them", () => {
  let src = "";
  beforeAll(() => {
    src = path.join(tmp, "volume");
    hostTmpfs(src, "size=1m");
  });
  afterAll(() => unmountAll(src));

  /** The output of `command` in the bundle the agent writes for an App with these mounts (the same under both). */
  function appRuns(mounts: ContainerSpec["mounts"], command: string): string {
    const spec: ContainerSpec = {
      id: `${TAG}-app-${nextSeq()}`,
      rootfs: path.join(bundle, "rootfs"),
      command: ["/bin/true"],
      env: { PATH: "/bin:/sbin:/usr/bin" },
      hostname: "app",
      resources: { cpuMillis: 500, memoryBytes: 64 << 20, pids: 64 },
      logPath: path.join(tmp, "app.log"),
      mounts,
    };
    const v1 = fs.existsSync("/sys/fs/cgroup/memory/cgroup.procs");
    const config = ociConfig(spec, { mode: v1 ? "v1" : "v2", root: "/sys/fs/cgroup", parent: `${TAG}-runc` });
    return expectSame((c) => {
      const args = c.process.args;
      for (const k of Object.keys(c)) delete c[k];
      Object.assign(c, JSON.parse(JSON.stringify(config)) as Config);
      c.process.args = args;
      c.annotations = {}; // run is the init's parent here
    }, command);
  }

  it("a mount binds the source's own mount; recursive: true its submounts too", () => {
    const out = appRuns(
      [
        { source: src, destination: "/vol", readonly: true },
        { source: src, destination: "/rvol", recursive: true },
      ],
      "cat /vol/sub/mark 2>/dev/null || echo no submount; cat /rvol/sub/mark; touch /vol/x 2>/dev/null || echo read-only",
    );
    expect(out).toBe("no submount\nfrom the host\nread-only\n");
  });

  it("a read-only mount keeps its source's nosuid, nodev and noexec (the runtime's remount cleared them)", () => {
    const locked = path.join(tmp, "locked");
    hostTmpfs(locked, "size=1m,nosuid,nodev,noexec");
    try {
      const out = appRuns(
        [{ source: locked, destination: "/vol", readonly: true }],
        "grep ' /vol ' /proc/self/mountinfo | cut -d' ' -f6 | tr , '\\n' | grep -x -e ro -e nosuid -e nodev -e noexec | sort",
      );
      expect(out).toBe("nodev\nnoexec\nnosuid\nro\n");
    } finally {
      unmountAll(locked);
    }
  });
});
