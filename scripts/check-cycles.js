// Fails when TypeScript sources import each other in a cycle (issue 12:
// "no import cycles, enforced in npm test"). A cycle means a shared concept
// lives in one of the files that need it: move it to a third file instead.
//
// It reads the sources (not dist/), so it runs before the build. Every import
// counts, type-only ones too (they still tie the two files together), and so
// do `export ... from` and dynamic import(). Imports of @grove/<package>
// resolve to that package's src/index.ts, so a cycle between packages shows
// as well. Usage: node scripts/check-cycles.js [--list]
const fs = require("node:fs");
const path = require("node:path");
const ts = require("typescript");

const root = path.resolve(__dirname, "..");
const PACKAGES = ["common", "proto", "api", "control-plane", "agent", "sim", "test"];
const SOURCE_DIRS = { test: ["src", "bench"] };
const SKIP = /(^|\/)(node_modules|dist|build|generated)(\/|$)/;

// Cycles known today that other changes are removing, as "a.ts -> b.ts" of
// the sorted members. Each entry is reported but does not fail the check;
// delete it once the cycle is gone (the check then keeps it gone).
// Cycles known and not yet broken ("a.ts -> b.ts"); empty since issue 12.
const ALLOWED = new Set([]);

function sourceFiles() {
  const out = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (SKIP.test(path.relative(root, p))) continue;
      if (entry.isDirectory()) walk(p);
      else if (/\.ts$/.test(entry.name) && !/\.d\.ts$/.test(entry.name)) out.push(p);
    }
  };
  for (const pkg of PACKAGES) {
    for (const sub of SOURCE_DIRS[pkg] ?? ["src"]) {
      const dir = path.join(root, pkg, sub);
      if (fs.existsSync(dir)) walk(dir);
    }
  }
  return out;
}

function resolveFile(base) {
  for (const candidate of [base, `${base}.ts`, path.join(base, "index.ts")]) {
    if (candidate.endsWith(".ts") && fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
  }
  if (base.endsWith(".js")) return resolveFile(base.slice(0, -3));
  return undefined;
}

function resolveImport(from, spec) {
  if (spec.startsWith(".")) return resolveFile(path.resolve(path.dirname(from), spec));
  const m = /^@grove\/([^/]+)(?:\/(.+))?$/.exec(spec);
  if (m && PACKAGES.includes(m[1])) return resolveFile(path.join(root, m[1], "src", m[2] ?? "index"));
  return undefined; // a library: it cannot import us back
}

function importGraph(files) {
  const graph = new Map();
  for (const file of files) {
    const info = ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true);
    const deps = new Set();
    for (const ref of info.importedFiles) {
      const target = resolveImport(file, ref.fileName);
      if (target && target !== file) deps.add(target);
    }
    graph.set(file, deps);
  }
  return graph;
}

// Tarjan's strongly connected components, iterative (no recursion limit).
function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const out = [];
  for (const start of graph.keys()) {
    if (idx.has(start)) continue;
    const work = [[start, [...(graph.get(start) ?? [])], 0]];
    idx.set(start, index);
    low.set(start, index++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [v, deps] = frame;
      if (frame[2] < deps.length) {
        const w = deps[frame[2]++];
        if (!idx.has(w)) {
          idx.set(w, index);
          low.set(w, index++);
          stack.push(w);
          onStack.add(w);
          work.push([w, [...(graph.get(w) ?? [])], 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(v)));
      }
      if (low.get(v) === idx.get(v)) {
        const component = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        if (component.length > 1) out.push(component);
      }
    }
  }
  return out;
}

/** One concrete loop through the component, for the message. */
function loopThrough(graph, component) {
  const members = new Set(component);
  const start = [...component].sort()[0];
  const prev = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (!members.has(w)) continue;
      if (w === start) {
        const loop = [start];
        for (let x = v; x !== start; x = prev.get(x)) loop.splice(1, 0, x);
        return [...loop, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return component;
}

function main() {
  const graph = importGraph(sourceFiles());
  const rel = (f) => path.relative(root, f);
  let failed = 0;
  for (const component of cycles(graph)) {
    const key = component.map(rel).sort().join(" -> ");
    const loop = loopThrough(graph, component).map(rel).join("\n    -> ");
    if (ALLOWED.has(key)) {
      console.log(`check-cycles: known cycle (allow-listed in scripts/check-cycles.js):\n    ${loop}`);
    } else {
      failed++;
      console.log(`check-cycles: import cycle:\n    ${loop}`);
    }
  }
  if (process.argv.includes("--list")) {
    for (const [file, deps] of graph) console.log(`${rel(file)}: ${[...deps].map(rel).join(" ")}`);
  }
  if (failed > 0) {
    console.error(`check-cycles: ${failed} import cycle(s); move what both files need into a third one`);
    process.exit(1);
  }
  console.log(`check-cycles: ${graph.size} files, no new import cycles`);
}

main();
