// linux.namespaces entries with a path for pid, mount and cgroup: grove-runtime joins them as
// runc does (the neighbour of runtime-oci-lifecycle.test.ts, which joins uts and ipc). Each
// namespace is held by an `unshare ... sleep` this test starts and kills by its pid; one
// config.json runs through Debian's runc and the static grove-runtime, through `run` and
// through create/start (the shim's keys).
import { spawn, type ChildProcess } from "node:child_process";
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
  type Config,
} from "./harness/oci-side-by-side";

sideBySide("ocins");
// With a user namespace container root (host 100000) must reach the bundle's rootfs: both runtimes mount it as that user.
beforeAll(() => fs.chmodSync(tmp, 0o755));

const holders: ChildProcess[] = [];
const pids: number[] = [];

/** A process in new namespaces (`unshare FLAGS sleep 60`); with --fork, the sleep is its child. */
async function holder(...flags: string[]): Promise<number> {
  const h = spawn("unshare", [...flags, "sleep", "60"], { stdio: "ignore" });
  holders.push(h);
  let pid = 0;
  await waitFor(() => {
    // Without --fork unshare execs sleep (in the new namespaces by then); with it, sleep is its child.
    const kids = flags.includes("--fork")
      ? fs.readFileSync(`/proc/${h.pid}/task/${h.pid}/children`, "utf8").trim()
      : String(h.pid);
    pid = kids === "" ? 0 : Number(kids);
    return pid !== 0 && fs.readFileSync(`/proc/${pid}/comm`, "utf8") === "sleep\n";
  });
  pids.push(pid);
  return pid;
}

afterAll(() => {
  // The forked sleep first (pid 1 of its namespace: its end kills whatever is left in it).
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  for (const h of holders) h.kill("SIGKILL");
});

const joined = (type: string, nsPath: string) => (c: Config) => {
  c.linux.namespaces = (c.linux.namespaces as { type: string; path?: string }[])
    .filter((n) => n.type !== type)
    .concat([{ type, path: nsPath }]);
};

/** create, start, wait until stopped: what the container wrote to create's stdout. */
async function createAndStart(runtime: "runc" | "grove", edit: (c: Config) => void, script: string): Promise<string> {
  writeConfig((c) => {
    edit(c);
    c.process.args = ["/bin/sh", "-c", script];
  });
  const id = `${TAG}-${runtime}-${nextSeq()}`;
  created.push({ runtime, id });
  const name = `ns-create-${runtime}`;
  expect(cli(runtime, ["create", "--bundle", bundle, id], name)).toMatchObject({ code: 0 });
  expect(cli(runtime, ["start", id])).toMatchObject({ code: 0 });
  await waitFor(() => stateOf(runtime, id).status === "stopped");
  await waitFor(() => fs.readFileSync(path.join(tmp, `${name}.out`), "utf8").includes("end"));
  expect(cli(runtime, ["delete", id])).toMatchObject({ code: 0 });
  return fs.readFileSync(path.join(tmp, `${name}.out`), "utf8");
}

