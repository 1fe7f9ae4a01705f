// Suite-level leak check: what integration tests may create on the host
// (cgroups under the grove parents in every hierarchy, mounts, network
// namespaces, network links, iptables rules and chains in every table,
// processes running Grove's binaries, /run/grove state and test temporary
// directories) is snapshotted before the suite and compared after it, with
// the host's own hostname (a runtime that sets a hostname outside a private
// UTS namespace renames the machine).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
// The run id's one source, compiled (the global setup checks the build is fresh before it loads this file).
const { runId, RUN_ID_ENV } = require("../dist/src/harness/run-id");

// Every cgroup hierarchy on the machine: each v1 controller mount (memory,
// cpu, pids, cpuacct, devices, freezer, …) and the v2 root or unified mount.
function cgroupRoots() {
  const base = "/sys/fs/cgroup";
  const roots = [base];
  try {
    for (const e of fs.readdirSync(base, { withFileTypes: true })) {
      const dir = path.join(base, e.name);
      if (e.isDirectory() && fs.existsSync(path.join(dir, "cgroup.procs"))) roots.push(dir);
    }
  } catch {
    /* no cgroupfs */
  }
  return roots;
}

function groveCgroups() {
  const out = [];
  for (const root of cgroupRoots()) {
    let entries = [];
    try {
      entries = fs.readdirSync(root, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory() || !e.name.startsWith("grove")) continue;
      const dir = path.join(root, e.name);
      out.push(dir);
      try {
        for (const c of fs.readdirSync(dir, { withFileTypes: true }))
          if (c.isDirectory()) out.push(path.join(dir, c.name));
      } catch {
        /* raced with removal */
      }
    }
  }
  return out.sort();
}

function groveMounts() {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p) => p && /grove/.test(p))
    .sort();
}

function netns() {
  try {
    return fs
      .readdirSync("/run/netns")
      .filter((n) => n.startsWith("grove"))
      .sort();
  } catch {
    return [];
  }
}

// Tests name what they create on the host after the run id
// (grove-it-<run>w<worker>, grove-test-<run>w<worker>, …; harness/run-id.ts). In CI
// every grove* resource counts; on a developer machine only this run's, from
// every worker, so that two runs side by side do not accuse each other.
function mine(list) {
  if (process.env.CI) return list;
  const id = runId();
  return list.filter((x) => x.includes(id));
}

function run(cmd, args) {
  try {
    return require("node:child_process").execFileSync(cmd, args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 10_000,
    });
  } catch {
    return "";
  }
}

// Network links in the machine's namespace (bridges, veths, dummies): every
// one a test made must be gone. `lo` and links that were there before are
// not reported (diff against the snapshot).
function links() {
  return run("ip", ["-o", "link", "show"])
    .split("\n")
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
    .filter((n) => n && n !== "lo")
    .sort();
}

// iptables rules and chains of every table, as iptables-save prints them
// without counters: a rule or chain a test (or the agent it ran) added and
// did not remove shows as a new line.
function iptablesRules() {
  const out = [];
  for (const table of ["filter", "nat", "raw", "mangle"]) {
    for (const line of run("iptables-save", ["-t", table]).split("\n")) {
      if (!line || line.startsWith("#") || line === "COMMIT" || line.startsWith("*")) continue;
      // ":CHAIN POLICY [0:0]" -> "table :CHAIN"; rules as they are.
      out.push(`${table} ${line.startsWith(":") ? line.split(" ")[0] : line}`);
    }
  }
  return [...new Set(out)].sort();
}

// Processes that run Grove's binaries (grove-server, grove-agent, grove-shim,
// grove-runtime from any checkout) or an etcd/registry a test started (their
// data under a grove temp dir): left running after the suite, they are leaks.
function groveProcesses() {
  const out = [];
  let pids = [];
  try {
    pids = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    let cmdline;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
    } catch {
      continue;
    }
    if (!cmdline || Number(pid) === process.pid) continue;
    const grove =
      /(grove-server|grove-agent|grove-shim|grove-runtime|control-plane\/dist\/main|agent\/dist\/main)/.test(cmdline);
    const testDaemon =
      /^(\S*\/)?(etcd|registry|docker-registry)\s/.test(cmdline) && /\/(tmp|run)\/\S*grove/.test(cmdline);
    if (!grove && !testDaemon) continue;
    // Which run started it: the run id every process a test starts inherits
    // (a shim's command line is only its container id); "-" when unreadable.
    let run = "-";
    try {
      const env = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
      run = env.find((e) => e.startsWith(`${RUN_ID_ENV}=`))?.slice(RUN_ID_ENV.length + 1) ?? "-";
    } catch {
      /* exited meanwhile */
    }
    let exe = "";
    try {
      exe = fs.readlinkSync(`/proc/${pid}/exe`);
    } catch {
      /* exited meanwhile, or a kernel thread */
    }
    out.push(`${pid} run=${run} ${exe} ${cmdline.slice(0, 160)}`);
  }
  return out.sort();
}

// Agent runtime state (/run/grove/<cgroup parent>) and the temporary
// directories tests make (tempDir(), mkdtemp with a grove or test prefix).
function stateDirs() {
  const out = [];
  for (const dir of ["/run/grove"]) {
    try {
      for (const e of fs.readdirSync(dir)) out.push(path.join(dir, e));
    } catch {
      /* absent */
    }
  }
  const tmp = require("node:os").tmpdir();
  const id = runId();
  try {
    for (const e of fs.readdirSync(tmp))
      if ((/^(grove|store-|embedded-etcd-test|large-list)/.test(e) || e.includes(id)) && !e.startsWith("grove-leaks-"))
        out.push(path.join(tmp, e));
  } catch {
    /* no tmp */
  }
  return out.sort();
}

// Processes are told apart by the run id in their environment (or in their
// command line: data directories carry it); one that carries no run id at
// all (a binary that clears its environment) counts when it runs from this
// checkout.
function mineProcesses(list) {
  if (process.env.CI) return list;
  const id = runId();
  const repo = path.resolve(__dirname, "../..");
  return list.filter((x) => {
    const run = /^\d+ run=(\S+) /.exec(x)?.[1];
    if (run === id || x.includes(id)) return true;
    return run === "-" && x.includes(`${repo}/`);
  });
}

function snapshot() {
  return {
    cgroups: mine(groveCgroups()),
    mounts: mine(groveMounts()),
    netns: mine(netns()),
    links: mine(links()),
    iptables: mine(iptablesRules()),
    processes: mineProcesses(groveProcesses()),
    state: mine(stateDirs()),
    hostname: [require("node:os").hostname()],
  };
}

function diff(before, after) {
  const problems = [];
  for (const k of Object.keys(after)) {
    if (k === "hostname") {
      if (before.hostname && before.hostname[0] !== after.hostname[0])
        problems.push(`hostname: the host's hostname changed from "${before.hostname[0]}" to "${after.hostname[0]}"`);
      continue;
    }
    const was = new Set(before[k]);
    const added = after[k].filter((x) => !was.has(x));
    if (added.length) problems.push(`${k}: ${added.join(", ")}`);
  }
  return problems;
}

/** Where the global setup keeps the snapshot for the teardown (one per run). */
function snapshotFile() {
  return path.join(require("node:os").tmpdir(), `grove-leaks-${runId()}.json`);
}

module.exports = { snapshot, diff, snapshotFile };
