// containerd's `ctr image pull` as the image-pull benchmark's second anchor
// (issue 18): Debian's containerd, a daemon of the benchmark's own (root,
// state and socket in a fresh directory, the CRI plugin off), started afresh
// for each pull so that its content store is empty like Grove's. `ctr image
// pull` fetches into containerd's content store and unpacks into its
// overlayfs snapshotter: the same work as Grove's pull + unpack. CPU is ctr's
// (rusage through /usr/bin/time) plus the daemon's (utime + stime from /proc),
// where the unpack runs.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { syncCalls } from "./lib-image-fsync";

const exec = promisify(execFile);
const CLK_TCK = 100;

export function ctrAvailable(): boolean {
  return fs.existsSync("/usr/bin/ctr") && fs.existsSync("/usr/bin/containerd");
}

function cpuOfPid(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

interface Daemon {
  proc: ChildProcess;
  sock: string;
  dir: string;
  wrapped: boolean;
}

async function startDaemon(dir: string, wrap: string[] = []): Promise<Daemon> {
  fs.mkdirSync(dir, { recursive: true });
  const sock = path.join(dir, "containerd.sock");
  const config = path.join(dir, "config.toml");
  fs.writeFileSync(
    config,
    [
      "version = 2",
      `root = "${path.join(dir, "root")}"`,
      `state = "${path.join(dir, "state")}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = "${sock}"`,
      "[ttrpc]",
      `  address = "${sock}.ttrpc"`,
      "",
    ].join("\n"),
  );
  const argv = [...wrap, "containerd", "--config", config];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: "ignore" });
  for (let i = 0; i < 300; i++) {
    if (fs.existsSync(sock)) {
      try {
        await exec("ctr", ["--address", sock, "version"]);
        return { proc, sock, dir, wrapped: wrap.length > 0 };
      } catch {
        // not serving yet
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill("SIGKILL");
  throw new Error("containerd did not start within 30 s");
}

async function stopDaemon(d: Daemon): Promise<void> {
  // Under strace the daemon is strace's child: stop it, and strace ends with it.
  if (d.wrapped && d.proc.pid !== undefined) {
    const kids = fs.readFileSync(`/proc/${d.proc.pid}/task/${d.proc.pid}/children`, "utf8").trim().split(/\s+/);
    for (const k of kids.filter(Boolean)) process.kill(Number(k), "SIGTERM");
  }
  if (d.proc.exitCode === null) {
    const exited = new Promise((r) => d.proc.once("exit", r));
    d.proc.kill("SIGTERM");
    const t = setTimeout(() => d.proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  }
  // The overlayfs snapshotter leaves no mounts after a pull, but be sure before removing.
  await exec("umount", ["-R", path.join(d.dir, "root")]).catch(() => undefined);
  fs.rmSync(d.dir, { recursive: true, force: true });
}

const pullArgs = (sock: string, ref: string) => ["--address", sock, "image", "pull", "--plain-http", ref];

/** One timed `ctr image pull` into a fresh daemon: wall ms and CPU seconds (ctr + containerd). */
export async function ctrPull(dir: string, ref: string, cpuFile: string): Promise<{ ms: number; cpuS: number }> {
  const d = await startDaemon(dir);
  try {
    await exec("sync");
    const c0 = cpuOfPid(d.proc.pid!);
    const t = process.hrtime.bigint();
    await exec("/usr/bin/time", ["-o", cpuFile, "-f", "%U %S", "ctr", ...pullArgs(d.sock, ref)]);
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    const daemonCpu = cpuOfPid(d.proc.pid!) - c0;
    const ctrCpu = fs
      .readFileSync(cpuFile, "utf8")
      .trim()
      .split("\n")
      .at(-1)!
      .split(" ")
      .map(Number)
      .reduce((a, b) => a + b, 0);
    return { ms, cpuS: ctrCpu + daemonCpu };
  } finally {
    await stopDaemon(d);
  }
}

/** fsync-like calls of one pull: the daemon under strace (start-up included) and ctr. */
export async function ctrSyncCalls(dir: string, ref: string, traceFile: string): Promise<number> {
  const daemonTrace = `${traceFile}.daemon`;
  const d = await startDaemon(dir, [
    "strace",
    "-f",
    "-qq",
    "-e",
    "trace=fsync,fdatasync,syncfs,sync_file_range",
    "-o",
    daemonTrace,
  ]);
  let client = 0;
  try {
    client = await syncCalls(["ctr", ...pullArgs(d.sock, ref)], traceFile);
  } finally {
    await stopDaemon(d);
  }
  const daemon = fs
    .readFileSync(daemonTrace, "utf8")
    .split("\n")
    .filter((l) => /^\d+\s+(fsync|fdatasync|syncfs|sync_file_range)\(/.test(l)).length;
  fs.rmSync(daemonTrace, { force: true });
  return client + daemon;
}
