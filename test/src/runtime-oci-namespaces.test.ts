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

  it("joined with a user namespace, or a user namespace by path: refused naming the field, nothing left", async () => {
    const pid = await holder("--pid", "--fork");
    writeConfig((c) => {
      joined("pid", `/proc/${pid}/ns/pid`)(c);
      (c.linux.namespaces as { type: string }[]).push({ type: "user" });
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    });
    expect(run("grove")).toMatchObject({
      code: 1,
      err: expect.stringContaining(
        "config.json linux.namespaces: joining a pid, mount or cgroup namespace with a user namespace is not supported",
      ),
    });
    writeConfig((c) => joined("user", `/proc/${pid}/ns/user`)(c));
    expect(run("grove")).toMatchObject({
      code: 1,
      err: expect.stringMatching(
        /config\.json linux\.namespaces\[\d+\]\.path: joining a user namespace is not supported/,
      ),
    });
    const state = path.join(tmp, "grove-state");
    expect(fs.existsSync(state) ? fs.readdirSync(state) : []).toEqual([]);
  });
});
