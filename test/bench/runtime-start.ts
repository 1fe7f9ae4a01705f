// Container start-to-exit latency: Grove's native runtime core against runc,
// same busybox rootfs, same limits (cpu 500m, memory 64Mi, pids 64), same
// namespaces, running /bin/true. Each sample creates the container, waits
// for its exit and removes it. Grove runs in-process (the addon); runc is a
// CLI, so its figure includes its own process start, as it does for every
// orchestrator that calls it.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NativeRuntime } from "@grove/agent";
import type { BenchReport } from "./run";
import { summarize } from "./lib-stats";

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40);

function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "deploy", "make-rootfs.sh"))) return dir;
    if (path.dirname(dir) === dir) throw new Error("no repository root found");
  }
}

function rmCgroups(parent: string): void {
  for (const c of [
    "memory",
    "cpu",
    "pids",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "blkio",
    "systemd",
    "unified",
    "",
  ]) {
    const dir = path.join("/sys/fs/cgroup", c, parent);
    if (!fs.existsSync(dir)) continue;
    for (const sub of fs.readdirSync(dir, { withFileTypes: true })) {
      if (sub.isDirectory()) fs.rmdirSync(path.join(dir, sub.name));
    }
    fs.rmdirSync(dir);
  }
}

export async function run(): Promise<BenchReport> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "grove-bench-start-"));
  const rootfs = path.join(tmp, "rootfs");
  execFileSync(path.join(repoRoot(), "deploy", "make-rootfs.sh"), [rootfs]);
  const parent = `grove-bench-${process.pid}`;
  const runcParent = `grove-bench-runc-${process.pid}`;
  const rt = new NativeRuntime({ cgroupParent: parent });

  const bundle = path.join(tmp, "bundle");
  fs.mkdirSync(bundle);
  execFileSync("runc", ["spec"], { cwd: bundle });
  const spec = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8"));
  spec.process.terminal = false;
  spec.process.args = ["/bin/true"];
  spec.root = { path: rootfs, readonly: false };
  spec.hostname = "bench";
  spec.linux.resources = {
    ...spec.linux.resources,
    memory: { limit: 64 * 2 ** 20 },
    cpu: { quota: 50000, period: 100000, shares: 512 },
    pids: { limit: 64 },
  };
  fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(spec));
  const runcVersion = execFileSync("runc", ["--version"]).toString().split("\n")[0] ?? "runc";

  const grove: number[] = [];
  const runc: number[] = [];
  try {
    for (let i = 0; i < SAMPLES + 2; i++) {
      const id = `b${i}`;
      let t = process.hrtime.bigint();
      const h = await rt.start({
        id,
        rootfs,
        command: ["/bin/true"],
        env: {},
        hostname: "bench",
        resources: { cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: 64 },
        logPath: path.join(tmp, `${id}.log`),
      });
      const exit = await h.exited;
      await rt.remove(id);
      const groveMs = Number(process.hrtime.bigint() - t) / 1e6;
      if (exit.exitCode !== 0) throw new Error(`grove container exited ${exit.exitCode}`);

      spec.linux.cgroupsPath = `/${runcParent}/${id}`;
      fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(spec));
      t = process.hrtime.bigint();
      execFileSync("runc", ["run", "--bundle", bundle, `grove-bench-${process.pid}-${id}`], { stdio: "ignore" });
      const runcMs = Number(process.hrtime.bigint() - t) / 1e6;
      if (i >= 2) {
        // the first two of each are warm-up
        grove.push(groveMs);
        runc.push(runcMs);
      }
    }
  } finally {
    await rt.removeParentCgroup().catch(() => undefined);
    try {
      rmCgroups(runcParent);
    } catch {
      /* nothing left */
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const g = summarize(grove);
  const r = summarize(runc);
  return {
    title: `start-to-exit of /bin/true, ${SAMPLES} samples each: Grove native runtime vs ${runcVersion}`,
    rows: [
      { name: "grove", p50_ms: g.p50, p90_ms: g.p90, p99_ms: g.p99, mean_ms: g.mean },
      { name: "runc", p50_ms: r.p50, p90_ms: r.p90, p99_ms: r.p99, mean_ms: r.mean },
      {
        name: "ratio grove/runc",
        p50_ms: g.p50 / r.p50,
        p90_ms: g.p90 / r.p90,
        p99_ms: g.p99 / r.p99,
        mean_ms: g.mean / r.mean,
      },
    ],
    results: {
      samples: SAMPLES,
      grove_p50_ms: g.p50,
      grove_p90_ms: g.p90,
      grove_p99_ms: g.p99,
      runc_p50_ms: r.p50,
      runc_p90_ms: r.p90,
      runc_p99_ms: r.p99,
      ratio_p50: g.p50 / r.p50,
      ratio_p90: g.p90 / r.p90,
      runc_version: runcVersion,
    },
  };
}