describe("grove-runtime vs runc: pid, mount and cgroup namespaces joined by path", () => {
  it("pid: the init is born in the joined namespace (not its pid 1; its /proc shows the holder as 1)", async () => {
    const pid = await holder("--pid", "--fork");
    const ns = fs.readlinkSync(`/proc/${pid}/ns/pid`);
    const probe = "readlink /proc/self/ns/pid; cat /proc/1/comm; [ $$ -ne 1 ] && echo not-pid-1; echo end";
    const want = `${ns}\nsleep\nnot-pid-1\nend\n`;
    expect(expectSame(joined("pid", `/proc/${pid}/ns/pid`), probe)).toBe(want);
    expect(await createAndStart("runc", joined("pid", `/proc/${pid}/ns/pid`), probe)).toBe(want);
    expect(await createAndStart("grove", joined("pid", `/proc/${pid}/ns/pid`), probe)).toBe(want);
  });

  it("cgroup: the joined namespace instead of a new one", async () => {
    const pid = await holder("--cgroup");
    const ns = fs.readlinkSync(`/proc/${pid}/ns/cgroup`);
    expect(ns).not.toBe(fs.readlinkSync("/proc/self/ns/cgroup"));
    const probe = "readlink /proc/self/ns/cgroup; echo end";
    expect(expectSame(joined("cgroup", `/proc/${pid}/ns/cgroup`), probe)).toBe(`${ns}\nend\n`);
    expect(await createAndStart("grove", joined("cgroup", `/proc/${pid}/ns/cgroup`), probe)).toBe(`${ns}\nend\n`);
  });

  it("mount: the container's mounts are made in the joined namespace (one holder per container: its root moves)", async () => {
    const probe = "readlink /proc/self/ns/mnt; cat /proc/1/comm; echo end";
    const seen: Record<string, string> = {};
    for (const runtime of ["runc", "grove", "grove-create"] as const) {
      const pid = await holder("--mount");
      const ns = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
      expect(ns).not.toBe(fs.readlinkSync("/proc/self/ns/mnt"));
      const edit = joined("mount", `/proc/${pid}/ns/mnt`);
      let out: string;
      if (runtime === "grove-create") out = await createAndStart("grove", edit, probe);
      else {
        writeConfig((c) => {
          edit(c);
          c.process.args = ["/bin/sh", "-c", probe];
        });
        const r = run(runtime);
        expect(r).toMatchObject({ code: 0, err: "" });
        out = r.out;
      }
      seen[runtime] = out.replace(ns, "HOLDER");
      // The mounts were made in the holder's namespace, whose root is now the bundle's rootfs
      // (pivot_root there; as runc).
      const mounts = fs.readFileSync(`/proc/${pid}/mountinfo`, "utf8").split("\n");
      expect(mounts.map((l) => l.split(" ")).some((f) => f[3] === path.join(bundle, "rootfs") && f[4] === "/")).toBe(
        true,
      );
    }
    expect(seen.grove).toBe(seen.runc);
    expect(seen["grove-create"]).toBe(seen.runc);
    expect(seen.runc).toBe("HOLDER\nsh\nend\n");
  });

  it("pid joined with a new user namespace: the kernel's answer, the same from both (proc needs a pid namespace of its own user namespace)", async () => {
    const pid = await holder("--pid", "--fork");
    const r = (runtime: "runc" | "grove") => {
      writeConfig((c) => {
        joined("pid", `/proc/${pid}/ns/pid`)(c);
        newUserns(c);
      });
      return run(runtime);
    };
    expect(r("runc")).toMatchObject({ code: 1, err: expect.stringMatching(/mount proc.*operation not permitted/) });
    expect(r("grove")).toMatchObject({
      code: 1,
      err: expect.stringContaining("(destination /proc): mount proc on ./proc: Operation not permitted"),
    });
  });
});

const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];
function newUserns(c: Config): void {
  (c.linux.namespaces as { type: string }[]).push({ type: "user" });
  c.linux.uidMappings = MAP;
  c.linux.gidMappings = MAP;
}

/** A user namespace (container root = host 100000) and a pid namespace (and more) it owns, held by a forked sleep. */
async function userHolder(...more: string[]): Promise<number> {
  const h = spawn("unshare", ["--user", "--pid", ...more, "--fork", "sleep", "60"], { stdio: "ignore" });
  holders.push(h);
  // The maps, written by host root (this test) before the fork's child looks.
  await waitFor(
    () =>
      fs.existsSync(`/proc/${h.pid}/ns/user`) &&
      fs.readlinkSync(`/proc/${h.pid}/ns/user`) !== fs.readlinkSync("/proc/self/ns/user"),
  );
  fs.writeFileSync(`/proc/${h.pid}/uid_map`, "0 100000 65536");
  fs.writeFileSync(`/proc/${h.pid}/gid_map`, "0 100000 65536");
  let pid = 0;
  await waitFor(() => {
    const kids = fs.readFileSync(`/proc/${h.pid}/task/${h.pid}/children`, "utf8").trim();
    pid = kids === "" ? 0 : Number(kids);
    return pid !== 0 && fs.readFileSync(`/proc/${pid}/comm`, "utf8") === "sleep\n";
  });
  pids.push(pid);
  return pid;
}

