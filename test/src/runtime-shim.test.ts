// grove-shim on its own: log rotation, stats, and what a second runtime
// (a restarted agent) finds: live containers adopted, exits recorded while
// nobody listened, and a container whose shim was killed cleaned up.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { NativeRuntime, SHIM_PATH, loadNativeBinding, type ContainerSpec } from "@grove/agent";
import { RUN_TAG, tempDir } from "./harness/run-id";

const MiB = 1024 * 1024;
const REPO = path.resolve(__dirname, "../..");
const PARENT = `grove-shim-${RUN_TAG}`;

let tmp: string;
let rootfs: string;
let stateDir: string;

function spec(id: string, script: string, over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    id,
    rootfs,
    command: ["/bin/sh", "-c", script],
    env: { PATH: "/bin" },
    hostname: id,
    resources: { cpuMillis: 500, memoryBytes: 64 * MiB, pids: 32 },
    logPath: path.join(tmp, `${id}.log`),
    ...over,
  };
}

function runtime(opts: { logMaxBytes?: number } = {}): NativeRuntime {
  return new NativeRuntime({ cgroupParent: PARENT, stateDir, ...opts });
}

function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, what = "a condition", ms = 20_000): Promise<void> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The commands (comm) of the processes in a container's cgroup, as the kernel lists them. */
function commsIn(id: string): string[] {
  const v1 = `/sys/fs/cgroup/pids/${PARENT}/${id}/cgroup.procs`;
  const procs = fs.existsSync(v1) ? v1 : `/sys/fs/cgroup/${PARENT}/${id}/cgroup.procs`;
  return fs
    .readFileSync(procs, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      } catch {
        return ""; // exited meanwhile
      }
    });
}

beforeAll(() => {
  loadNativeBinding();
  tmp = tempDir("grove-shim");
  rootfs = path.join(tmp, "rootfs");
  stateDir = path.join(tmp, "state");
  execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [rootfs], { stdio: "pipe" });
});

