// An OCI bundle without an RLIMIT_NOFILE gets Grove's default (soft 1024,
// hard 524288 or the runtime's own hard limit when lower), as an agent's
// container does (docs/runtime.md, "RLIMIT_NOFILE"): from the one OCI front
// end, so the C grove-runtime and the TypeScript one agree. Without it a
// container inherited the caller's limits (Node raises its soft limit to the
// hard one, so a `grove-runtime run` from Node gave the container e.g. 524288).
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { RUN_TAG, tempDir } from "./harness/run-id";

const REPO = path.resolve(__dirname, "../..");
const IMPLEMENTATIONS: [string, string[]][] = [
  ["C", [path.join(REPO, "agent", "bin", "grove-runtime")]],
  ["TypeScript", [process.execPath, path.join(REPO, "agent", "bin", "grove-runtime-node.js")]],
];
const PARENT = `grove-nofile-${RUN_TAG}`;

let tmp: string;
let bundle: string;

/** The hard limit the runtime (a child of this process) has: the default's ceiling. */
function ownHardNofile(): number {
  const m = /^Max open files\s+\S+\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"));
  return Math.min(524288, Number(m?.[1] ?? 524288));
}

beforeAll(() => {
  tmp = tempDir("grove-nofile");
  bundle = path.join(tmp, "bundle");
  fs.mkdirSync(bundle);
  execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [path.join(bundle, "rootfs")], { stdio: "pipe" });
  execFileSync("runc", ["spec"], { cwd: bundle });
});

afterAll(() => {
  for (const c of ["memory", "cpu", "pids", "cpuacct", "devices"]) {
    const dir = path.join("/sys/fs/cgroup", c, PARENT);
    if (fs.existsSync(dir)) fs.rmdirSync(dir);
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function run(cli: string[], rlimits: unknown[] | undefined): { code: number; out: string; err: string } {
  const config = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as {
    process: { terminal: boolean; args: string[]; rlimits?: unknown[] };
  };
  config.process.terminal = false;
  config.process.args = ["/bin/sh", "-c", "ulimit -n; ulimit -Hn"];
  if (rlimits === undefined) delete config.process.rlimits;
  else config.process.rlimits = rlimits;
  fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(config));
  const root = path.join(tmp, "state");
  const r = spawnSync(
    cli[0]!,
    [...cli.slice(1), "--root", root, "--cgroup-parent", PARENT, "run", "--bundle", bundle, "n"],
    {
      encoding: "utf8",
      timeout: 60_000,
    },
  );
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe.each(IMPLEMENTATIONS)("grove-runtime %s: RLIMIT_NOFILE", (_name, cli) => {
  it("a bundle without one gets soft 1024 and Grove's hard limit", () => {
    expect(run(cli, undefined)).toEqual({ code: 0, out: `1024\n${ownHardNofile()}\n`, err: "" });
  });

  it("a bundle with one gets it as given", () => {
    const given = [{ type: "RLIMIT_NOFILE", soft: 300, hard: 400 }];
    expect(run(cli, given)).toEqual({ code: 0, out: "300\n400\n", err: "" });
  });
});