describe("grove-runtime vs runc: user namespaces joined by path, and with other namespaces", () => {
  it("user and pid joined by path (user first): the holder's namespaces and maps, its sleep as pid 1", async () => {
    const pid = await userHolder();
    const edit = (c: Config) => {
      joined("user", `/proc/${pid}/ns/user`)(c);
      joined("pid", `/proc/${pid}/ns/pid`)(c);
      // runc 1.1 wants the maps with a path; Grove takes the joined namespace's own.
      c.linux.uidMappings = MAP;
      c.linux.gidMappings = MAP;
    };
    const probe =
      "readlink /proc/self/ns/user; readlink /proc/self/ns/pid; cat /proc/1/comm /proc/self/uid_map; id -u; echo end";
    const want = [
      fs.readlinkSync(`/proc/${pid}/ns/user`),
      fs.readlinkSync(`/proc/${pid}/ns/pid`),
      "sleep",
      "         0     100000      65536",
      "0",
      "end",
      "",
    ].join("\n");
    expect(expectSame(edit, probe)).toBe(want);
    expect(await createAndStart("runc", edit, probe)).toBe(want);
    expect(await createAndStart("grove", edit, probe)).toBe(want);
  });

  it("every namespace joined by path with the user namespace owning them (one holder per runtime: its root moves)", async () => {
    const NS = { user: "user", pid: "pid", mount: "mnt", uts: "uts", ipc: "ipc", network: "net", cgroup: "cgroup" };
    const probe = `for n in ${Object.values(NS).join(" ")}; do readlink /proc/self/ns/$n; done; cat /proc/1/comm; echo end`;
    const seen: Record<string, string> = {};
    for (const runtime of ["runc", "grove"] as const) {
      const pid = await userHolder("--mount", "--uts", "--ipc", "--net", "--cgroup");
      writeConfig((c) => {
        for (const [type, file] of Object.entries(NS)) joined(type, `/proc/${pid}/ns/${file}`)(c);
        c.linux.uidMappings = MAP;
        c.linux.gidMappings = MAP;
        delete c.hostname; // a joined uts namespace keeps its name (both refuse one)
        c.process.args = ["/bin/sh", "-c", probe];
      });
      const r = run(runtime);
      expect(r).toMatchObject({ code: 0, err: "" });
      const want = Object.values(NS).map((file) => fs.readlinkSync(`/proc/${pid}/ns/${file}`));
      expect(r.out).toBe([...want, "sleep", "end", ""].join("\n"));
      seen[runtime] = r.out.split("\n").slice(Object.keys(NS).length).join("\n");
    }
    expect(seen.grove).toBe(seen.runc);
  });

  it("a new user namespace with the runtime's uts and ipc namespaces (not listed): joined before it is made", () => {
    const probe = "readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc; cat /proc/self/uid_map";
    const out = expectSame((c) => {
      c.linux.namespaces = (c.linux.namespaces as { type: string }[]).filter((n) => !["uts", "ipc"].includes(n.type));
      newUserns(c);
      delete c.hostname;
      // The runtime's ipc namespace is not the new user namespace's: mqueue cannot be mounted there.
      c.mounts = c.mounts.filter((m) => m.destination !== "/dev/mqueue");
    }, probe);
    expect(out).toBe(
      `${fs.readlinkSync("/proc/self/ns/uts")}\n${fs.readlinkSync("/proc/self/ns/ipc")}\n         0     100000      65536\n`,
    );
  });

  it("linux.devices in a user namespace: the host's nodes bind-mounted (mknod is not allowed there)", () => {
    const devices = [
      { path: "/dev/kmsg", type: "c", major: 1, minor: 11 },
      { path: "/dev/net/tun", type: "c", major: 10, minor: 200, fileMode: 0o600 },
      { path: "/dev/loop0", type: "b", major: 7, minor: 0 },
    ];
    const probe =
      "for d in /dev/kmsg /dev/net/tun /dev/loop0; do stat -c '%n %F %t:%T %a %u:%g' $d; done; grep -c ' /dev/kmsg ' /proc/self/mountinfo";
    const host = devices.map((d) => {
      const st = fs.statSync(d.path);
      return `${d.path} ${d.type === "c" ? "character" : "block"} special file ${(st.rdev >> 8).toString(16)}:${(st.rdev & 0xff).toString(16)} ${(st.mode & 0o7777).toString(8)} 65534:65534`;
    });
    expect(
      expectSame((c) => {
        newUserns(c);
        c.linux.devices = devices;
      }, probe),
    ).toBe([...host, "1", ""].join("\n"));
  });
});

