"use strict";
const fs = require("node:fs");
const { staleBuilds } = require("./build-fresh");

module.exports = async () => {
  const stale = staleBuilds();
  if (stale.length) {
    throw new Error(
      `the integration tests run the built binaries, and the build is older than the sources:\n  ${stale.join("\n  ")}\n` +
        "run `npm run build` first (or `npm run test:integration`, which builds)",
    );
  }
  // Loaded once the build is known fresh: both use the compiled run-id module
  // (test/src/harness/run-id.ts, the one place run ids are drawn).
  const { runId } = require("../dist/src/harness/run-id");
  const { snapshot, snapshotFile } = require("./leaks");
  // One run id for every worker (they start after this and inherit the
  // environment) and every process the tests start: names on the host carry it.
  runId();
  fs.writeFileSync(snapshotFile(), JSON.stringify(snapshot()));
};
