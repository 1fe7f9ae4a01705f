// runtime-start: the lifecycle "create cgroup and namespaces, exec /bin/true,
// wait, clean up" on one busybox bundle, in one run, interleaved, after
// warm-up, BENCH_SAMPLES (default 200) iterations each:
//   (H) shim:    NativeRuntime.start through grove-shim: the path the agent
//                really uses per container. The headline,
//                shim_vs_runc_median_ratio, compares it with runc;
//   (1) addon:   the runtime core through N-API from a warm Node process
//                (setupCgroup, then the bench-only addon's start, wait,
//                removeCgroup: lib-bench-native.ts);
//   (2) cli:     `grove-runtime run` (bin/grove-runtime: the static C command
//                line over the core; the container is its child);
//   (3) runc:    Debian's `runc run` on the same bundle (its stderr is kept
//                and a failed run is retried and counted, never hidden);
//   (4) floor:   `unshare --pid --mount --fork /bin/true`: new pid and mount
//                namespaces and an exec, the least a start can cost here;
//   and, for reference, (5) cli-node: bin/grove-runtime-node.js, the same
//   command line in TypeScript (a Node start-up per command), and (6) the
//   shim path with Grove's default seccomp filter, as the agent runs Apps,
//   and (7) the same through the runc runtime handler (runtimeClass: runc:
//   grove-shim drives `runc create/start/delete` on a bundle the runtime
//   writes, docs/runtime.md "Runtime handlers"); handler_runc_vs_native_ratio
//   is (7) over (6); and (8) the same through the grove-runtime handler
//   (runtimeClass: grove-runtime, the static C program, which leaves the
//   init to the shim), handler_grove_runtime_vs_native_ratio (8) over (6).
// Same limits everywhere (cpu 500m, memory 64Mi, pids 64), same namespaces.
// Seccomp: runc's generated spec has no filter, and neither do the shim (H),
// cli (2) and cli-node (5) runs; the bench addon (1) installs Grove's default
// filter (its config leaves seccomp_unconfined at 0), and (6) does on purpose.
// What differs between the sides is printed with the results: runc and
// grove-runtime run (2) mount runc spec's /sys/fs/cgroup in the container, the
// other Grove rows do not; runc keeps a state file per container.
// Then: the RSS of one grove-shim per running container, and the RSS of a real
// grove-agent (with a real grove-server) running an App of 100 instances.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GroveClient, type App } from "@grove/api";
import { GROVE_RUNTIME_PATH, NativeRuntime, loadNativeBinding } from "@grove/agent";
import { loadBenchBinding, type BenchExit } from "./lib-bench-native";
import type { BenchReport } from "./run";
import { summarize } from "./lib-stats";
import { startAgent, startServer, waitFor } from "../src/harness/processes";

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const WARMUP = 5;
const AGENT_CONTAINERS = Number(process.env.BENCH_AGENT_CONTAINERS ?? 100);

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

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? NaN);
}

const ms = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1e6;

