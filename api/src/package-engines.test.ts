// The root package.json's "engines" must say what the installed dependencies need: every
// version our range allows (the lowest of each of its branches, and the Node running the test)
// must satisfy every package's own engines.node in package-lock.json.
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";

// semver (installed with npm's and fastify's dependencies) has no types here; the part used:
interface Semver {
  satisfies(version: string, range: string): boolean;
  validRange(range: string): string | null;
  Range: new (range: string) => { set: { operator: string; semver: { version: string } }[][] };
}
const semver = createRequire(__filename)("semver") as Semver;

const ROOT = path.resolve(__dirname, "..", "..");

// Packages whose declared range is stricter than what they need, and why we run them anyway.
// cookie 2 and content-disposition 3 (required by fastify's light-my-request and @fastify/static)
// declare node >=22 but are plain ES modules loaded with require(): that works from Node 20.19
// on (require(esm) unflagged), which is why our range starts at 20.19 and not lower.
const OVERDECLARED: Record<string, string> = {
  cookie: "^20.19.0 || >=22.12.0",
  "content-disposition": "^20.19.0 || >=22.12.0",
};

interface LockPackage {
  version?: string;
  engines?: { node?: string } | string[];
}

function lowestOfEachBranch(range: string): string[] {
  return new semver.Range(range).set.map((comparators) => {
    const lower = comparators.find((c) => c.operator === ">=" || c.operator === "");
    if (!lower) throw new Error(`engines range ${range} has a branch without a lower bound`);
    return lower.semver.version;
  });
}

describe("root package.json engines", () => {
  const root = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { engines: { node: string } };
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockPackage>;
  };
  const ours = root.engines.node;
  const versions = [...lowestOfEachBranch(ours), process.versions.node];

  it("is a valid range that starts at Node 20.19 at the lowest and allows the Node running this test", () => {
    expect(semver.validRange(ours)).not.toBeNull();
    expect(semver.satisfies("20.18.9", ours)).toBe(false);
    expect(semver.satisfies(process.versions.node, ours)).toBe(true);
  });

  it("satisfies every locked package's engines.node", () => {
    const unmet: string[] = [];
    for (const [where, pkg] of Object.entries(lock.packages)) {
      const engines = pkg.engines;
      const declared = engines && !Array.isArray(engines) ? engines.node : undefined;
      if (!where || !declared) continue;
      const name = where.slice(where.lastIndexOf("node_modules/") + "node_modules/".length);
      const needed = OVERDECLARED[name] ?? declared;
      for (const v of versions) {
        if (!semver.satisfies(v, needed)) unmet.push(`${name}@${pkg.version} wants node ${needed}, ${v} is allowed`);
      }
    }
    expect(unmet).toEqual([]);
  });
});
