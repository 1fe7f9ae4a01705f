// Integration tests run the built binaries (grove-server, grove-agent,
// grove-shim, the addon), not the sources ts-jest compiles. A run against a
// stale build would test old code and could pass; so the suite refuses to
// start when any package's sources (or the native C sources) are newer than
// its last build, naming what to run.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const REPO = path.resolve(__dirname, "../..");
const PACKAGES = ["common", "proto", "api", "control-plane", "agent", "sim", "test"];

function newestUnder(dir, accept) {
  let newest = { mtimeMs: 0, file: undefined };
  const walk = (d) => {
    let entries = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (accept(e.name)) {
        const m = fs.statSync(p).mtimeMs;
        if (m > newest.mtimeMs) newest = { mtimeMs: m, file: p };
      }
    }
  };
  walk(dir);
  return newest;
}

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Problems as "what is stale: why"; empty when every build output is newer than its sources. */
function staleBuilds() {
  const problems = [];
  const isSource = (n) => n.endsWith(".ts") && !n.endsWith(".test.ts") && !n.endsWith(".d.ts");
  for (const pkg of PACKAGES) {
    const info = path.join(REPO, pkg, "dist", ".tsbuildinfo");
    const built = mtime(info);
    const src = newestUnder(path.join(REPO, pkg, "src"), isSource);
    if (built === undefined) problems.push(`${pkg}: never built (${path.relative(REPO, info)} missing)`);
    else if (src.mtimeMs > built)
      problems.push(`${pkg}: ${path.relative(REPO, src.file)} is newer than the last build`);
  }
  // One make run builds the addon, grove-shim and grove-runtime, each from
  // the C files it uses (json.c goes into grove-runtime only): the native
  // build is fresh when a build ran after the newest C source changed.
  const release = path.join(REPO, "agent/native/build/Release");
  const outputs = ["grove_native.node", "grove-shim", "grove-runtime"].map((f) => path.join(release, f));
  const missing = outputs.filter((f) => mtime(f) === undefined);
  // The C sources and the seccomp profile with its compiler (compiled into the addon and grove-shim).
  const cSrc = [
    newestUnder(path.join(REPO, "agent/native/src"), (n) => /\.(c|h|cc)$/.test(n)),
    newestUnder(path.join(REPO, "agent/native/seccomp"), (n) => /\.(c|json)$/.test(n)),
  ].reduce((a, b) => (b.mtimeMs > a.mtimeMs ? b : a));
  const lastBuild = Math.max(0, ...outputs.map((f) => mtime(f) ?? 0));
  if (missing.length)
    problems.push(`native build: never built (${missing.map((f) => path.relative(REPO, f)).join(", ")} missing)`);
  else if (cSrc.mtimeMs > lastBuild)
    problems.push(`native build: ${path.relative(REPO, cSrc.file)} is newer than the last native build`);
  return problems;
}

module.exports = { staleBuilds };
