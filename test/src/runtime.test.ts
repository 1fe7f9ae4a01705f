// The runtime core against the real addon and the real kernel (root, hybrid
// cgroups on this host). Every container is started by this file and stopped
// and removed by it; the parent cgroup is unique to this process.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { NativeRuntime, loadNativeBinding, type ContainerHandle, type ContainerSpec } from "@grove/agent";
import { RUN_TAG, tempDir } from "./harness/run-id";

const MiB = 1024 * 1024;
const REPO = path.resolve(__dirname, "../..");
const CGROUP_ROOT = "/sys/fs/cgroup";
const PARENT = `grove-test-${RUN_TAG}`;
const V1_CONTROLLERS = ["memory", "cpu", "pids", "cpuacct"];

let tmp: string;
let rootfs: string;
let rt: NativeRuntime;
const started = new Set<string>();

function read(file: string): string {
  return fs.readFileSync(file, "utf8").trim();
}

function v1(controller: string, id: string, file: string): string {
  return path.join(CGROUP_ROOT, controller, PARENT, id, file);
}

function spec(id: string, script: string, over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    id,
    rootfs,
    command: ["sh", "-c", script],
    env: { PATH: "/bin:/sbin:/usr/bin:/usr/sbin", GREETING: "hello from grove" },
    hostname: `host-${id}`,
    resources: { cpuMillis: 250, memoryBytes: 64 * MiB, pids: 32 },
    logPath: path.join(tmp, `${id}.log`),
    ...over,
  };
}

async function start(s: ContainerSpec): Promise<ContainerHandle> {
  const h = await rt.start(s);
  started.add(s.id);
  return h;
}

async function finish(id: string): Promise<void> {
  await rt.stop(id, 0);
  await rt.remove(id);
  started.delete(id);
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("runtime integration tests need root");
  loadNativeBinding(); // a clear "run npm run build:native" error instead of a cascade
  tmp = tempDir("grove-runtime");
  rootfs = path.join(tmp, "rootfs");
  execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [rootfs], { stdio: "pipe" });
  rt = new NativeRuntime({ cgroupParent: PARENT });
});

