// exec into a running container (real grove-shim, addon and kernel): the
// process joins the init's namespaces and cgroups under the container's
// security settings, with pipes or a pty, and nothing of the host leaks in.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import {
  NativeRuntime,
  SHIM_PATH,
  loadNativeBinding,
  type ContainerHandle,
  type ContainerSpec,
  type ExecOptions,
  type ExecProcess,
} from "@grove/agent";
import { RUN_TAG, runSlot, tempDir } from "./harness/run-id";

const MiB = 1024 * 1024;
const REPO = path.resolve(__dirname, "../..");
const PARENT = `grove-exec-${RUN_TAG}`;
const DOCKER_CAPS = "00000000a80425fb";
const NAMESPACES = ["mnt", "pid", "net", "uts", "ipc"];

let tmp: string;
let rootfs: string;
let stateDir: string;
let rt: NativeRuntime;
let n = 0;

function spec(script: string, over: Partial<ContainerSpec> = {}): ContainerSpec {
  const id = `e${++n}`;
  return {
    id,
    rootfs,
    command: ["/bin/sh", "-c", script],
    env: { PATH: "/bin:/sbin:/usr/bin:/usr/sbin", FOO: "from-container", KEEP: "kept" },
    hostname: id,
    resources: { cpuMillis: 500, memoryBytes: 64 * MiB, pids: 64 },
    logPath: path.join(tmp, `${id}.log`),
    ...over,
  };
}

/** A container that sleeps until stopped. */
async function sleeper(over: Partial<ContainerSpec> = {}): Promise<ContainerHandle> {
  return rt.start(spec("exec sleep 1000", over));
}

async function done(h: ContainerHandle): Promise<void> {
  await rt.stop(h.id, 0);
  await rt.remove(h.id);
}

interface Result {
  code: number;
  signal: number;
  out: string;
  err: string;
}

function collect(p: ExecProcess): Promise<Result> {
  let out = "";
  let err = "";
  p.stdout.setEncoding("utf8");
  p.stdout.on("data", (c: string) => (out += c));
  const ended = [new Promise<void>((r) => p.stdout.on("end", r))];
  if (p.stderr !== null) {
    p.stderr.setEncoding("utf8");
    p.stderr.on("data", (c: string) => (err += c));
    ended.push(new Promise<void>((r) => p.stderr!.on("end", r)));
  }
  return Promise.all([p.exited, ...ended]).then(([exit]) => ({ code: exit.exitCode, signal: exit.signal, out, err }));
}

/** exec with stdin closed at once; waits for the exit and all output. */
async function run(id: string, command: string[], opts: Omit<ExecOptions, "command"> = {}): Promise<Result> {
  const p = await rt.exec(id, { command, ...opts });
  const result = collect(p);
  p.stdin.end();
  return result;
}

