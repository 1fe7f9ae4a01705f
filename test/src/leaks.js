// Suite-level leak check: what integration tests may create on the host
// (cgroups under the grove parents, mounts, network namespaces) is
// snapshotted before the suite and compared after it, with the host's own
// hostname (a runtime that sets a hostname outside a private UTS namespace
// renames the machine).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

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

// Tests name what they create on the host after the jest process
// (grove-it-<pid>, grove-test-<pid>, …). In CI every grove* resource counts;
// on a developer machine only this run's, so that two runs side by side do not
// accuse each other.
function mine(list) {
  if (process.env.CI) return list;
  return list.filter((x) => x.includes(String(process.pid)));
}

function snapshot() {
  return {
    cgroups: mine(groveCgroups()),
    mounts: mine(groveMounts()),
    netns: mine(netns()),
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

module.exports = {
  snapshot,
  diff,
  SNAPSHOT_FILE: path.join(require("node:os").tmpdir(), `grove-leaks-${process.pid}.json`),
};
