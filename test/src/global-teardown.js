"use strict";
// Fails the run when the integration suite left cgroups, mounts or network
// namespaces behind.
const fs = require("node:fs");
const { snapshot, diff, SNAPSHOT_FILE } = require("./leaks");

module.exports = async () => {
  const before = JSON.parse(fs.readFileSync(SNAPSHOT_FILE, "utf8"));
  const problems = diff(before, snapshot());
  fs.rmSync(SNAPSHOT_FILE, { force: true });
  if (problems.length) {
    throw new Error(`integration tests leaked host resources:\n  ${problems.join("\n  ")}`);
  }
};
