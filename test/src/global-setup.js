"use strict";
const fs = require("node:fs");
const { snapshot, SNAPSHOT_FILE } = require("./leaks");
const { staleBuilds } = require("./build-fresh");

module.exports = async () => {
  const stale = staleBuilds();
  if (stale.length) {
    throw new Error(
      `the integration tests run the built binaries, and the build is older than the sources:\n  ${stale.join("\n  ")}\n` +
        "run `npm run build` first (or `npm run test:integration`, which builds)",
    );
  }
  fs.writeFileSync(SNAPSHOT_FILE, JSON.stringify(snapshot()));
};
