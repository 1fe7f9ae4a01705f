#!/usr/bin/env node
// Regenerates the TypeScript types for grove.proto with proto-loader-gen-types.
// With --check, generates into a temporary directory and fails when the
// committed files under src/generated differ (CI runs this).
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const committed = path.join(root, "src", "generated");
const check = process.argv.includes("--check");
const out = check ? fs.mkdtempSync(path.join(os.tmpdir(), "grove-proto-")) : committed;
const bin = require.resolve("@grpc/proto-loader/build/bin/proto-loader-gen-types.js");

if (!check) fs.rmSync(committed, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [
    bin,
    "--longs=String",
    "--enums=String",
    "--defaults",
    "--oneofs",
    "--grpcLib=@grpc/grpc-js",
    "--outDir",
    out,
    "grove.proto",
  ],
  { cwd: root, stdio: "inherit" },
);

function list(dir, base = dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? list(p, base) : [path.relative(base, p)];
  });
}

if (check) {
  const want = list(out).sort();
  const have = fs.existsSync(committed) ? list(committed).sort() : [];
  const diffs = [];
  if (want.join("\n") !== have.join("\n")) diffs.push(`file list differs: generated [${want}] committed [${have}]`);
  for (const f of want) {
    const a = fs.readFileSync(path.join(out, f), "utf8");
    const b = fs.existsSync(path.join(committed, f)) ? fs.readFileSync(path.join(committed, f), "utf8") : "";
    if (a !== b) diffs.push(`${f} differs from a fresh generation`);
  }
  fs.rmSync(out, { recursive: true, force: true });
  if (diffs.length) {
    console.error("proto: committed generated code is stale; run `npm run proto:gen`:\n  " + diffs.join("\n  "));
    process.exit(1);
  }
  console.log("proto: generated code is up to date");
}
