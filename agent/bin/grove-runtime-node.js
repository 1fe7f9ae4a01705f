#!/usr/bin/env node
"use strict";
// The OCI runtime command line (agent/src/oci/cli.ts). process.exit: the
// shim connections a command opened must not keep it alive.
require("../dist/oci/cli.js")
  .main(process.argv.slice(2))
  .then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`grove-runtime: ${err && err.stack ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