export async function run(): Promise<BenchReport> {
  const repo = repoRoot();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "grove-bench-start-"));
  const bundle = path.join(tmp, "bundle");
  const rootfs = path.join(bundle, "rootfs");
  fs.mkdirSync(bundle);
  execFileSync(path.join(repo, "deploy", "make-rootfs.sh"), [rootfs]);
  const parent = `grove-bench-${process.pid}`;
  const cliParent = `grove-bench-cli-${process.pid}`;
  const runcParent = `grove-bench-runc-${process.pid}`;
  const cliRoot = path.join(tmp, "cli-state");
  const native = loadNativeBinding();
  const bench = loadBenchBinding();
  const mode = native.detectCgroupMode("/sys/fs/cgroup");
  const rt = new NativeRuntime({
    cgroupParent: parent,
    stateDir: path.join(tmp, "rt-state"),
    handlers: { runc: "/usr/sbin/runc", "grove-runtime": GROVE_RUNTIME_PATH },
  });
  const resources = { cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: 64 };

  execFileSync("runc", ["spec"], { cwd: bundle });
  const spec = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8"));
  spec.process.terminal = false;
  spec.process.args = ["/bin/true"];
  spec.root = { path: "rootfs", readonly: false };
  spec.hostname = "bench";
  spec.linux.resources = {
    ...spec.linux.resources,
    memory: { limit: resources.memoryBytes },
    cpu: { quota: 50000, period: 100000, shares: 512 },
    pids: { limit: resources.pids },
  };
  const runcVersion = execFileSync("runc", ["--version"]).toString().split("\n")[0] ?? "runc";
  // The static program itself, as the grove-runtime handler and a release run it: the repo's
  // agent/bin/grove-runtime is a shell wrapper that finds it (sh, readlink, dirname: about 2.4 ms
  // a call here), work runc's row does not do.
  const cli = GROVE_RUNTIME_PATH;
  const cliNode = path.join(repo, "agent", "bin", "grove-runtime-node.js");

  const addonOnce = async (id: string): Promise<number> => {
    const t = process.hrtime.bigint();
    await native.setupCgroup(mode, "/sys/fs/cgroup", parent, id, resources);
    const exited = new Promise<BenchExit>((resolve) => {
      void bench
        .start(
          {
            id,
            rootfs,
            argv: ["/bin/true"],
            env: [],
            cwd: "/",
            hostname: "bench",
            logPath: path.join(tmp, "addon.log"),
            cgroupMode: mode,
            cgroupRoot: "/sys/fs/cgroup",
            cgroupParent: parent,
            netnsPath: null,
            mounts: null,
          },
          resolve,
        )
        .then((s) => bench.closeFd(s.pidfd));
    });
    const exit = await exited;
    await native.removeCgroup(mode, "/sys/fs/cgroup", parent, id);
    if (exit.exitCode !== 0) throw new Error(`addon container exited ${exit.exitCode}`);
    return ms(t);
  };
  const shimOnce = async (
    id: string,
    seccomp: "unconfined" | "default" = "unconfined",
    runtimeClass?: string,
  ): Promise<number> => {
    const t = process.hrtime.bigint();
    const h = await rt.start({
      id,
      rootfs,
      command: ["/bin/true"],
      env: {},
      hostname: "bench",
      resources,
      logPath: path.join(tmp, "shim.log"),
      seccomp,
      ...(runtimeClass !== undefined ? { runtimeClass } : {}),
    });
    const exit = await h.exited;
    await rt.remove(id);
    if (exit.exitCode !== 0) throw new Error(`shim container exited ${exit.exitCode}`);
    return ms(t);
  };
  const cliOnce = (id: string): number => {
    const t = process.hrtime.bigint();
    const r = spawnSync(cli, ["--root", cliRoot, "--cgroup-parent", cliParent, "run", "--bundle", bundle, id]);
    const elapsed = ms(t);
    if (r.status !== 0) throw new Error(`grove-runtime run exited ${r.status}: ${r.stderr.toString()}`);
    return elapsed;
  };
  const cliNodeOnce = (id: string): number => {
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [
      cliNode,
      "--root",
      cliRoot,
      "--cgroup-parent",
      cliParent,
      "run",
      "--bundle",
      bundle,
      id,
    ]);
    const elapsed = ms(t);
    if (r.status !== 0) throw new Error(`grove-runtime run exited ${r.status}: ${r.stderr.toString()}`);
    return elapsed;
  };
  const runcStderr = new Map<string, number>();
  let runcRetries = 0;
  const runcOnce = (id: string): number => {
    spec.linux.cgroupsPath = `/${runcParent}/${id}`;
    fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(spec));
    // A failed run is retried (up to 3 times) and counted; the time reported
    // is the successful run's. Every stderr line is kept, counted by text.
    for (let attempt = 0; ; attempt++) {
      const t = process.hrtime.bigint();
      const r = spawnSync("runc", ["run", "--bundle", bundle, `grove-bench-${process.pid}-${id}-${attempt}`], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      const elapsed = ms(t);
      for (const line of r.stderr
        .toString()
        .split("\n")
        .filter((l) => l.trim() !== "")) {
        runcStderr.set(line, (runcStderr.get(line) ?? 0) + 1);
      }
      if (r.status === 0) return elapsed;
      runcRetries++;
      if (attempt >= 2) throw new Error(`runc run failed 3 times: ${r.stderr.toString().trim()}`);
    }
  };
  const floorOnce = (): number => {
    const t = process.hrtime.bigint();
    const r = spawnSync("unshare", ["--pid", "--mount", "--fork", "/bin/true"]);
    const elapsed = ms(t);
    if (r.status !== 0) throw new Error(`unshare exited ${r.status}: ${r.stderr.toString()}`);
    return elapsed;
  };

  const samples = {
    addon: [] as number[],
    shim: [] as number[],
    cli: [] as number[],
    runc: [] as number[],
    cliNode: [] as number[],
    floor: [] as number[],
    shimSeccomp: [] as number[],
    handlerRunc: [] as number[],
    handlerGrove: [] as number[],
  };
  let shimRss: number[] = [];
  let agentRssMiB = NaN;
  try {
    for (let i = 0; i < SAMPLES + WARMUP; i++) {
      const id = `b${i}`;
      const a = await addonOnce(id);
      const s = await shimOnce(id);
      const r = runcOnce(id);
      fs.writeFileSync(
        path.join(bundle, "config.json"),
        JSON.stringify({ ...spec, linux: { ...spec.linux, cgroupsPath: undefined } }),
      );
      const c = cliOnce(id);
      const f = floorOnce();
      const sd = await shimOnce(`d${id}`, "default");
      const hr = await shimOnce(`h${id}`, "default", "runc");
      const hg = await shimOnce(`g${id}`, "default", "grove-runtime");
      // The Node command line is slow; a quarter of the samples are plenty.
      if (i >= WARMUP && samples.cliNode.length < Math.ceil(SAMPLES / 4)) samples.cliNode.push(cliNodeOnce(`n${id}`));
      if (i >= WARMUP) {
        samples.addon.push(a);
        samples.shim.push(s);
        samples.cli.push(c);
        samples.runc.push(r);
        samples.floor.push(f);
        samples.shimSeccomp.push(sd);
        samples.handlerRunc.push(hr);
        samples.handlerGrove.push(hg);
      }
    }

    // One shim per running container: its resident set.
    const ids = Array.from({ length: 10 }, (_, i) => `rss${i}`);
    for (const id of ids) {
      await rt.start({
        id,
        rootfs,
        command: ["/bin/sleep", "600"],
        env: {},
        hostname: "rss",
        resources,
        logPath: path.join(tmp, "rss.log"),
      });
    }
    shimRss = ids.map((id) => {
      const st = JSON.parse(fs.readFileSync(path.join(rt.containerDir(id), "state"), "utf8")) as { shimPid: number };
      return rssKiB(st.shimPid);
    });
    for (const id of ids) {
      await rt.stop(id, 0);
      await rt.remove(id);
    }

    if (AGENT_CONTAINERS > 0) {
      try {
        agentRssMiB = await agentRss(repo, tmp);
      } catch (err) {
        // Reported as NaN with the reason rather than losing every other figure.
        console.error(`agent RSS not measured: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
      }
    }
  } finally {
    await rt.removeParentCgroup().catch(() => undefined);
    for (const p of [runcParent, cliParent, parent]) {
      try {
        rmCgroups(p);
      } catch {
        /* nothing left */
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  const a = summarize(samples.addon);
  const s = summarize(samples.shim);
  const c = summarize(samples.cli);
  const r = summarize(samples.runc);
  const cn = summarize(samples.cliNode);
  const fl = summarize(samples.floor);
  const sd = summarize(samples.shimSeccomp);
  const hr = summarize(samples.handlerRunc);
  const hg = summarize(samples.handlerGrove);
  const shimRssKiB = shimRss.reduce((x, y) => x + y, 0) / Math.max(1, shimRss.length);
  const row = (name: string, x: typeof a) => ({
    name,
    p50_ms: x.p50,
    p99_ms: x.p99,
    mean_ms: x.mean,
    ratio_to_runc_p50: x.p50 / r.p50,
  });
  return {
    title:
      `create cgroup+namespaces, exec /bin/true, wait, clean up; ${SAMPLES} samples each after ${WARMUP} warm-up, ` +
      `interleaved; vs ${runcVersion}. Differences: runc and (2) mount /sys/fs/cgroup, the other Grove rows do not; ` +
      `runc writes a state file per container; the addon row (1) and row (6) install Grove's seccomp filter, the others none`,
    rows: [
      row("(H) NativeRuntime via grove-shim (the agent's path)", s),
      row("(1) addon, warm node (Grove's default seccomp filter)", a),
      row("(2) grove-runtime run", c),
      row("(3) runc run", r),
      row("(4) floor: unshare --pid --mount --fork /bin/true", fl),
      row("(5) grove-runtime-node run", cn),
      row("(6) grove-shim with Grove's default seccomp filter", sd),
      row("(7) (6) through the runc runtime handler", hr),
      row("(8) (6) through the grove-runtime runtime handler", hg),
      { name: "grove-shim RSS per container (KiB)", p50_ms: shimRssKiB },
      { name: `grove-agent RSS, ${AGENT_CONTAINERS} containers (MiB)`, p50_ms: agentRssMiB },
    ],
    results: {
      samples: SAMPLES,
      runc_version: runcVersion,
      shim_vs_runc_median_ratio: s.p50 / r.p50,
      floor_ms: fl.p50,
      runc_median_ms: r.p50,
      runc_p99_ms: r.p99,
      runc_retries: runcRetries,
      runc_stderr_lines: [...runcStderr.values()].reduce((x, y) => x + y, 0),
      runc_stderr: JSON.stringify(Object.fromEntries(runcStderr)),
      shim_default_seccomp_median_ms: sd.p50,
      handler_runc_median_ms: hr.p50,
      handler_runc_vs_native_ratio: hr.p50 / sd.p50,
      handler_grove_runtime_median_ms: hg.p50,
      handler_grove_runtime_vs_native_ratio: hg.p50 / sd.p50,
      addon_median_ms: a.p50,
      addon_p99_ms: a.p99,
      cli_median_ms: c.p50,
      cli_p99_ms: c.p99,
      cli_node_median_ms: cn.p50,
      cli_node_vs_runc_median_ratio: cn.p50 / r.p50,
      shim_runtime_median_ms: s.p50,
      shim_runtime_p99_ms: s.p99,
      addon_vs_runc_median_ratio: a.p50 / r.p50,
      cli_vs_runc_median_ratio: c.p50 / r.p50,
      shim_rss_kib: shimRssKiB,
      agent_rss_mib_100_containers: agentRssMiB,
    },
  };
}

/** A real grove-server and grove-agent; an App of AGENT_CONTAINERS instances; the agent's RSS once all run. */
async function agentRss(repo: string, tmp: string): Promise<number> {
  const dir = path.join(tmp, "agent-rss");
  fs.mkdirSync(path.join(dir, "rootfs"), { recursive: true });
  execFileSync(path.join(repo, "deploy", "make-rootfs.sh"), [path.join(dir, "rootfs", "busybox")]);
  const server = await startServer({ dataDir: path.join(dir, "server") });
  const cgroupParent = `grove-bench-agent-${process.pid}`;
  let agent;
  try {
    agent = await startAgent({
      server,
      nodeName: "bench-node",
      stateDir: path.join(dir, "agent"),
      rootfsDir: path.join(dir, "rootfs"),
      cgroupParent,
    });
    const client = new GroveClient({ server: server.url, token: server.adminToken });
    await waitFor("the node to be Ready", async () => {
      const n = await client.get("Node", "bench-node");
      return n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    });
    const app: App = {
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "rss", namespace: "default" },
      spec: {
        rootfs: "busybox",
        command: ["/bin/sleep", "3600"],
        instances: AGENT_CONTAINERS,
        resources: { cpu: "10m", memory: "8Mi", pids: 8 },
        stopGracePeriodSeconds: 0,
      },
    };
    await client.apply(app);
    const running = async () =>
      (await client.list("Instance", { namespace: "default" })).items.filter((i) => i.status?.state === "Running")
        .length;
    await waitFor(`${AGENT_CONTAINERS} instances Running`, async () => (await running()) === AGENT_CONTAINERS, 300_000);
    // Let the agent settle (GC) before reading its resident set.
    await new Promise((r) => setTimeout(r, 3000));
    const rss = rssKiB(agent.pid) / 1024;
    await client.delete("App", "rss", "default");
    await waitFor(
      "the instances to be gone",
      async () => (await client.list("Instance", { namespace: "default" })).items.length === 0,
      300_000,
    );
    return rss;
  } finally {
    await agent?.stop(60_000);
    await server.stop();
    // The agent removes its cgroups on a clean stop; say so when it did not.
    const left = ["memory", "cpu", "pids", "cpuacct", "devices", "freezer"].filter((c) =>
      fs.existsSync(path.join("/sys/fs/cgroup", c, cgroupParent)),
    );
    if (left.length > 0) {
      console.warn(`grove-agent left cgroups under ${cgroupParent} (${left.join(", ")}); removing them`);
      rmCgroups(cgroupParent);
    }
  }
}
