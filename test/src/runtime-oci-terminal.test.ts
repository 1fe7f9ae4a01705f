// grove-runtime beside runc (test/src/harness/oci-side-by-side.ts): process.terminal.
// create --console-socket: a small receiver of the test's (harness/console-receiver.c)
// listens on the socket, gets the pty's master (SCM_RIGHTS) and what the runtime
// sends with it, writes an answer once the process prompts and copies the output
// until the container's side is gone. Inside: `tty` names /dev/pts/N of the
// container's devpts, `stty size` is process.consoleSize, input written to the
// master reaches the process and its output comes back. run with a terminal (under
// `script`, which gives it one) relays between its stdio and the master. And the
// refusals, with nothing left behind. Each case runs ONE config.json through
// Debian's runc and the static grove-runtime. docs/runtime.md "Conformance" lists them.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  bundle,
  cli,
  Config,
  created,
  nextSeq,
  sideBySide,
  stateOf,
  TAG,
  tmp,
  waitFor,
  writeConfig,
} from "./harness/oci-side-by-side";

sideBySide("terminal");

const HARNESS = path.join(__dirname, "harness");
const GROVE = path.resolve(__dirname, "../../agent/bin/grove-runtime");
let receiverBin = "";
const children: ChildProcess[] = [];

beforeAll(() => {
  fs.chmodSync(tmp, 0o755); // a user namespace's root reaches the rootfs (as in runtime-oci-namespaces)
  receiverBin = path.join(tmp, "console-receiver");
  execFileSync("cc", ["-O1", "-o", receiverBin, path.join(HARNESS, "console-receiver.c")], { stdio: "pipe" });
});

// A failed case may leave a receiver or a `script` running: by pid.
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, "SIGKILL");
});

const RUNTIMES = ["runc", "grove"] as const;
type Runtime = (typeof RUNTIMES)[number];

function exited(c: ChildProcess): Promise<number> {
  return new Promise((res) => {
    if (c.exitCode !== null) res(c.exitCode);
    else c.on("exit", (code) => res(code ?? -1));
  });
}

/** No process with this pid any more (or a zombie: this host's pid 1 may not reap runc's orphans). */
function gone(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** The container's cgroup (the config's cgroupsPath) exists in no hierarchy. */
function cgroupGone(): boolean {
  const cg = (
    JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as { linux: { cgroupsPath: string } }
  ).linux.cgroupsPath;
  const roots = ["/sys/fs/cgroup", ...fs.readdirSync("/sys/fs/cgroup").map((h) => path.join("/sys/fs/cgroup", h))];
  return roots.every((r) => !fs.existsSync(path.join(r, cg)));
}

/** What each of the process's fds is, by number. */
function fdLinks(pid: number): Map<number, string> {
  const dir = `/proc/${pid}/fd`;
  const links = new Map<number, string>();
  for (const f of fs.readdirSync(dir)) {
    try {
      links.set(Number(f), fs.readlinkSync(path.join(dir, f)));
    } catch {
      // closed meanwhile
    }
  }
  return links;
}
const masters = (links: Map<number, string>) => [...links.values()].filter((l) => l.includes("ptmx"));

// The process prompts, then reads the answer the receiver (or the test) writes once it sees the prompt.
const SCRIPT = 'tty; stty size; printf "ready>"; read line; echo "got:$line"';