describe("grove-runtime: time namespaces (runc 1.1.5 has none)", () => {
  it("a new one with linux.timeOffsets: the offsets in timens_offsets and the clocks; runc refuses it", async () => {
    const edit = (c: Config) => {
      (c.linux.namespaces as { type: string }[]).push({ type: "time" });
      c.linux.timeOffsets = { boottime: { secs: 86400 * 365, nanosecs: 0 }, monotonic: { secs: -1, nanosecs: 500 } };
    };
    const probe = "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime; readlink /proc/self/ns/time";
    writeConfig((c) => {
      edit(c);
      c.process.args = ["/bin/sh", "-c", probe];
    });
    expect(run("runc")).toMatchObject({
      code: 1,
      err: expect.stringContaining('namespace {\\"time\\" \\"\\"} does not exist'),
    });
    const before = Number(fs.readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    const check = (out: string) => {
      const [mono, boot, uptime, ns] = out.split("\n");
      expect(mono).toMatch(/^monotonic\s+-1\s+500$/);
      expect(boot).toMatch(/^boottime\s+31536000\s+0$/);
      expect(Number(uptime) - before).toBeGreaterThanOrEqual(31536000);
      expect(Number(uptime) - before).toBeLessThan(31536000 + 60);
      expect(ns).not.toBe(fs.readlinkSync("/proc/self/ns/time"));
    };
    const g = run("grove");
    expect(g).toMatchObject({ code: 0, err: "" });
    check(g.out);
    check(await createAndStart("grove", edit, `${probe}; echo end`));
    // With a new user namespace too (the offsets are written before it is entered).
    const u = (() => {
      writeConfig((c) => {
        edit(c);
        newUserns(c);
        c.process.args = ["/bin/sh", "-c", probe];
      });
      return run("grove");
    })();
    expect(u).toMatchObject({ code: 0, err: "" });
    check(u.out);
  });

  it("one joined by path: the holder's offsets; timeOffsets without a new time namespace refused naming the field", async () => {
    const pid = await holder("--time", "--fork", "--boottime", "100000");
    const ns = fs.readlinkSync(`/proc/${pid}/ns/time`);
    const probe = "readlink /proc/self/ns/time; grep boottime /proc/self/timens_offsets";
    writeConfig((c) => {
      joined("time", `/proc/${pid}/ns/time`)(c);
      c.process.args = ["/bin/sh", "-c", probe];
    });
    expect(run("runc")).toMatchObject({ code: 1, err: expect.stringContaining("does not exist") });
    expect(run("grove")).toEqual({ code: 0, out: `${ns}\nboottime       100000         0\n`, err: "" });
    for (const edit of [(c: Config) => joined("time", `/proc/${pid}/ns/time`)(c), (c: Config) => c]) {
      writeConfig((c) => {
        edit(c);
        c.linux.timeOffsets = { boottime: { secs: 5 } };
      });
      expect(run("grove")).toMatchObject({
        code: 1,
        err: expect.stringContaining("config.json linux.timeOffsets: needs a new time namespace"),
      });
    }
    writeConfig((c) => {
      (c.linux.namespaces as { type: string }[]).push({ type: "time" });
      c.linux.timeOffsets = { realtime: { secs: 5 } };
    });
    expect(run("grove")).toMatchObject({
      code: 1,
      err: expect.stringContaining("config.json linux.timeOffsets.realtime: only monotonic and boottime have offsets"),
    });
    const state = path.join(tmp, "grove-state");
    expect(fs.existsSync(state) ? fs.readdirSync(state) : []).toEqual([]);
  });
});
