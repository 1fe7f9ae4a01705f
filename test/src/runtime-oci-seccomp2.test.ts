// grove-runtime beside runc (test/src/harness/oci-side-by-side.ts): the rest of
// a bundle's linux.seccomp. Argument values above 32 bits under every operator
// (both halves compared, as libseccomp compares them for runc), SCMP_ACT_TRACE
// with no tracer, _LOG, _KILL_PROCESS/_KILL_THREAD, flags (runc 1.1.5 refuses
// them), and SCMP_ACT_NOTIFY: a small agent of the test's (harness/notify-agent.c)
// listens at listenerPath, gets the container process state with the notify fd
// (SCM_RIGHTS), answers one notification, and the container sees the answer.
// Each case runs ONE config.json through Debian's runc and the static
// grove-runtime. docs/runtime.md "Conformance" lists them.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  bundle,
  cli,
  created,
  nextSeq,
  run,
  sideBySide,
  stateOf,
  TAG,
  tmp,
  waitFor,
  writeConfig,
} from "./harness/oci-side-by-side";

sideBySide("seccomp2");

const x64 = process.arch === "x64";
const HARNESS = path.join(__dirname, "harness");
let agentBin = "";
const agents: ChildProcess[] = [];

beforeAll(() => {
  if (!x64) return; // the probe's syscall numbers are x86_64's
  const probe = path.join(bundle, "rootfs", "bin", "sys-probe");
  execFileSync("cc", ["-static", "-O1", "-o", probe, path.join(HARNESS, "sys-probe.c")], { stdio: "pipe" });
  fs.chmodSync(probe, 0o755);
  agentBin = path.join(tmp, "notify-agent");
  execFileSync("cc", ["-O1", "-o", agentBin, path.join(HARNESS, "notify-agent.c")], { stdio: "pipe" });
});

afterAll(() => {
  for (const a of agents) if (a.exitCode === null && a.signalCode === null) a.kill("SIGKILL");
});

/** One run of the probe as the container's process (no shell: its own calls would meet the rules). */
function probeRun(runtime: "runc" | "grove", profile: unknown, calls: string[]) {
  writeConfig((c) => {
    c.process.args = ["/bin/sys-probe", ...calls];
    c.linux.seccomp = profile;
  });
  return run(runtime);
}

// Syscalls that ignore their arguments (the filter still sees them), one per operator.
const OPS: [string, number][] = [
  ["SCMP_CMP_EQ", 24], // sched_yield
  ["SCMP_CMP_NE", 111], // getpgrp
  ["SCMP_CMP_LT", 186], // gettid
  ["SCMP_CMP_LE", 110], // getppid
  ["SCMP_CMP_GT", 108], // getegid
  ["SCMP_CMP_GE", 107], // geteuid
  ["SCMP_CMP_MASKED_EQ", 104], // getgid
];
const NAMES: Record<number, string> = {
  24: "sched_yield",
  111: "getpgrp",
  186: "gettid",
  110: "getppid",
  108: "getegid",
  107: "geteuid",
  104: "getgid",
  102: "getuid",
};
const V = 0x1_0000_0005n;
const MASK = 0xf_0000_000fn;
const BIG = 0xffff_ffff_0000_0005n;

/** libseccomp's semantics on 64-bit values: unsigned compares, MASKED_EQ (arg & value) == valueTwo. */
function holds(op: string, a: bigint): boolean {
  switch (op) {
    case "SCMP_CMP_EQ":
      return a === V;
    case "SCMP_CMP_NE":
      return a !== V;
    case "SCMP_CMP_LT":
      return a < V;
    case "SCMP_CMP_LE":
      return a <= V;
    case "SCMP_CMP_GT":
      return a > V;
    case "SCMP_CMP_GE":
      return a >= V;
    default:
      return (a & MASK) === V;
  }
}

