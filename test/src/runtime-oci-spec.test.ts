// runtime-spec features of grove-runtime beside runc (the neighbour of
// runtime-oci-conformance.test.ts, which holds the first cases): unknown
// properties, all five capability sets, oomScoreAdj and umask, and the command line's create (stdio
// passed through, --pid-file, a process that cannot be executed). Each case
// runs ONE config.json through Debian's runc and the static grove-runtime and
// compares what they report and what a process inside sees.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { RUN_TAG, tempDir } from "./harness/run-id";

const REPO = path.resolve(__dirname, "../..");
const GROVE = path.join(REPO, "agent", "bin", "grove-runtime");
const TAG = `grove-spec-${RUN_TAG}`;
const RUNC_CGROUP = `${TAG}-runc`;

type Config = Record<string, unknown> & {
  process: Record<string, unknown> & { args: string[]; user: Record<string, unknown> };
  linux: Record<string, unknown> & { resources: Record<string, unknown> };
  mounts: Record<string, unknown>[];
  root: Record<string, unknown>;
};

interface Result {
  code: number;
  out: string;
  err: string;
}

let tmp: string;
let bundle: string;
let base: Config;
let seq = 0;
const created: { runtime: "runc" | "grove"; id: string }[] = [];

/** stdio to files: a created container holds the caller's stdio (that is the point). */
function cli(runtime: "runc" | "grove", args: string[], name = "cmd"): Result {
  const out = path.join(tmp, `${name}.out`);
  const err = path.join(tmp, `${name}.err`);
  const fds = [fs.openSync(out, "w"), fs.openSync(err, "w")];
  const argv =
    runtime === "runc"
      ? ["runc", ["--root", path.join(tmp, "runc-state"), ...args]]
      : [GROVE, ["--root", path.join(tmp, "grove-state"), "--cgroup-parent", TAG, ...args]];
  try {
    const r = spawnSync(argv[0] as string, argv[1] as string[], {
      stdio: ["ignore", fds[0]!, fds[1]!],
      timeout: 30_000,
    });
    return { code: r.status ?? -1, out: fs.readFileSync(out, "utf8"), err: fs.readFileSync(err, "utf8") };
  } finally {
    fds.forEach((fd) => fs.closeSync(fd));
  }
}

function writeConfig(edit: (c: Config) => void): void {
  const c = JSON.parse(JSON.stringify(base)) as Config;
  c.linux.cgroupsPath = `/${RUNC_CGROUP}/c${++seq}`;
  edit(c);
  fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(c, null, 2));
}

function run(runtime: "runc" | "grove"): Result {
  const id = `${TAG}-${runtime}-${++seq}`;
  return cli(runtime, ["run", "--bundle", bundle, id], `run-${runtime}`);
}

/** The program under both: same exit code, output and error output. */
function expectSame(edit: (c: Config) => void, script: string): string {
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

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > until) throw new Error("timed out");
    await new Promise((res) => setTimeout(res, 20));
  }
}

function stateOf(runtime: "runc" | "grove", id: string): { status: string; pid: number; annotations?: unknown } {
  const st = cli(runtime, ["state", id], "state");
  expect(st).toMatchObject({ code: 0 });
  return JSON.parse(st.out) as { status: string; pid: number; annotations?: unknown };
}

