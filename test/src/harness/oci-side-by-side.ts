// Side by side with Debian's runc: one config.json run through runc and the
// static grove-runtime, comparing what they report and what a process inside
// sees (runtime-oci-spec.test.ts and runtime-oci-lifecycle.test.ts).
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { RUN_TAG, tempDir } from "./run-id";

const REPO = path.resolve(__dirname, "../../..");
const GROVE = path.join(REPO, "agent", "bin", "grove-runtime");
/** Names on the host: grove-<file>-<run tag>; set by sideBySide(). */
export let TAG = "";
let RUNC_CGROUP = "";

export type Config = Record<string, unknown> & {
  process: Record<string, unknown> & { args: string[]; user: Record<string, unknown> };
  linux: Record<string, unknown> & { resources: Record<string, unknown> };
  mounts: Record<string, unknown>[];
  root: Record<string, unknown>;
};

export interface Result {
  code: number;
  out: string;
  err: string;
}

export let tmp: string;
export let bundle: string;
let base: Config;
let seq = 0;
/** A number no other container or config of this file has had. */
export function nextSeq(): number {
  return ++seq;
}
export const created: { runtime: "runc" | "grove"; id: string }[] = [];

/**
 * stdio to files: a created container holds the caller's stdio (that is the point). via: a command the runtime
 * is run through (it execs its arguments), e.g. one that moves itself into other cgroups first.
 */
export function cli(runtime: "runc" | "grove", args: string[], name = "cmd", via: string[] = []): Result {
  const out = path.join(tmp, `${name}.out`);
  const err = path.join(tmp, `${name}.err`);
  const fds = [fs.openSync(out, "w"), fs.openSync(err, "w")];
  const argv =
    runtime === "runc"
      ? ["runc", ["--root", path.join(tmp, "runc-state"), ...args]]
      : [GROVE, ["--root", path.join(tmp, "grove-state"), "--cgroup-parent", TAG, ...args]];
  try {
    const command = [...via, argv[0] as string, ...(argv[1] as string[])];
    const r = spawnSync(command[0]!, command.slice(1), {
      stdio: ["ignore", fds[0]!, fds[1]!],
      timeout: 30_000,
    });
    return { code: r.status ?? -1, out: fs.readFileSync(out, "utf8"), err: fs.readFileSync(err, "utf8") };
  } finally {
    fds.forEach((fd) => fs.closeSync(fd));
  }
}

export function writeConfig(edit: (c: Config) => void): void {
  const c = JSON.parse(JSON.stringify(base)) as Config;
  c.linux.cgroupsPath = `/${RUNC_CGROUP}/c${++seq}`;
  edit(c);
  fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(c, null, 2));
}

export function run(runtime: "runc" | "grove"): Result {
  const id = `${TAG}-${runtime}-${++seq}`;
  return cli(runtime, ["run", "--bundle", bundle, id], `run-${runtime}`);
}

/** The program under both: same exit code, output and error output. */
export function expectSame(edit: (c: Config) => void, script: string): string {
  writeConfig((c) => {
    c.process.args = ["/bin/sh", "-c", script];
    edit(c);
  });
  const r = run("runc");
  const g = run("grove");
  expect(r.err).not.toContain("level=error");
  expect(g).toEqual(r);
  return r.out;
}

export async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > until) throw new Error("timed out");
    await new Promise((res) => setTimeout(res, 20));
  }
}

export function stateOf(runtime: "runc" | "grove", id: string): { status: string; pid: number; annotations?: unknown } {
  const st = cli(runtime, ["state", id], "state");
  expect(st).toMatchObject({ code: 0 });
  return JSON.parse(st.out) as { status: string; pid: number; annotations?: unknown };
}

/** Registers the file's set-up and clean-up: a busybox bundle from `runc spec`, both runtimes' state under one temporary directory. */
export function sideBySide(name: string): void {
  TAG = `grove-${name}-${RUN_TAG}`;
  RUNC_CGROUP = `${TAG}-runc`;
  beforeAll(() => {
    tmp = tempDir(`grove-${name}`);
    bundle = path.join(tmp, "bundle");
    fs.mkdirSync(bundle);
    execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [path.join(bundle, "rootfs")], { stdio: "pipe" });
    fs.writeFileSync(path.join(bundle, "rootfs", "not-executable"), "#!/bin/sh\necho never\n", { mode: 0o644 });
    execFileSync("runc", ["spec"], { cwd: bundle });
    base = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as Config;
    base.process.terminal = false;
    base.root.readonly = false;
  });

  afterAll(() => {
    for (const { runtime, id } of created) cli(runtime, ["delete", "--force", id]);
    for (const c of fs.readdirSync("/sys/fs/cgroup")) {
      for (const parent of [RUNC_CGROUP, TAG]) {
        const dir = path.join("/sys/fs/cgroup", c, parent);
        if (!fs.existsSync(dir)) continue;
        for (const sub of fs.readdirSync(dir, { withFileTypes: true })) {
          if (sub.isDirectory()) fs.rmdirSync(path.join(dir, sub.name));
        }
        fs.rmdirSync(dir);
      }
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });
}