/** create --console-socket, start, and what the receiver got. */
async function createWithConsole(runtime: Runtime, edit: (c: Config) => void = () => {}, relativeSocket = false) {
  writeConfig((c) => {
    c.process.terminal = true;
    c.process.consoleSize = { height: 31, width: 97 };
    c.process.args = ["/bin/sh", "-c", SCRIPT];
    edit(c);
  });
  const id = `${TAG}-${runtime}-${nextSeq()}`;
  const sock = path.join(tmp, `${id}.sock`);
  const out = path.join(tmp, id);
  const receiver = spawn(receiverBin, [sock, out, "ready>", "hello\n"], { stdio: ["ignore", "ignore", "inherit"] });
  children.push(receiver);
  await waitFor(() => fs.existsSync(sock));
  created.push({ runtime, id });
  // A relative path is the bundle's: runc dials it after its chdir there (grove-shim, which
  // connects for grove-runtime, lives in "/").
  const given = relativeSocket ? path.relative(bundle, sock) : sock;
  const cr = cli(runtime, ["create", "--bundle", bundle, "--console-socket", given, id], `create-${id}`);
  expect([runtime, cr.code, cr.err]).toEqual([runtime, 0, ""]);
  const st = stateOf(runtime, id);
  expect([runtime, st.status]).toEqual([runtime, "created"]);
  // Sent during create (the receiver may still be writing it down); the init holds only the
  // slave (no master: the receiver's is the one).
  await waitFor(() => fs.existsSync(`${out}.name`));
  const name = fs.readFileSync(`${out}.name`, "utf8");
  const init = fdLinks(st.pid);
  expect(masters(init)).toEqual([]);
  const parent = Number(fs.readFileSync(`/proc/${st.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
  if (runtime === "grove" && parent > 1) expect(masters(fdLinks(parent))).toEqual([]);
  expect(cli(runtime, ["start", id])).toMatchObject({ code: 0 });
  expect([runtime, await exited(receiver)]).toEqual([runtime, 0]);
  const log = fs.readFileSync(`${out}.log`, "utf8");
  await waitFor(() => stateOf(runtime, id).status === "stopped");
  expect(cli(runtime, ["delete", id])).toMatchObject({ code: 0 });
  expect([runtime, cli(runtime, ["state", id]).code, gone(st.pid), cgroupGone()]).toEqual([runtime, 1, true, true]);
  return { name, stdio: [0, 1, 2].map((fd) => init.get(fd)), log };
}

describe("create --console-socket with process.terminal", () => {
  const EXPECTED = {
    name: "/dev/ptmx", // runc's utils.SendFd sends the master's name with it
    stdio: ["/dev/pts/0", "/dev/pts/0", "/dev/pts/0"],
    log: "/dev/pts/0\r\n31 97\r\nready>hello\r\ngot:hello\r\n",
  };

  it("the master goes to the socket: tty is /dev/pts/0, stty size is consoleSize, input in and output out", async () => {
    const seen: Record<string, unknown> = {};
    for (const runtime of RUNTIMES) seen[runtime] = await createWithConsole(runtime);
    expect(seen.grove).toEqual(seen.runc);
    expect(seen.grove).toEqual(EXPECTED);
  });

  it("the same for grove-runtime's caller-reaps create (org.grove.runtime.reaper: caller; runc ignores it)", async () => {
    const seen: Record<string, unknown> = {};
    for (const runtime of RUNTIMES) {
      seen[runtime] = await createWithConsole(
        runtime,
        (c) => (c.annotations = { "org.grove.runtime.reaper": "caller" }),
      );
    }
    expect(seen.grove).toEqual(seen.runc);
    expect(seen.grove).toEqual(EXPECTED);
  });

  const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];
  it.each([
    ["", false],
    [" in a new user namespace", true],
  ])(
    "as uid 1000%s (--console-socket relative to the bundle): the terminal is the process's (its uid, devpts's tty group 5, 620), /dev/console is the pty (136:0)",
    async (_what, userns) => {
      const seen: Record<string, unknown> = {};
      const probe = 'stat -c "%n %u %g %a %t:%T" "$(tty)" /dev/console; ' + SCRIPT;
      for (const runtime of RUNTIMES) {
        seen[runtime] = await createWithConsole(
          runtime,
          (c) => {
            c.process.user = { uid: 1000, gid: 1000 };
            c.process.args = ["/bin/sh", "-c", probe];
            if (!userns) return;
            (c.linux.namespaces as { type: string }[]).push({ type: "user" });
            c.linux.uidMappings = MAP;
            c.linux.gidMappings = MAP;
          },
          true,
        );
      }
      expect(seen.grove).toEqual(seen.runc);
      expect((seen.grove as { log: string }).log).toBe(
        "/dev/pts/0 1000 5 620 88:0\r\n/dev/console 1000 5 620 88:0\r\n" + EXPECTED.log,
      );
    },
  );
});

describe("refusals, with nothing created", () => {
  const CASES: [string, boolean, string, RegExp][] = [
    [
      "create, terminal: true, no --console-socket",
      true,
      "create",
      /cannot allocate tty if .* will detach without setting console socket/,
    ],
    [
      "create --console-socket, terminal: false",
      false,
      "create",
      /cannot use console socket if .* will not detach or allocate tty/,
    ],
    [
      "run --console-socket, terminal: true",
      true,
      "run",
      /cannot use console socket if .* will not detach or allocate tty/,
    ],
  ];
  it.each(CASES)("%s", (what, terminal, command, message) => {
    const withSocket = !(command === "create" && terminal);
    for (const runtime of RUNTIMES) {
      writeConfig((c) => {
        c.process.terminal = terminal;
        c.process.args = ["/bin/echo", "never"];
      });
      const id = `${TAG}-${runtime}-${nextSeq()}`;
      const socket = withSocket ? ["--console-socket", path.join(tmp, "nobody-listens.sock")] : [];
      const r = cli(runtime, [command, "--bundle", bundle, ...socket, id], `refused-${id}`);
      expect([runtime, what, r.code, r.out, r.err]).toEqual([runtime, what, 1, "", expect.stringMatching(message)]);
      expect([runtime, cli(runtime, ["state", id]).code, cgroupGone()]).toEqual([runtime, 1, true]);
    }
  });
});

describe("run with process.terminal (the caller's terminal: `script` gives it one)", () => {
  function quote(s: string): string {
    return `'${s.replace(/'/g, "'\\''")}'`;
  }

  it("relays: the process's output comes out, input written to run's stdin reaches it, the exit code is its", async () => {
    const seen: Record<string, unknown> = {};
    for (const runtime of RUNTIMES) {
      writeConfig((c) => {
        c.process.terminal = true;
        // Input first: runc clears ONLCR on the pty just before it starts relaying (its recvtty).
        c.process.args = ["/bin/sh", "-c", 'printf "ready>"; read line; tty; echo "got:$line"; exit 7'];
      });
      const id = `${TAG}-${runtime}-${nextSeq()}`;
      const argv =
        runtime === "runc"
          ? ["runc", "--root", path.join(tmp, "runc-state")]
          : [GROVE, "--root", path.join(tmp, "grove-state"), "--cgroup-parent", TAG];
      const cmd = [...argv, "run", "--bundle", bundle, id].map(quote).join(" ");
      const s = spawn("script", ["-qec", cmd, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
      children.push(s);
      let out = "";
      let sent = false;
      s.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (!sent && out.includes("ready>")) {
          sent = true;
          s.stdin!.write("hello\n");
        }
      });
      s.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      const code = await exited(s);
      s.stdin!.end();
      seen[runtime] = { code, out, state: cli(runtime, ["state", id]).code, cgroupGone: cgroupGone() };
    }
    expect(seen.grove).toEqual(seen.runc);
    expect(seen.grove).toEqual({
      code: 7,
      out: "ready>hello\r\n/dev/pts/0\r\ngot:hello\r\n",
      state: 1,
      cgroupGone: true,
    });
  });
});