afterAll(async () => {
  for (const id of started) {
    try {
      await finish(id);
    } catch {
      // best effort; the checks below report what is left
    }
  }
  await rt?.removeParentCgroup();
  for (const c of V1_CONTROLLERS) expect(fs.existsSync(path.join(CGROUP_ROOT, c, PARENT))).toBe(false);
  const mounts = read("/proc/self/mountinfo");
  if (tmp) {
    expect(mounts).not.toContain(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

describe("NativeRuntime on the real kernel", () => {
  it("detects the host's cgroup mode (hybrid => v1)", () => {
    expect(rt.cgroupMode).toBe("v1");
  });

  it("isolates a container in its own namespaces and cgroups with the limits applied", async () => {
    const h = await start(spec("iso", "sleep 60"));
    for (const ns of ["pid", "mnt", "uts", "ipc", "net"]) {
      expect(fs.readlinkSync(`/proc/${h.pid}/ns/${ns}`)).not.toBe(fs.readlinkSync(`/proc/self/ns/${ns}`));
    }
    expect(read(v1("memory", "iso", "memory.limit_in_bytes"))).toBe(String(64 * MiB));
    expect(read(v1("pids", "iso", "pids.max"))).toBe("32");
    expect(read(v1("cpu", "iso", "cpu.cfs_quota_us"))).toBe("25000");
    expect(read(v1("cpu", "iso", "cpu.cfs_period_us"))).toBe("100000");
    expect(read(v1("cpu", "iso", "cpu.shares"))).toBe("256");
    for (const c of ["memory", "cpu", "pids"]) {
      expect(read(v1(c, "iso", "cgroup.procs")).split("\n")).toContain(String(h.pid));
    }
    // The root is the rootfs (busybox), not the host's.
    expect(fs.readlinkSync(`/proc/${h.pid}/root`)).toBe("/");
    expect(fs.realpathSync(`/proc/${h.pid}/root/bin/busybox`)).toBeTruthy();
    expect(rt.list().map((c) => c.id)).toContain("iso");

    // sleep as pid 1 ignores SIGTERM: stop() must escalate to SIGKILL.
    const exit = await rt.stop("iso", 0.2);
    expect(exit).toMatchObject({ signal: 9, exitCode: 137, oomKilled: false });
    await rt.remove("iso");
    started.delete("iso");
    for (const c of V1_CONTROLLERS) expect(fs.existsSync(path.join(CGROUP_ROOT, c, PARENT, "iso"))).toBe(false);
  });

  it("runs the command as pid 1 with the hostname, env, cwd, loopback and devices it was given", async () => {
    const script = [
      "echo pid=$$",
      "echo hostname=$(hostname)",
      'echo "env=$GREETING"',
      "echo cwd=$(pwd)",
      "echo lo=$(ip -o link show lo | grep -c UP)",
      "echo devs=$(ls /dev | tr '\\n' ' ')",
      "echo fds=$(ls /proc/self/fd | wc -l)",
      "echo procs=$(ls /proc | grep -c '^[0-9]')",
    ].join("; ");
    const h = await start(spec("hello", script, { workingDir: "/tmp" }));
    const exit = await h.exited;
    expect(exit).toMatchObject({ exitCode: 0, signal: 0, oomKilled: false });
    expect(exit.finishedAt).toBeInstanceOf(Date);
    const log = fs.readFileSync(path.join(tmp, "hello.log"), "utf8");
    expect(log).toContain("pid=1\n");
    expect(log).toContain("hostname=host-hello\n");
    expect(log).toContain("env=hello from grove\n");
    expect(log).toContain("cwd=/tmp\n");
    expect(log).toMatch(/lo=1\n/);
    for (const d of ["null", "zero", "full", "random", "urandom", "tty"])
      expect(log).toMatch(new RegExp(`devs=.*\\b${d}\\b`));
    // ls's own fds: 0, 1, 2 and the directory it reads; nothing leaked from node.
    expect(log).toContain("fds=4\n");
    // Only the shell's own processes are visible: its pid namespace is its own.
    expect(Number(/procs=(\d+)/.exec(log)?.[1])).toBeLessThanOrEqual(4);
    await rt.remove("hello");
    started.delete("hello");
  });

  it("propagates the exit code", async () => {
    const h = await start(spec("exit7", "exit 7"));
    await expect(h.exited).resolves.toMatchObject({ exitCode: 7, signal: 0, oomKilled: false });
    await rt.remove("exit7");
    started.delete("exit7");
  });

  it("rejects the start of a missing binary clearly and leaves no cgroup", async () => {
    await expect(rt.start({ ...spec("nosuch", ""), command: ["/bin/nosuch"] })).rejects.toMatchObject({
      code: "START_FAILED",
      message: "exec /bin/nosuch: No such file or directory",
    });
    await expect(rt.start({ ...spec("nosuch2", ""), command: ["nosuch-in-path"] })).rejects.toThrow(
      "exec nosuch-in-path: No such file or directory",
    );
    for (const c of V1_CONTROLLERS) {
      expect(fs.existsSync(path.join(CGROUP_ROOT, c, PARENT, "nosuch"))).toBe(false);
      expect(fs.existsSync(path.join(CGROUP_ROOT, c, PARENT, "nosuch2"))).toBe(false);
    }
    expect(rt.list().map((c) => c.id)).not.toContain("nosuch");
  });

  it("refuses a rootfs whose /proc is a symlink", async () => {
    const evil = path.join(tmp, "evil-rootfs");
    fs.mkdirSync(evil);
    fs.mkdirSync(path.join(evil, "bin"));
    fs.copyFileSync(path.join(rootfs, "bin/busybox"), path.join(evil, "bin/busybox"));
    fs.symlinkSync("/", path.join(evil, "proc"));
    await expect(
      rt.start({ ...spec("evil", "true"), rootfs: evil, command: ["/bin/busybox", "true"] }),
    ).rejects.toThrow(/refusing to mount over symlink .*evil-rootfs\/proc/);
  });

  it("reports an OOM kill when the container allocates past its memory limit", async () => {
    // Doubling a shell string allocates until the cgroup's 64Mi are gone.
    const h = await start(spec("oom", "x=a; while true; do x=$x$x; done"));
    const exit = await h.exited;
    expect(exit).toMatchObject({ oomKilled: true, signal: 9, exitCode: 137 });
    expect(await rt.oomKills("oom")).toBeGreaterThan(0);
    await rt.remove("oom");
    started.delete("oom");
  });

  it("holds a fork bomb at pids.max; the host stays fine and stop() ends it", async () => {
    const h = await start(spec("bomb", "f(){ f|f & }; f; exec sleep 60"));
    let peak = 0;
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      const current = Number(read(v1("pids", "bomb", "pids.current")));
      peak = Math.max(peak, current);
      expect(current).toBeLessThanOrEqual(32);
      await new Promise((r) => setTimeout(r, 20));
    }
    // The kernel refused forks at the limit ("max N" counts refusals).
    const events = read(v1("pids", "bomb", "pids.events"));
    expect(Number(/max (\d+)/.exec(events)?.[1])).toBeGreaterThan(0);
    // Sampling misses the churning peak; that it grew at all shows the bomb ran.
    expect(peak).toBeGreaterThan(2);
    // The host can still fork, and the container's init still runs.
    expect(spawnSync("true").status).toBe(0);
    expect(fs.existsSync(`/proc/${h.pid}`)).toBe(true);

    const exit = await rt.stop("bomb", 0.1);
    expect(exit.signal).toBe(9);
    await waitFor(() => read(v1("pids", "bomb", "cgroup.procs")) === "", 5000);
    await rt.remove("bomb");
    started.delete("bomb");
    for (const c of V1_CONTROLLERS) expect(fs.existsSync(path.join(CGROUP_ROOT, c, PARENT, "bomb"))).toBe(false);
  });

  it("kill() delivers a signal the container handles", async () => {
    const h = await start(
      spec("trap", "trap 'echo got-usr1; exit 3' USR1; echo trap-set; while true; do sleep 0.1; done"),
    );
    const log = path.join(tmp, "trap.log");
    await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, "utf8").includes("trap-set"), 5000); // the trap is installed
    await rt.kill("trap", "SIGUSR1");
    await expect(h.exited).resolves.toMatchObject({ exitCode: 3 });
    expect(fs.readFileSync(path.join(tmp, "trap.log"), "utf8")).toContain("got-usr1");
    await rt.kill("trap", "SIGKILL"); // exited already: no error
    await rt.remove("trap");
    started.delete("trap");
  });

  it("cleanupStale() kills and removes containers a previous runtime left behind", async () => {
    // Its own parent, so containers of the other tests cannot leak into the answer.
    const parent = `${PARENT}-stale`;
    const previous = new NativeRuntime({ cgroupParent: parent });
    const h = await previous.start(spec("stale", "sleep 60"));
    try {
      // A new runtime on the same parent plays the restarted agent.
      const next = new NativeRuntime({ cgroupParent: parent });
      expect(await next.cleanupStale()).toEqual(["stale"]);
      await expect(h.exited).resolves.toMatchObject({ signal: 9 });
      for (const c of V1_CONTROLLERS) expect(fs.existsSync(path.join(CGROUP_ROOT, c, parent, "stale"))).toBe(false);
      expect(await next.cleanupStale()).toEqual([]);
    } finally {
      await previous.stop("stale", 0);
      await previous.remove("stale"); // its cgroup is gone already: fine
      await previous.removeParentCgroup();
    }
    for (const c of V1_CONTROLLERS) expect(fs.existsSync(path.join(CGROUP_ROOT, c, parent))).toBe(false);
  });
});

describe("cgroup setup in isolation", () => {
  const native = () => loadNativeBinding();

  it("v1 against the real kernel: writes limits, memsw and removes", async () => {
    const parent = `${PARENT}-v1`;
    await native().setupCgroup("v1", CGROUP_ROOT, parent, "c1", { cpuMillis: 1500, memoryBytes: 32 * MiB, pids: 7 });
    try {
      const dir = (c: string) => path.join(CGROUP_ROOT, c, parent, "c1");
      expect(read(path.join(dir("memory"), "memory.limit_in_bytes"))).toBe(String(32 * MiB));
      if (fs.existsSync(path.join(dir("memory"), "memory.memsw.limit_in_bytes"))) {
        expect(read(path.join(dir("memory"), "memory.memsw.limit_in_bytes"))).toBe(String(32 * MiB));
      }
      expect(read(path.join(dir("cpu"), "cpu.cfs_quota_us"))).toBe("150000");
      expect(read(path.join(dir("cpu"), "cpu.shares"))).toBe("1536");
      expect(read(path.join(dir("pids"), "pids.max"))).toBe("7");
      expect(await native().listCgroups("v1", CGROUP_ROOT, parent)).toEqual(["c1"]);
      expect(await native().oomKills("v1", CGROUP_ROOT, parent, "c1")).toBe(0);
    } finally {
      await native().removeCgroup("v1", CGROUP_ROOT, parent, "c1");
      await native().removeCgroup("v1", CGROUP_ROOT, parent, null);
    }
    for (const c of V1_CONTROLLERS) expect(fs.existsSync(path.join(CGROUP_ROOT, c, parent))).toBe(false);
  });

  it("v2 against a fake cgroupfs tree: enables controllers and writes the v2 files", async () => {
    // This kernel offers no v2 memory controller (hybrid), so the v2 driver is
    // checked against a tree with the control files pre-created.
    const root = tempDir("grove-fake-cgroup2");
    try {
      const parent = path.join(root, "grove");
      const dir = path.join(parent, "c2");
      fs.mkdirSync(dir, { recursive: true });
      const files = [
        "memory.max",
        "memory.swap.max",
        "cpu.max",
        "cpu.weight",
        "pids.max",
        "cgroup.procs",
        "cgroup.kill",
      ];
      for (const f of files) fs.writeFileSync(path.join(dir, f), "");
      fs.writeFileSync(path.join(root, "cgroup.subtree_control"), "");
      fs.writeFileSync(path.join(parent, "cgroup.subtree_control"), "");
      fs.writeFileSync(path.join(dir, "memory.events"), "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n");

      await native().setupCgroup("v2", root, "grove", "c2", { cpuMillis: 250, memoryBytes: 64 * MiB, pids: 32 });
      const at = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
      expect(fs.readFileSync(path.join(parent, "cgroup.subtree_control"), "utf8")).toBe("+memory +cpu +pids");
      expect(at("memory.max")).toBe(String(64 * MiB));
      expect(at("memory.swap.max")).toBe("0");
      expect(at("cpu.max")).toBe("25000 100000");
      expect(at("cpu.weight")).toBe("10"); // shares 256 -> weight 1 + 254*9999/262142
      expect(at("pids.max")).toBe("32");
      expect(await native().oomKills("v2", root, "grove", "c2")).toBe(1);
      expect(await native().listCgroups("v2", root, "grove")).toEqual(["c2"]);
      // No swap file (no swap accounting): skipped, not an error.
      fs.rmSync(path.join(dir, "memory.swap.max"));
      await native().setupCgroup("v2", root, "grove", "c2", { cpuMillis: 4000, memoryBytes: MiB, pids: 1 });
      expect(at("cpu.max")).toBe("400000 100000");
      expect(at("cpu.weight")).toBe("157");
      // A missing required file is an error naming the path.
      fs.rmSync(path.join(dir, "pids.max"));
      await expect(
        native().setupCgroup("v2", root, "grove", "c2", { cpuMillis: 100, memoryBytes: MiB, pids: 1 }),
      ).rejects.toThrow(`open ${path.join(dir, "pids.max")}: No such file or directory`);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