function field(out: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(.*)$`, "m").exec(out)?.[1]?.trim();
}

function sha(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The cgroup of a process in the memory hierarchy (v1) or the unified one (v2). */
function cgroupOf(pid: number): string {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
  const line = lines.find((l) => (rt.cgroupMode === "v1" ? /:memory:/.test(l) : l.startsWith("0::")));
  return line?.split(":")[2] ?? "";
}

/** Sockets this jest process holds (the exec sessions' stdio, control and status are sockets). */
function openSockets(): number {
  return fs.readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith("socket:");
    } catch {
      return false;
    }
  }).length;
}
let socketsBefore = 0;

function helperProcesses(): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith(`${SHIM_PATH}\0exec\0`);
      } catch {
        return false;
      }
    })
    .filter((pid) => {
      try {
        return Number(field(fs.readFileSync(`/proc/${pid}/status`, "utf8"), "PPid")) === process.pid;
      } catch {
        return false;
      }
    });
}

beforeAll(() => {
  loadNativeBinding();
  tmp = tempDir("grove-exec");
  fs.chmodSync(tmp, 0o755); // a user-namespaced container's root is an unprivileged host uid
  rootfs = path.join(tmp, "rootfs");
  stateDir = path.join(tmp, "state");
  execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [rootfs], { stdio: "pipe" });
  fs.appendFileSync(path.join(rootfs, "etc/passwd"), "app:x:1000:1000:app:/home/app:/bin/sh\n");
  fs.appendFileSync(path.join(rootfs, "etc/group"), "app:x:1000:\nextra:x:2000:app\n");
  fs.mkdirSync(path.join(rootfs, "work"), { recursive: true });
  rt = new NativeRuntime({ cgroupParent: PARENT, stateDir });
  socketsBefore = openSockets();
});

afterAll(async () => {
  for (const h of rt?.list() ?? []) {
    await rt.stop(h.id, 0);
    await rt.remove(h.id);
  }
  await rt?.removeParentCgroup();
  for (const c of ["memory", "cpu", "pids", "cpuacct", "devices", "freezer", ""]) {
    expect(fs.existsSync(path.join("/sys/fs/cgroup", c, PARENT))).toBe(false);
  }
  // Every helper this process started has exited (none left behind), and no session's socket is left open.
  expect(helperProcesses()).toEqual([]);
  await waitFor(() => openSockets() <= socketsBefore, "the exec sessions' sockets to close");
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("exec joins the container", () => {
  it("shares every namespace and the cgroup of the init, inside its pid namespace", async () => {
    const h = await sleeper();
    const p = await rt.exec(h.id, {
      command: [
        "/bin/sh",
        "-c",
        `for ns in ${NAMESPACES.join(" ")}; do echo ns_$ns=$(readlink /proc/self/ns/$ns); done; ` +
          "grep NSpid: /proc/$$/status; echo self=$$; cat /proc/self/cgroup; exec cat",
      ],
    });
    const result = collect(p);
    // While it runs (blocked in cat): the host sees it in the container's cgroup and namespaces.
    await waitFor(() => {
      try {
        return fs.readFileSync(`/proc/${p.pid}/cmdline`, "utf8").startsWith("cat");
      } catch {
        return false;
      }
    }, "cat to run");
    for (const ns of NAMESPACES) {
      expect(fs.readlinkSync(`/proc/${p.pid}/ns/${ns}`)).toBe(fs.readlinkSync(`/proc/${h.pid}/ns/${ns}`));
      expect(fs.readlinkSync(`/proc/${p.pid}/ns/${ns}`)).not.toBe(fs.readlinkSync(`/proc/self/ns/${ns}`));
    }
    // NSpid from the host: the host pid, then the pid inside the container's namespace (not 1: the init is).
    const nspid = field(fs.readFileSync(`/proc/${p.pid}/status`, "utf8"), "NSpid")!
      .split(/\s+/)
      .map(Number);
    expect(nspid).toHaveLength(2);
    expect(nspid[0]).toBe(p.pid);
    expect(nspid[1]).toBeGreaterThan(1);
    const cgroup = cgroupOf(h.pid);
    expect(cgroup).toBe(`/${PARENT}/${h.id}`);
    expect(cgroupOf(p.pid)).toBe(cgroup);
    const procs =
      rt.cgroupMode === "v1"
        ? path.join("/sys/fs/cgroup/pids", PARENT, h.id, "cgroup.procs")
        : path.join("/sys/fs/cgroup", PARENT, h.id, "cgroup.procs");
    expect(fs.readFileSync(procs, "utf8").split("\n")).toContain(String(p.pid));
    if (rt.cgroupMode === "v1") {
      // Every hierarchy the runtime puts the init in.
      for (const c of ["memory", "cpu", "pids", "cpuacct", "devices", "freezer"]) {
        const file = path.join("/sys/fs/cgroup", c, PARENT, h.id, "cgroup.procs");
        if (fs.existsSync(file)) expect(fs.readFileSync(file, "utf8").split("\n")).toContain(String(p.pid));
      }
    }
    p.stdin.end();
    const { code, out } = await result;
    expect(code).toBe(0);
    for (const ns of NAMESPACES) {
      expect(out).toContain(`ns_${ns}=${fs.readlinkSync(`/proc/${h.pid}/ns/${ns}`)}\n`);
    }
    // Inside, its procfs shows the one pid it has there.
    expect(field(out, "NSpid")).toBe(String(nspid[1]));
    expect(out).toContain(`self=${nspid[1]}\n`);
    // It joined the init's cgroup namespace too, rooted at the container's cgroups: every line is "/".
    const cgroupLines = out.split("\n").filter((l) => /^\d+:[^:]*:/.test(l));
    expect(cgroupLines.length).toBeGreaterThan(0);
    for (const l of cgroupLines) expect(l).toMatch(/:\/$/);
    expect(out).not.toContain(PARENT);
    await done(h);
  });

  it("joins the user namespace of a user-namespaced container (container root is an unprivileged host uid)", async () => {
    const hostBase = 300_000_000 + runSlot(50_000, 25_000) * 65536;
    const map = [{ containerId: 0, hostId: hostBase, size: 65536 }];
    const h = await sleeper({ userNamespace: { uidMap: map, gidMap: map } });
    const p = await rt.exec(h.id, {
      command: ["/bin/sh", "-c", "id; cat /proc/self/uid_map; touch /tmp/by-exec && echo touched; exec cat"],
    });
    const result = collect(p);
    await waitFor(() => {
      try {
        return fs.readFileSync(`/proc/${p.pid}/cmdline`, "utf8").startsWith("cat");
      } catch {
        return false;
      }
    }, "cat to run");
    for (const ns of ["user", ...NAMESPACES]) {
      expect(fs.readlinkSync(`/proc/${p.pid}/ns/${ns}`)).toBe(fs.readlinkSync(`/proc/${h.pid}/ns/${ns}`));
    }
    expect(fs.readlinkSync(`/proc/${p.pid}/ns/user`)).not.toBe(fs.readlinkSync("/proc/self/ns/user"));
    const status = fs.readFileSync(`/proc/${p.pid}/status`, "utf8");
    expect(field(status, "Uid")).toBe(`${hostBase}\t${hostBase}\t${hostBase}\t${hostBase}`);
    expect(field(status, "CapEff")).toBe(field(fs.readFileSync(`/proc/${h.pid}/status`, "utf8"), "CapEff"));
    p.stdin.end();
    const { code, out } = await result;
    expect(code).toBe(0);
    expect(out).toMatch(/^uid=0\(root\) gid=0\(root\)/);
    expect(out).toMatch(new RegExp(`^\\s*0\\s+${hostBase}\\s+65536$`, "m"));
    expect(out).toContain("touched\n");
    await done(h);
  });

  it("runs with the init's capabilities, no_new_privs and seccomp filter, and only fds 0-2", async () => {
    const h = await sleeper({ capabilities: { add: ["NET_ADMIN"], drop: ["CHOWN"] } });
    const init = fs.readFileSync(`/proc/${h.pid}/status`, "utf8");
    const { code, out } = await run(h.id, [
      "/bin/sh",
      "-c",
      "cat /proc/self/status; ls /proc/self/fd; echo fds=$(ls /proc/self/fd | wc -l); " +
        "unshare -U true 2>/dev/null && echo userns=yes || echo userns=no",
    ]);
    expect(code).toBe(0);
    for (const f of ["CapBnd", "CapPrm", "CapEff"]) expect(field(out, f)).toBe(field(init, f));
    expect(field(out, "CapEff")).toBe("00000000a80435fa");
    expect(field(out, "CapInh")).toBe("0000000000000000");
    expect(field(out, "CapAmb")).toBe("0000000000000000");
    expect(field(out, "NoNewPrivs")).toBe("1");
    expect(field(out, "Seccomp")).toBe("2");
    expect(field(init, "Seccomp")).toBe("2");
    // ls's 0, 1, 2 and the directory it reads: nothing of the host or the helper.
    expect(out).toContain("fds=4\n");
    // The filter is the container's: a user namespace (no capability needed) is refused.
    expect(out).toContain("userns=no\n");
    await done(h);
  });

  it("is unconfined when the container is", async () => {
    const h = await sleeper({ seccomp: "unconfined" });
    const { out } = await run(h.id, ["/bin/sh", "-c", "grep Seccomp: /proc/self/status"]);
    expect(field(out, "Seccomp")).toBe("0");
    await done(h);
  });

  it("runs as the container's user by default, as opts.user when given; env and working directory", async () => {
    const h = await sleeper({
      user: "app",
      workingDir: "/work",
      rlimits: [{ type: "RLIMIT_NOFILE", soft: 123, hard: 456 }],
    });
    const init = fs.readFileSync(`/proc/${h.pid}/status`, "utf8");
    const dflt = await run(h.id, [
      "/bin/sh",
      "-c",
      "id; pwd; echo FOO=$FOO KEEP=$KEEP; ulimit -n; cat /proc/self/status",
    ]);
    expect(dflt.out).toContain("uid=1000(app) gid=1000(app) groups=2000(extra)\n");
    for (const f of ["Uid", "Gid", "Groups"]) expect(field(dflt.out, f)).toBe(field(init, f));
    expect(dflt.out).toContain("/work\n");
    expect(dflt.out).toContain("FOO=from-container KEEP=kept\n");
    expect(dflt.out).toContain("123\n");
    expect(field(dflt.out, "CapEff")).toBe("0000000000000000");

    const root = await run(h.id, ["sh", "-c", "id; pwd; echo FOO=$FOO KEEP=$KEEP; grep CapEff /proc/self/status"], {
      user: "root",
      env: { FOO: "overridden" },
      workingDir: "/etc",
    });
    expect(root.out).toContain("uid=0(root) gid=0(root)");
    expect(root.out).toContain("/etc\n");
    expect(root.out).toContain("FOO=overridden KEEP=kept\n");
    expect(field(root.out, "CapEff")).toBe(DOCKER_CAPS);

    const numeric = await run(h.id, ["id"], { user: "1234:2000" });
    expect(numeric.out).toContain("uid=1234 gid=2000(extra)");
    await expect(rt.exec(h.id, { command: ["id"], user: "nobody-here" })).rejects.toThrow(/no user "nobody-here"/);
    await expect(rt.exec(h.id, { command: ["true"], workingDir: "/no/such" })).rejects.toThrow(
      /chdir \/no\/such: No such file or directory/,
    );
    await done(h);
  });
});

describe("exec streams and exit", () => {
  let h: ContainerHandle;
  beforeAll(async () => {
    h = await sleeper();
  });
  afterAll(async () => {
    await done(h);
  });

  it("pipes stdin through and keeps stdout and stderr apart", async () => {
    const p = await rt.exec(h.id, { command: ["/bin/sh", "-c", "cat; echo to-stderr >&2; echo to-stdout"] });
    expect(p.stderr).not.toBeNull();
    const result = collect(p);
    p.stdin.write("hello\n");
    p.stdin.end("world\n");
    const { code, out, err } = await result;
    expect(code).toBe(0);
    expect(out).toBe("hello\nworld\nto-stdout\n");
    expect(err).toBe("to-stderr\n");
  });

  it("passes the exit code through, and 128 + signal when killed", async () => {
    expect((await run(h.id, ["sh", "-c", "exit 7"])).code).toBe(7);
    const p = await rt.exec(h.id, { command: ["sleep", "1000"] });
    const result = collect(p);
    p.kill("SIGTERM");
    const r = await result;
    expect(r.code).toBe(143);
    expect(r.signal).toBe(15);
    const q = await rt.exec(h.id, { command: ["sleep", "1000"] });
    q.kill(9);
    expect(await q.exited).toEqual({ exitCode: 137, signal: 9 });
  });

  it("has the helper as the process's parent, and dies with it", async () => {
    const p = await rt.exec(h.id, { command: ["sleep", "1000"] });
    const helper = Number(field(fs.readFileSync(`/proc/${p.pid}/status`, "utf8"), "PPid"));
    expect(helperProcesses()).toContain(helper);
    expect(fs.readlinkSync(`/proc/${helper}/exe`)).toBe("/memfd:grove-shim (deleted)");
    // Not in the container: the helper keeps the agent's namespaces.
    expect(fs.readlinkSync(`/proc/${helper}/ns/pid`)).toBe(fs.readlinkSync("/proc/self/ns/pid"));
    process.kill(helper, "SIGKILL");
    await expect(p.exited).rejects.toThrow(/the helper ended without reporting an exit/);
    await waitFor(() => {
      try {
        return /^State:\s+Z/m.test(fs.readFileSync(`/proc/${p.pid}/status`, "utf8"));
      } catch {
        return true;
      }
    }, "the process to die with its helper");
  });

  it("reports a command that cannot run", async () => {
    await expect(rt.exec(h.id, { command: ["/no/such/program"] })).rejects.toMatchObject({
      code: "START_FAILED",
      errno: "ENOENT",
      message: expect.stringContaining("exec /no/such/program: No such file or directory"),
    });
  });

  it("allocates a pty inside the container: tty, stty size, resize", async () => {
    const once = await run(h.id, ["/bin/sh", "-c", "tty; stty size; echo fds=$(ls /proc/self/fd | wc -l)"], {
      tty: true,
      cols: 100,
      rows: 30,
    });
    expect(once.code).toBe(0);
    expect(once.out).toMatch(/^\/dev\/pts\/\d+\r\n30 100\r\nfds=4\r\n$/);

    // All the output arrives, also what is still in the pty when the process exits.
    const big = await run(h.id, ["seq", "1", "30000"], { tty: true });
    expect(big.code).toBe(0);
    const lines = big.out.split("\r\n");
    expect(lines).toHaveLength(30001);
    expect(lines[29999]).toBe("30000");

    const p = await rt.exec(h.id, { command: ["/bin/sh"], tty: true, cols: 80, rows: 24 });
    expect(p.stderr).toBeNull();
    let out = "";
    p.stdout.setEncoding("utf8");
    p.stdout.on("data", (c: string) => (out += c));
    p.stdin.write("stty size; echo sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$ tty_nr=$(cut -d' ' -f7 /proc/$$/stat)\n");
    await waitFor(() => /24 80\r\n/.test(out), "the first stty size");
    p.resize(132, 43);
    p.stdin.write("stty size; exit 3\n");
    await waitFor(() => /43 132\r\n/.test(out), "stty size after the resize");
    expect(await p.exited).toEqual({ exitCode: 3, signal: 0 });
    // The shell leads its own session with the pty as its controlling terminal.
    const m = /sid=(\d+) pid=(\d+) tty_nr=(\d+)/.exec(out);
    expect(m).not.toBeNull();
    expect(m![1]).toBe(m![2]);
    expect(Number(m![3])).toBeGreaterThan(0);
    expect(out).not.toMatch(/can't access tty/);
  });
});

describe("exec refusals and defences", () => {
  it("fails clearly for a container that is not running, or unknown", async () => {
    const h = await rt.start(spec("true"));
    await h.exited;
    await expect(rt.exec(h.id, { command: ["true"] })).rejects.toMatchObject({
      code: "CONTAINER_NOT_RUNNING",
      message: expect.stringMatching(/cannot exec in container e\d+: it is not running \(it exited with code 0\)/),
    });
    await rt.remove(h.id);
    await expect(rt.exec("nope", { command: ["true"] })).rejects.toMatchObject({ code: "CONTAINER_NOT_FOUND" });
    await expect(rt.exec(h.id, { command: [] })).rejects.toThrow("exec command must be a non-empty array");
  });

  it("works on a container adopted by a new runtime (after an agent restart)", async () => {
    const h = await sleeper();
    rt.detach();
    rt = new NativeRuntime({ cgroupParent: PARENT, stateDir });
    const adopted = await rt.recover();
    expect(adopted.map((a) => a.handle.id)).toContain(h.id);
    const { code, out } = await run(h.id, ["/bin/sh", "-c", "echo FOO=$FOO; readlink /proc/1/exe"]);
    expect(code).toBe(0);
    expect(out).toBe("FOO=from-container\n/bin/busybox\n");
    await done(h);
  });

  it("CVE-2019-5736: the helper is a sealed memfd; overwriting /proc/<pid>/exe from the container changes nothing on the host", async () => {
    const shimBefore = sha(SHIM_PATH);
    const nodeBefore = sha(process.execPath);
    // #!/proc/self/exe: execve runs whatever image did the execve (runc's bug).
    fs.writeFileSync(path.join(rootfs, "bin/evil"), "#!/proc/self/exe\n", { mode: 0o755 });
    // The container keeps trying to open every process's exe and write to it.
    const h = await rt.start(
      spec(
        "while :; do for p in /proc/[0-9]*; do " +
          "[ $p = /proc/$$ ] || { (echo pwned >> $p/exe) 2>/dev/null && echo wrote=$p; }; done; done",
      ),
    );
    // The helper (host side) runs from a sealed memfd: even host root cannot write through its exe.
    const p = await rt.exec(h.id, { command: ["cat"] });
    const helper = Number(field(fs.readFileSync(`/proc/${p.pid}/status`, "utf8"), "PPid"));
    expect(helper).toBeGreaterThan(0);
    expect(fs.readlinkSync(`/proc/${helper}/exe`)).toMatch(/^\/memfd:grove-shim \(deleted\)$/);
    // The attack: hold the exe open while it runs, write through it once it has exited.
    const held = fs.openSync(`/proc/${helper}/exe`, "r");
    p.stdin.end();
    await p.exited;
    await waitFor(() => !fs.existsSync(`/proc/${helper}`), "the helper to exit");
    expect(() => {
      const w = fs.openSync(`/proc/self/fd/${held}`, "a");
      try {
        fs.writeSync(w, "pwned");
      } finally {
        fs.closeSync(w);
      }
    }).toThrow(/EPERM|operation not permitted/i);
    expect(
      createHash("sha256")
        .update(fs.readFileSync(`/proc/self/fd/${held}`))
        .digest("hex"),
    ).toBe(shimBefore);
    fs.closeSync(held);
    // The re-executed image (the memfd) runs inside the container, dumpable: the loop may catch it.
    for (let i = 0; i < 20; i++) {
      const r = await run(h.id, ["/bin/evil"]);
      expect(r.code).not.toBe(0);
    }
    const q = await rt.exec(h.id, { command: ["/proc/self/exe", "exec", "x"] });
    await q.exited;
    await done(h);
    expect(fs.readFileSync(path.join(tmp, `${h.id}.log`), "utf8")).not.toContain("wrote=");
    expect(sha(SHIM_PATH)).toBe(shimBefore);
    expect(sha(process.execPath)).toBe(nodeBefore);
  });

  it("CVE-2024-21626: a working directory of /proc/self/fd/N cannot reach the host", async () => {
    const h = await sleeper();
    for (const fd of [3, 4, 5, 6, 7, 8]) {
      const attempt = run(h.id, ["/bin/sh", "-c", "pwd; ls /"], { workingDir: `/proc/self/fd/${fd}` });
      // Refused (the descriptors are closed before the chdir), never the host's root.
      await expect(attempt).rejects.toThrow(/chdir \/proc\/self\/fd\/\d+: (No such file or directory|Not a directory)/);
    }
    await done(h);
  });
});