beforeAll(() => {
  tmp = tempDir("grove-spec");
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

describe("grove-runtime vs runc: runtime-spec features", () => {
  it("unknown properties are ignored at every level (runtime-spec: a runtime must not fail on them)", () => {
    const out = expectSame((c) => {
      c["org.example.future"] = { nested: [1, 2, { deep: true }] };
      c.windows = { layerFolders: ["C:\\layers"] };
      c.process.futureKnob = 3;
      c.process.user.futureName = "x";
      c.root.futureFlag = true;
      c.linux.futureSetting = { a: "b" };
      c.linux.resources.futureController = { limit: 1 };
      c.linux.resources.memory = { limit: 64 * 1024 * 1024, futureField: 1 };
      c.mounts[0]!.futureOption = "ignored";
    }, "echo ran; id -u");
    expect(out).toBe("ran\n0\n");
  });

  it("capabilities: all five sets as given, for root and for another user", () => {
    const caps = "grep -E '^Cap' /proc/self/status";
    const bnd = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_SETUID"];
    const five = {
      bounding: bnd,
      effective: ["CAP_CHOWN", "CAP_KILL"],
      permitted: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
      inheritable: ["CAP_NET_RAW", "CAP_KILL"],
      ambient: ["CAP_NET_RAW"],
    };
    // Root: execve would raise permitted and effective to bounding | inheritable, but with
    // noNewPrivileges (runc spec's) the kernel keeps them within the permitted set given.
    const root = expectSame((c) => (c.process.capabilities = five), caps);
    expect(root).toContain("CapInh:\t0000000000002020");
    expect(root).toContain("CapEff:\t0000000000002021");
    expect(root).toContain("CapBnd:\t00000000000420a1");
    expect(root).toContain("CapAmb:\t0000000000002000");
    // Another user keeps its ambient set across execve: NET_RAW permitted and effective.
    const user = expectSame((c) => {
      c.process.capabilities = five;
      c.process.user = { uid: 1000, gid: 1000 };
    }, caps);
    expect(user).toContain("CapPrm:\t0000000000002000");
    expect(user).toContain("CapEff:\t0000000000002000");
    // A generator's bundle with all five sets equal (inheritable too).
    const all = { bounding: bnd, effective: bnd, permitted: bnd, inheritable: bnd, ambient: bnd };
    expect(
      expectSame((c) => {
        c.process.capabilities = all;
        c.process.user = { uid: 1000, gid: 1000 };
      }, caps),
    ).toContain("CapAmb:\t00000000000420a1");
    // The capability really works for the non-root user: chown needs CAP_CHOWN.
    expect(
      expectSame((c) => {
        c.process.capabilities = all;
        c.process.user = { uid: 1000, gid: 1000 };
      }, "f=$(mktemp) && chown 0:0 $f && echo chowned"),
    ).toBe("chowned\n");
  });

  it("process.oomScoreAdj and user.umask as given", () => {
    const probe = "cat /proc/self/oom_score_adj; umask; touch /tmp/u.$$ && stat -c %a /tmp/u.$$; rm /tmp/u.$$";
    expect(
      expectSame((c) => {
        c.process.oomScoreAdj = 500;
        c.process.user = { uid: 0, gid: 0, umask: 0o077 };
      }, probe),
    ).toBe("500\n0077\n600\n");
    // Another user (the value is written while the init is still privileged).
    expect(
      expectSame((c) => {
        c.process.oomScoreAdj = 200;
        c.process.user = { uid: 1000, gid: 1000, umask: 0o027 };
      }, probe),
    ).toBe("200\n0027\n640\n");
  });

  it("create: the caller's stdio is the container's, --pid-file, annotations in state", async () => {
    writeConfig((c) => {
      c.process.args = ["/bin/sh", "-c", "echo out-$$; echo err-$$ >&2"];
      c.annotations = { "org.example.kept": "yes" };
    });
    const seen: Record<string, unknown> = {};
    for (const runtime of ["runc", "grove"] as const) {
      const id = `${TAG}-${runtime}-${++seq}`;
      created.push({ runtime, id });
      const pidFile = path.join(tmp, `${runtime}.pid`);
      const c = cli(runtime, ["create", "--bundle", bundle, "--pid-file", pidFile, id], `create-${runtime}`);
      expect(c.code).toBe(0);
      const st = stateOf(runtime, id);
      expect(Number(fs.readFileSync(pidFile, "utf8"))).toBe(st.pid);
      expect(cli(runtime, ["start", id])).toMatchObject({ code: 0 });
      await waitFor(() => stateOf(runtime, id).status === "stopped");
      // The container wrote into create's stdout and stderr files (after create returned).
      await waitFor(() => fs.readFileSync(path.join(tmp, `create-${runtime}.err`), "utf8").includes("err-1"));
      seen[runtime] = {
        out: fs.readFileSync(path.join(tmp, `create-${runtime}.out`), "utf8"),
        err: fs.readFileSync(path.join(tmp, `create-${runtime}.err`), "utf8"),
        annotations: st.annotations,
      };
      expect(cli(runtime, ["delete", id])).toMatchObject({ code: 0 });
    }
    expect(seen.grove).toEqual(seen.runc);
    expect(seen.runc).toEqual({ out: "out-1\n", err: "err-1\n", annotations: { "org.example.kept": "yes" } });
  });

  it("create: a process that cannot be executed is an error of create, and nothing is left", () => {
    for (const [args, reason] of [
      [["/bin/no-such-program"], /no such file or directory/i],
      [["/not-executable"], /permission denied/i],
      [["no-such-command-in-path"], /no-such-command-in-path/],
    ] as const) {
      writeConfig((c) => (c.process.args = [...args]));
      for (const runtime of ["runc", "grove"] as const) {
        const id = `${TAG}-${runtime}-${++seq}`;
        created.push({ runtime, id });
        const c = cli(runtime, ["create", "--bundle", bundle, id]);
        expect(c.code).not.toBe(0);
        expect(c.err).toContain(args[0]);
        expect(c.err).toMatch(reason);
        expect(cli(runtime, ["state", id]).code).not.toBe(0);
      }
    }
    const state = path.join(tmp, "grove-state");
    expect(fs.existsSync(state) ? fs.readdirSync(state) : []).toEqual([]);
  });
});