describe("grove-runtime vs runc: linux.seccomp beyond 32 bits, TRACE, LOG, KILL, flags", () => {
  (x64 ? it : it.skip)("argument values above 32 bits under every operator: both halves compared", () => {
    // As JSON digits: the last rule's value is past 2 ** 53, which a JavaScript number would round.
    const rules = [...OPS, ["SCMP_CMP_EQ", 102, BIG] as const].map(([op, nr, value], i) => {
      const values = op === "SCMP_CMP_MASKED_EQ" ? `"value":${MASK},"valueTwo":${V}` : `"value":${value ?? V}`;
      const arg = `{"index":1,${values},"op":"${op}"}`;
      return `{"names":["${NAMES[nr]}"],"action":"SCMP_ACT_ERRNO","errnoRet":${100 + i},"args":[${arg}]}`;
    });
    const text = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[${rules.join(",")}]}`;
    const args = [5n, V - 1n, V, V + 1n, 6n, 0x2_0000_0000n, BIG, 0x1_abcd_ef05n];
    const calls = [...OPS, ["SCMP_CMP_EQ", 102] as const].flatMap(([, nr]) =>
      args.map((a) => `${nr}:0:0x${a.toString(16)}`),
    );
    const runRaw = (runtime: "runc" | "grove") => {
      writeConfig((c) => {
        c.process.args = ["/bin/sys-probe", ...calls];
        c.linux.seccomp = "@PROFILE@";
      });
      const file = path.join(bundle, "config.json");
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace('"@PROFILE@"', text));
      return run(runtime);
    };
    const r = runRaw("runc");
    const g = runRaw("grove");
    expect(g).toEqual(r);
    const want = [...OPS, ["SCMP_CMP_EQ", 102] as const]
      .flatMap(([op, nr], i) =>
        args.map((a) => {
          const hit = i < OPS.length ? holds(op, a) : a === BIG;
          return `${nr}:0:0x${a.toString(16)}=${hit ? 100 + i : "ok"}\n`;
        }),
      )
      .join("");
    expect(g).toEqual({ code: 0, out: want, err: "" });
  });

  (x64 ? it : it.skip)(
    "SCMP_ACT_TRACE without a tracer fails the call with ENOSYS; SCMP_ACT_LOG lets it through",
    () => {
      const profile = {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [
          { names: ["sched_yield"], action: "SCMP_ACT_TRACE" },
          { names: ["getpgrp"], action: "SCMP_ACT_TRACE", errnoRet: 5 }, // the tracer's data, not an errno
          { names: ["gettid"], action: "SCMP_ACT_LOG" },
          { names: ["getppid"], action: "SCMP_ACT_ERRNO", errnoRet: 7 },
        ],
      };
      const calls = ["24", "111", "186", "110"];
      const r = probeRun("runc", profile, calls);
      const g = probeRun("grove", profile, calls);
      expect(g).toEqual(r);
      expect(g).toEqual({ code: 0, out: "24=38\n111=38\n186=ok\n110=7\n", err: "" });
    },
  );

  (x64 ? it : it.skip)("SCMP_ACT_KILL_PROCESS, _KILL_THREAD and _KILL: the process dies of SIGSYS", () => {
    for (const action of ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL"]) {
      const profile = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["getpgrp"], action }] };
      const r = probeRun("runc", profile, ["24", "111"]);
      const g = probeRun("grove", profile, ["24", "111"]);
      expect([action, g]).toEqual([action, r]);
      expect([action, g.code]).toEqual([action, 128 + 31]);
    }
  });

  (x64 ? it : it.skip)("flags: applied (runc 1.1.5 refuses every flag); an unknown one refused naming it", () => {
    const profile = (flags: string[]) => ({
      defaultAction: "SCMP_ACT_ALLOW",
      flags,
      syscalls: [{ names: ["getppid"], action: "SCMP_ACT_ERRNO", errnoRet: 7 }],
    });
    const all = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"];
    for (const flags of [all, ["SECCOMP_FILTER_FLAG_LOG"], ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]]) {
      const r = probeRun("runc", profile(flags), ["110"]);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain("seccomp flags are not yet supported by runc");
      expect(probeRun("grove", profile(flags), ["110", "111"])).toEqual({ code: 0, out: "110=7\n111=ok\n", err: "" });
    }
    const g = probeRun("grove", profile(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), ["110"]);
    expect(g.code).toBe(1);
    expect(g.err).toContain(
      "config.json linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported",
    );
  });
});

describe("grove-runtime vs runc: SCMP_ACT_NOTIFY and listenerPath", () => {
  type Received = { state: Record<string, unknown>; nfds: number };
  /** The test's agent on a fresh socket: answers the first notification with errno. */
  function startAgent(name: string, errno: number): { sock: string; out: string; agent: ChildProcess } {
    const sock = path.join(tmp, `${name}.sock`);
    const out = path.join(tmp, name);
    fs.rmSync(sock, { force: true });
    const agent = spawn(agentBin, [sock, out, String(errno)], { stdio: ["ignore", "ignore", "inherit"] });
    agents.push(agent);
    return { sock, out, agent };
  }
  async function received(out: string): Promise<Received> {
    await waitFor(() => fs.existsSync(`${out}.json`));
    const text = fs.readFileSync(`${out}.json`, "utf8");
    const json = text.slice(0, text.lastIndexOf("\n", text.length - 2));
    try {
      return { state: JSON.parse(json) as Record<string, unknown>, nfds: Number(text.slice(json.length)) };
    } catch (e) {
      throw new Error(`${String(e)}: ${text}`);
    }
  }
  const script =
    "rm -rf /tmp/n1 /tmp/n2; mkdir /tmp/n1; echo first=$?; mkdir /tmp/n2; echo second=$?; rm -rf /tmp/n1 /tmp/n2";
  const config = (sock: string) =>
    writeConfig((c) => {
      c.process.args = ["/bin/sh", "-c", script];
      c.annotations = { "org.example.k": "v" };
      c.linux.seccomp = {
        defaultAction: "SCMP_ACT_ALLOW",
        listenerPath: sock,
        listenerMetadata: 'meta "quoted"',
        syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY" }],
      };
    });
  /** What both runtimes must send, bar the version strings. */
  const expectState = (got: Received, id: string) => {
    expect(got.nfds).toBe(1);
    expect(got.state).toMatchObject({
      fds: ["seccompFd"],
      metadata: 'meta "quoted"',
      state: { id, status: "creating", bundle, annotations: { "org.example.k": "v" } },
    });
    expect(got.state.pid).toBeGreaterThan(0);
    expect((got.state.state as { pid: number }).pid).toBe(got.state.pid);
  };

  (x64 ? it : it.skip)(
    "run: the listener gets the state and the notify fd; its answer (EROFS) is the call's; the next call, listener gone, ENOSYS",
    async () => {
      const results: Record<string, unknown> = {};
      for (const runtime of ["runc", "grove"] as const) {
        const { sock, out, agent } = startAgent(`notify-run-${runtime}`, 30);
        await waitFor(() => fs.existsSync(sock));
        config(sock);
        const seq = nextSeq();
        const id = `${TAG}-${runtime}-${seq}`;
        const r = cli(runtime, ["run", "--bundle", bundle, id], `run-${runtime}`);
        const got = await received(out);
        expectState(got, id);
        await waitFor(() => agent.exitCode !== null);
        expect(agent.exitCode).toBe(0);
        results[runtime] = { r, nr: fs.readFileSync(`${out}.done`, "utf8") };
      }
      expect(results.grove).toEqual(results.runc);
      expect((results.grove as { r: unknown }).r).toEqual({
        code: 0,
        out: "first=1\nsecond=1\n",
        err:
          "mkdir: can't create directory '/tmp/n1': Read-only file system\n" +
          "mkdir: can't create directory '/tmp/n2': Function not implemented\n",
      });
    },
  );

  (x64 ? it : it.skip)(
    "create: the listener gets the fd before start (pid: the state's); start runs to its answer",
    async () => {
      const outs: Record<string, unknown> = {};
      for (const runtime of ["runc", "grove"] as const) {
        const { sock, out, agent } = startAgent(`notify-create-${runtime}`, 1);
        await waitFor(() => fs.existsSync(sock));
        config(sock);
        const id = `${TAG}-${runtime}-${nextSeq()}`;
        created.push({ runtime, id });
        const name = `notify-create-${runtime}`;
        expect(cli(runtime, ["create", "--bundle", bundle, id], name)).toMatchObject({ code: 0 });
        const got = await received(out); // sent during create (nothing has started the process), as runc's
        expectState(got, id);
        expect(got.state.pid).toBe(stateOf(runtime, id).pid);
        expect(cli(runtime, ["start", id])).toMatchObject({ code: 0 });
        await waitFor(() => stateOf(runtime, id).status === "stopped");
        await waitFor(() => agent.exitCode !== null);
        expect(cli(runtime, ["delete", id])).toMatchObject({ code: 0 });
        outs[runtime] = {
          out: fs.readFileSync(path.join(tmp, `${name}.out`), "utf8"),
          err: fs.readFileSync(path.join(tmp, `${name}.err`), "utf8"),
        };
      }
      expect(outs.grove).toEqual(outs.runc);
      expect(outs.grove).toEqual({
        out: "first=1\nsecond=1\n",
        err:
          "mkdir: can't create directory '/tmp/n1': Operation not permitted\n" +
          "mkdir: can't create directory '/tmp/n2': Function not implemented\n",
      });
    },
  );

  (x64 ? it : it.skip)(
    "refused by both: NOTIFY without listenerPath, as the default action, for write; a listener that is not there",
    () => {
      const base = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["getppid"], action: "SCMP_ACT_NOTIFY" }] };
      for (const [profile, runcMsg, groveMsg] of [
        [base, "listenerPath is not set", "config.json linux.seccomp.listenerPath: is required with SCMP_ACT_NOTIFY"],
        [
          { defaultAction: "SCMP_ACT_NOTIFY", listenerPath: "/x" },
          "SCMP_ACT_NOTIFY cannot be used as default action",
          "config.json linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ],
        [
          { ...base, listenerPath: "/x", syscalls: [{ names: ["write"], action: "SCMP_ACT_NOTIFY" }] },
          "SCMP_ACT_NOTIFY cannot be used for the write syscall",
          "config.json linux.seccomp.syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for write",
        ],
        [
          // sendmsg notified: no call the runtime needs waits on the listener (it is reached, and absent).
          {
            ...base,
            listenerPath: path.join(tmp, "nobody.sock"),
            syscalls: [{ names: ["sendmsg"], action: "SCMP_ACT_NOTIFY" }],
          },
          "connect",
          `linux.seccomp.listenerPath: connect to ${path.join(tmp, "nobody.sock")}: No such file or directory`,
        ],
        [
          { ...base, listenerPath: path.join(tmp, "nobody.sock") },
          "connect",
          `linux.seccomp.listenerPath: connect to ${path.join(tmp, "nobody.sock")}: No such file or directory`,
        ],
      ] as const) {
        const r = probeRun("runc", profile, ["110"]);
        const g = probeRun("grove", profile, ["110"]);
        expect([r.code, r.err]).toEqual([1, expect.stringContaining(runcMsg)]);
        expect([g.code, g.err]).toEqual([1, expect.stringContaining(groveMsg)]);
      }
      const state = path.join(tmp, "grove-state");
      expect(fs.existsSync(state) ? fs.readdirSync(state) : []).toEqual([]);
    },
  );
});

describe("grove-runtime vs runc: `run` has a state; startContainer and poststart hooks that fail", () => {
  const GROVE = path.resolve(__dirname, "../../agent/bin/grove-runtime");
  // A failed case may leave a container whose `run` is gone: its process, by the pid file (before the cgroups go).
  afterAll(() => {
    for (const f of fs.readdirSync(tmp).filter((n) => n.endsWith(".pid"))) {
      const pid = Number(fs.readFileSync(path.join(tmp, f), "utf8"));
      if (pid > 1 && fs.existsSync(`/proc/${pid}`)) process.kill(pid, "SIGKILL");
    }
  });
  /** `run` in the background (it is the container's parent until it ends), stdio to files. */
  function runAsync(runtime: "runc" | "grove", id: string): { done: Promise<number>; out: string } {
    const out = path.join(tmp, `bg-${id}.out`);
    const fd = fs.openSync(out, "w");
    const args = ["run", "--bundle", bundle, "--pid-file", path.join(tmp, `${id}.pid`), id];
    const child =
      runtime === "runc"
        ? spawn("runc", ["--root", path.join(tmp, "runc-state"), ...args], { stdio: ["ignore", fd, fd] })
        : spawn(GROVE, ["--root", path.join(tmp, "grove-state"), "--cgroup-parent", TAG, ...args], {
            stdio: ["ignore", fd, fd],
          });
    fs.closeSync(fd);
    agents.push(child); // killed in afterAll if a failure leaves it
    return { done: new Promise((res) => child.on("exit", (code) => res(code ?? -1))), out };
  }

  it("during `run`: state says running (pid: --pid-file's), kill and delete work, a second run of the id is refused; gone after", async () => {
    const seen: Record<string, unknown> = {};
    for (const runtime of ["runc", "grove"] as const) {
      writeConfig((c) => {
        c.process.args = ["/bin/sh", "-c", 'trap "echo got-usr1" USR1; while true; do sleep 0.05; done'];
      });
      const id = `${TAG}-${runtime}-${nextSeq()}`;
      const bg = runAsync(runtime, id);
      const pidFile = path.join(tmp, `${id}.pid`);
      await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, "utf8") !== "");
      const st = stateOf(runtime, id);
      expect([runtime, st.status, st.pid]).toEqual([runtime, "running", Number(fs.readFileSync(pidFile, "utf8"))]);
      const again = cli(runtime, ["run", "--bundle", bundle, id]);
      expect([runtime, again.code, again.err]).toEqual([runtime, 1, expect.stringMatching(/already exists/)]);
      expect(cli(runtime, ["kill", id, "USR1"])).toMatchObject({ code: 0 });
      await waitFor(() => fs.readFileSync(bg.out, "utf8").includes("got-usr1"));
      expect(cli(runtime, ["delete", id]).code).toBe(1); // running: --force needed
      expect(cli(runtime, ["delete", "--force", id])).toMatchObject({ code: 0 });
      const code = await bg.done;
      seen[runtime] = { code, out: fs.readFileSync(bg.out, "utf8"), state: cli(runtime, ["state", id]).code };
    }
    expect(seen.grove).toEqual(seen.runc);
    expect(seen.grove).toEqual({ code: 137, out: "got-usr1\n", state: 1 });
    // A run that ends by itself leaves no state either.
    writeConfig((c) => (c.process.args = ["/bin/true"]));
    const id = `${TAG}-grove-${nextSeq()}`;
    expect(cli("grove", ["run", "--bundle", bundle, id])).toMatchObject({ code: 0 });
    expect(cli("grove", ["state", id]).err).toContain(`container ${id} does not exist`);
    const state = path.join(tmp, "grove-state");
    expect(fs.existsSync(state) ? fs.readdirSync(state) : []).toEqual([]);
  });

  const failing = (kind: string) => ({
    [kind]: [{ path: "/bin/sh", args: ["sh", "-c", `cat > /dev/null; echo ${kind}-failed >&2; exit 3`] }],
  });

  it("a startContainer hook that fails after create: start succeeds for both, the process never runs, the error on its stderr", async () => {
    for (const runtime of ["runc", "grove"] as const) {
      writeConfig((c) => {
        c.process.args = ["/bin/sh", "-c", "echo process-ran"];
        c.hooks = failing("startContainer");
      });
      const id = `${TAG}-${runtime}-${nextSeq()}`;
      created.push({ runtime, id });
      const name = `start-hook-${runtime}`;
      expect(cli(runtime, ["create", "--bundle", bundle, id], name)).toMatchObject({ code: 0 });
      expect([runtime, cli(runtime, ["start", id]).code]).toEqual([runtime, 0]);
      await waitFor(() => stateOf(runtime, id).status === "stopped");
      // The container's stdout and stderr are create's: the hook's and the runtime's words land there.
      const both = () => ["out", "err"].map((f) => fs.readFileSync(path.join(tmp, `${name}.${f}`), "utf8")).join("");
      await waitFor(() => both().includes("exit status 3"));
      expect([runtime, both()]).toEqual([runtime, expect.stringContaining("startContainer-failed")]);
      expect(both()).not.toContain("process-ran");
      expect(cli(runtime, ["delete", id])).toMatchObject({ code: 0 });
    }
  });

  it("poststart: its state and a failing one (runc 1.1.5 runs it in create, whose failure then fails create)", () => {
    const states: Record<string, Record<string, unknown>> = {};
    for (const runtime of ["runc", "grove"] as const) {
      const log = path.join(tmp, `poststart-${runtime}.json`);
      writeConfig((c) => {
        c.process.args = ["/bin/sh", "-c", "sleep 30"];
        c.hooks = { poststart: [{ path: "/bin/sh", args: ["sh", "-c", `cat > ${log}`] }] };
      });
      const id = `${TAG}-${runtime}-${nextSeq()}`;
      created.push({ runtime, id });
      expect(cli(runtime, ["create", "--bundle", bundle, id])).toMatchObject({ code: 0 });
      expect(cli(runtime, ["start", id])).toMatchObject({ code: 0 });
      states[runtime] = JSON.parse(fs.readFileSync(log, "utf8")) as Record<string, unknown>;
      expect(cli(runtime, ["delete", "--force", id])).toMatchObject({ code: 0 });
    }
    // runtime-spec: poststart runs after the process has started: grove-runtime says running.
    expect(states.runc).toMatchObject({ status: "created" });
    expect(states.grove).toMatchObject({ status: "running", pid: states.grove!.pid });

    writeConfig((c) => {
      c.process.args = ["/bin/sh", "-c", "echo process-ran"];
      c.hooks = failing("poststart");
    });
    const r = run("runc");
    expect([r.code, r.err]).toEqual([1, expect.stringContaining("poststart-failed")]);
    // runtime-spec: "the runtime MUST log a warning" and the lifecycle goes on.
    expect(run("grove")).toEqual({
      code: 0,
      out: "process-ran\n",
      err: "poststart-failed\ngrove-runtime: warning: hook poststart[0] /bin/sh: exit status 3\n",
    });
  });
});
