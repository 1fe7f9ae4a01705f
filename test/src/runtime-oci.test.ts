// grove-runtime, the OCI runtime command line, on a bundle made by `runc spec`:
// create/start/state/kill/delete/run as separate processes with state on
// disk in between, and the same bundle run by runc for comparison. Both
// implementations: the static C program (bin/grove-runtime) and the
// TypeScript one over NativeRuntime (bin/grove-runtime-node.js).
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { RUN_TAG, tempDir } from "./harness/run-id";

const REPO = path.resolve(__dirname, "../..");
const IMPLEMENTATIONS: [string, string[]][] = [
  ["C", [path.join(REPO, "agent", "bin", "grove-runtime")]],
  ["TypeScript", [process.execPath, path.join(REPO, "agent", "bin", "grove-runtime-node.js")]],
];
let cli: string[] = [];
const PARENT = `grove-oci-${RUN_TAG}`;

let tmp: string;
let root: string;
let bundle: string;
let base: Record<string, unknown> & { process: Record<string, unknown> };

/** stdio to files (name.out, name.err): the C program's `create` gives the container its
 * stdio, which a pipe would then wait on. */
function grove(...args: string[]): { code: number; out: string; err: string } {
  return groveTo("cmd", ...args);
}

function groveTo(name: string, ...args: string[]): { code: number; out: string; err: string } {
  const files = [path.join(tmp, `${name}.out`), path.join(tmp, `${name}.err`)];
  const fds = files.map((f) => fs.openSync(f, "w"));
  try {
    const r = spawnSync(cli[0]!, [...cli.slice(1), "--root", root, "--cgroup-parent", PARENT, ...args], {
      stdio: ["ignore", fds[0]!, fds[1]!],
      timeout: 60_000,
    });
    return { code: r.status ?? -1, out: fs.readFileSync(files[0]!, "utf8"), err: fs.readFileSync(files[1]!, "utf8") };
  } finally {
    fds.forEach((fd) => fs.closeSync(fd));
  }
}

function writeConfig(over: (c: typeof base) => void): void {
  const c = JSON.parse(JSON.stringify(base)) as typeof base;
  over(c);
  fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(c));
}

function state(id: string): { status: string; pid: number; bundle: string; id: string } {
  const r = grove("state", id);
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as { status: string; pid: number; bundle: string; id: string };
}

async function waitFor(cond: () => boolean, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(() => {
  tmp = tempDir("grove-oci");
  root = path.join(tmp, "state");
  bundle = path.join(tmp, "bundle");
  fs.mkdirSync(bundle);
  execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [path.join(bundle, "rootfs")], { stdio: "pipe" });
  execFileSync("runc", ["spec"], { cwd: bundle });
  base = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as typeof base;
  base.process.terminal = false;
  base.hostname = "oci-test";
});

afterAll(() => {
  for (const [, c] of IMPLEMENTATIONS) {
    cli = c;
    for (const id of ["life", "runme", "bad"]) grove("delete", "--force", id);
  }
  for (const c of ["memory", "cpu", "pids", "cpuacct", "devices"]) {
    expect(fs.existsSync(path.join("/sys/fs/cgroup", c, PARENT))).toBe(false);
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe.each(IMPLEMENTATIONS)("grove-runtime (OCI command line), %s", (name, command) => {
  beforeAll(() => {
    cli = command;
  });
  /** The container's output: create's stdout (the C program passes its stdio through), or
   * the log in its state directory (the TypeScript one). */
  const output = (): string =>
    fs.readFileSync(name === "C" ? path.join(tmp, "create.out") : path.join(root, "life", "output.log"), "utf8");

  it("create, state, start, kill, delete: separate processes, state on disk", async () => {
    writeConfig((c) => {
      c.process.args = [
        "/bin/sh",
        "-c",
        "trap 'echo got-term; exit 7' TERM; echo started; while true; do sleep 0.1; done",
      ];
    });
    const pidFile = path.join(tmp, "pid");
    expect(groveTo("create", "create", "--bundle", bundle, "--pid-file", pidFile, "life")).toMatchObject({ code: 0 });
    const created = state("life");
    expect(created).toMatchObject({ id: "life", status: "created", bundle });
    expect(Number(fs.readFileSync(pidFile, "utf8"))).toBe(created.pid);
    // Created: namespaces set up, the command not run yet.
    expect(fs.readlinkSync(`/proc/${created.pid}/ns/pid`)).not.toBe(fs.readlinkSync("/proc/self/ns/pid"));
    expect(output()).toBe("");

    expect(grove("start", "life")).toMatchObject({ code: 0 });
    expect(state("life")).toMatchObject({ status: "running", pid: created.pid });
    await waitFor(() => output().includes("started"));
    expect(grove("start", "life").code).not.toBe(0);

    const refused = grove("delete", "life");
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("container life is running; stop it or use --force");

    expect(grove("kill", "life", "TERM")).toMatchObject({ code: 0 });
    await waitFor(() => state("life").status === "stopped");
    expect(state("life").pid).toBe(0);
    expect(output()).toContain("got-term");
    expect(JSON.parse(fs.readFileSync(path.join(root, "life", "exit"), "utf8"))).toMatchObject({ exitCode: 7 });

    expect(grove("delete", "life")).toMatchObject({ code: 0 });
    expect(grove("state", "life")).toMatchObject({ code: 1, err: "grove-runtime: container life does not exist\n" });
    expect(fs.existsSync(path.join(root, "life"))).toBe(false);
  });

  it("run prints the output and exits with the container's status, like runc on the same bundle", () => {
    writeConfig((c) => {
      c.process.args = [
        "/bin/sh",
        "-c",
        "echo host=$(hostname) user=$(id -u) caps=$(grep CapEff /proc/self/status | cut -f2); exit 5",
      ];
    });
    const g = grove("run", "--bundle", bundle, "runme");
    const r = spawnSync("runc", ["run", "--bundle", bundle, `grove-oci-${RUN_TAG}-runc`], { encoding: "utf8" });
    expect(g.code).toBe(5);
    expect(r.status).toBe(5);
    expect(g.out).toBe(r.stdout);
    // runc spec's bounding set: AUDIT_WRITE, KILL, NET_BIND_SERVICE.
    expect(g.out).toMatch(/^host=oci-test user=0 caps=0000000020000420\n$/);
    expect(fs.existsSync(path.join(root, "runme"))).toBe(false);
  });

  it("refuses what it cannot honour, naming the field, and leaves nothing", () => {
    writeConfig((c) => {
      // An option that is no mount flag on a bind mount (docs/runtime.md, differences).
      c.mounts = [{ destination: "/data", type: "bind", source: "/tmp", options: ["rbind", "nosiud"] }];
    });
    const r = grove("create", "--bundle", bundle, "bad");
    expect(r.code).toBe(1);
    expect(r.err).toContain("config.json mounts[0].options[1]: ");
    expect(r.err).toContain("nosiud is not an option of a bind mount");
    writeConfig((c) => {
      c.process.args = [];
    });
    expect(grove("create", "--bundle", bundle, "bad").err).toContain(
      "config.json process.args: must be a non-empty array",
    );
    expect(fs.existsSync(path.join(root, "bad"))).toBe(false);
    expect(grove("frobnicate", "x")).toMatchObject({ code: 2 });
  });
});
