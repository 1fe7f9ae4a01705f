"use strict";
// Fails the run when the integration suite left behind any of what leaks.js
// looks at (cgroups, mounts, namespaces, links, iptables rules, processes,
// state and temporary directories, the hostname).
const fs = require("node:fs");
const { snapshot, diff, snapshotFile } = require("./leaks");

module.exports = async () => {
  const file = snapshotFile();
  const before = JSON.parse(fs.readFileSync(file, "utf8"));
  const problems = diff(before, snapshot());
  fs.rmSync(file, { force: true });
  if (problems.length) {
    throw new Error(`integration tests leaked host resources:\n  ${problems.join("\n  ")}`);
  }
};