afterAll(async () => {
  const rt = runtime();
  await rt.recover();
  for (const h of rt.list()) {
    await rt.stop(h.id, 0);
    await rt.remove(h.id);
  }
  await rt.cleanupStale();
  rt.detach();
  await rt.removeParentCgroup();
  for (const c of ["memory", "cpu", "pids", "cpuacct", "devices"]) {
    expect(fs.existsSync(path.join("/sys/fs/cgroup", c, PARENT))).toBe(false);
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("grove-shim", () => {
  it("rotates the log by size and keeps all of the output across log and log.1", async () => {
    const rt = runtime({ logMaxBytes: 4096 });
    const s = spec("logs", "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done");
    const h = await rt.start(s);
    expect(await h.exited).toMatchObject({ exitCode: 0 });
    const current = fs.readFileSync(s.logPath, "utf8");
    const rotated = fs.readFileSync(`${s.logPath}.1`, "utf8");
    expect(fs.statSync(s.logPath).size).toBeLessThanOrEqual(4096);
    expect(fs.statSync(`${s.logPath}.1`).size).toBeLessThanOrEqual(4096);
    expect(current).toContain("line-299-");
    // One generation is kept: the newest lines, in order, with nothing lost between the files.
    const lines = (rotated + current).split("\n").filter(Boolean);
    const first = Number(/line-(\d+)-/.exec(lines[0]!)?.[1]);
    expect(lines.map((l) => Number(/line-(\d+)-/.exec(l)?.[1]))).toEqual(
      Array.from({ length: 300 - first }, (_, i) => first + i),
    );
    await rt.remove("logs");
  });

  it("answers stats: cpu, memory current and peak, pids, OOM kills", async () => {
    const rt = runtime();
    await rt.start(spec("stats", "x=$(head -c 2000000 /dev/zero | tr '\\0' a); sleep 60 & sleep 60"));
    // The shell has filled its 2 MB and started both sleeps (seen in the cgroup, not guessed by a pause).
    await waitFor(() => commsIn("stats").filter((c) => c === "sleep").length === 2, "the two sleeps to run");
    const st = await rt.stats("stats");
    expect(st.pids).toBeGreaterThanOrEqual(2); // sh (unless it exec'd the last command) and two sleeps
    expect(st.memoryBytes).toBeGreaterThan(100_000);
    expect(st.memoryPeakBytes).toBeGreaterThanOrEqual(st.memoryBytes);
    expect(st.cpuUsageNs).toBeGreaterThan(0);
    expect(st.oomKills).toBe(0);
    await rt.stop("stats", 0);
    await rt.remove("stats");
    rt.detach();
  });

  it("updates memory, cpu and pids limits of a running container in place, and freezes and thaws it", async () => {
    const rt = runtime();
    const h = await rt.start(spec("upd", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done"));
    const v1 = (c: string, f: string) =>
      fs.readFileSync(path.join("/sys/fs/cgroup", c, PARENT, "upd", f), "utf8").trim();
    await rt.update("upd", { cpuMillis: 1500, memoryBytes: 96 * MiB, pids: 48 });
    expect(v1("memory", "memory.limit_in_bytes")).toBe(String(96 * MiB));
    expect(v1("cpu", "cpu.cfs_quota_us")).toBe("150000");
    expect(v1("pids", "pids.max")).toBe("48");
    expect(alive(h.pid)).toBe(true); // same process: no restart
    await expect(rt.update("upd", { cpuMillis: 0, memoryBytes: MiB, pids: 1 })).rejects.toThrow(
      "resources.cpuMillis must be a positive integer, got 0",
    );

    const count = () => Number(fs.readFileSync(path.join(rootfs, "tmp", "count"), "utf8"));
    await waitFor(() => fs.existsSync(path.join(rootfs, "tmp", "count")));
    await rt.setFrozen("upd", true);
    await waitFor(() => v1("freezer", "freezer.state") === "FROZEN");
    const frozenAt = count();
    await new Promise((r) => setTimeout(r, 400));
    expect(count()).toBe(frozenAt);
    await rt.setFrozen("upd", false);
    await waitFor(() => count() > frozenAt);
    // A frozen container still stops (thawed first).
    await rt.setFrozen("upd", true);
    await expect(rt.stop("upd", 0)).resolves.toMatchObject({ signal: 9 });
    await rt.remove("upd");
    rt.detach();
  });

  it("a live update keeps the device allow list in place (no window without /dev/null) and is recorded for adoption", async () => {
    const rt = runtime();
    // Opens /dev/null as fast as the shell can. A refusal ends the shell (a redirection error
    // of the special builtin `:` exits sh) or is counted in /tmp/denied. Writing "deny a" before
    // the allow lines on every update did either within 200 updates.
    const h = await rt.start(
      spec("devupd", "while :; do : < /dev/null || echo denied >> /tmp/denied; done 2>/dev/null", {
        resources: { cpuMillis: 500, memoryBytes: 64 * MiB, pids: 32 },
      }),
    );
    const devices = () =>
      fs.readFileSync(path.join("/sys/fs/cgroup/devices", PARENT, "devupd", "devices.list"), "utf8");
    const before = devices();
    expect(before).toContain("c 1:3 rwm");
    for (let i = 0; i < 200; i++) {
      await rt.update("devupd", { cpuMillis: 500 + (i % 2) * 100, memoryBytes: (64 + (i % 2) * 8) * MiB, pids: 32 });
    }
    await rt.update("devupd", { cpuMillis: 700, memoryBytes: 80 * MiB, pids: 40 });
    expect(devices()).toBe(before);
    expect(fs.existsSync(path.join(rootfs, "tmp", "denied"))).toBe(false);
    expect(alive(h.pid)).toBe(true);
    // The limits are recorded: another runtime (a restarted agent) adopting it learns them.
    rt.detach();
    const second = runtime();
    const found = (await second.recover()).find((f) => f.handle.id === "devupd");
    expect(found?.resources).toEqual({ cpuMillis: 700, memoryBytes: 80 * MiB, pids: 40 });
    await second.stop("devupd", 0);
    await second.remove("devupd");
    second.detach();
  });

  it("writes its state and exit records by rename without fsync (no disk flush on the start or exit path)", async () => {
    // grove-shim under strace (-D: strace is a detached grandchild, the
    // spawned process stays the shim, so its detach and reporting are as
    // always); the calls that flush to disk and the record renames are logged.
    const log = path.join(tmp, "shim-strace.log");
    const wrapper = path.join(tmp, "shim-under-strace");
    fs.writeFileSync(
      wrapper,
      `#!/bin/sh\nexec strace -D -f -qq -o ${log} -e trace=fsync,fdatasync,syncfs,sync,sync_file_range,rename,renameat,renameat2 ${SHIM_PATH} "$@"\n`,
      { mode: 0o755 },
    );
    const rt = new NativeRuntime({ cgroupParent: PARENT, stateDir, shimPath: wrapper });
    const h = await rt.start(spec("nosync", "exit 3"));
    expect(await h.exited).toMatchObject({ exitCode: 3 });
    const traced = (): string => (fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "");
    // Both records were seen being written (the trace is not empty by accident) ...
    await waitFor(() => /\.exit\.tmp/.test(traced()), "strace to log the exit record's rename");
    expect(traced()).toMatch(/\.state\.tmp/);
    // ... and nothing was flushed: before, each record was fsynced (0.5 to 3 ms each here).
    expect(traced()).not.toMatch(/\b(fsync|fdatasync|syncfs|sync|sync_file_range)\(/);
    expect(JSON.parse(fs.readFileSync(path.join(stateDir, "nosync", "exit"), "utf8"))).toMatchObject({ exitCode: 3 });
    await rt.remove("nosync");
    rt.detach();
  });

  it("a second runtime adopts a live container, learns an exit that happened while nobody listened, and cleans up a container whose shim died", async () => {
    const first = runtime();
    const live = await first.start(spec("live", "sleep 600", { annotations: { who: "live" } }));
    const quits = await first.start(spec("quits", "while [ ! -f /tmp/quit-shim ]; do sleep 0.05; done; exit 9"));
    const orphan = await first.start(spec("orphan", "sleep 600"));
    first.detach(); // the agent goes away; its containers stay
    const orphanShim = (
      JSON.parse(fs.readFileSync(path.join(stateDir, "orphan", "state"), "utf8")) as { shimPid: number }
    ).shimPid;

    fs.writeFileSync(path.join(rootfs, "tmp", "quit-shim"), "");
    await waitFor(() => !alive(quits.pid));
    process.kill(orphanShim, "SIGKILL");
    await waitFor(() => !alive(orphanShim));
    expect(alive(orphan.pid)).toBe(true); // its container lost its monitor

    const second = runtime();
    const found = await second.recover();
    const byId = new Map(found.map((f) => [f.handle.id, f]));
    expect([...byId.keys()].sort()).toEqual(["live", "quits"]);
    expect(byId.get("live")!.handle.pid).toBe(live.pid);
    expect(byId.get("live")!.annotations).toEqual({ who: "live" });
    await expect(byId.get("quits")!.handle.exited).resolves.toMatchObject({ exitCode: 9, signal: 0 });
    // The orphan could not be loaded: its processes are killed, its cgroup and state removed.
    await waitFor(() => !alive(orphan.pid));
    expect(fs.existsSync(path.join(stateDir, "orphan"))).toBe(false);
    expect(await loadNativeBinding().listCgroups(second.cgroupMode, second.cgroupRoot, PARENT)).not.toContain("orphan");

    // The adopted container is fully controllable.
    await expect(second.stop("live", 0)).resolves.toMatchObject({ signal: 9 });
    await second.remove("live");
    await second.remove("quits");
    expect(fs.readdirSync(stateDir)).toEqual([]);
    second.detach();
  });
});
