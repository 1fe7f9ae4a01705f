// The install scripts' files, in `npm test` (a few seconds; the whole install
// path on three hosts from packed releases is test/src/install.test.ts, in
// the chaos suite). A minimal release (the real scripts, VERSION, SHA256SUMS,
// wrappers that do nothing) is installed under a --root with --no-start: the
// units pass `systemd-analyze verify`, their ExecStart (read the way
// harness/systemd-unit.ts starts it) is the installed flags, upgrade and
// rollback move the symlinks, and bad input changes nothing.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT, tempDir } from "./harness/processes";
import { execStartArgv, readUnit, unitEnvironment } from "./harness/systemd-unit";

const execAsync = promisify(execFile);
const HASH = `sha256:${"ab".repeat(32)}`;

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execAsync(cmd, args, { timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

/** A release directory as deploy/pack.sh lays it out, minus the code. */
function fakeRelease(parent: string, version: string): string {
  const dir = path.join(parent, `grove-${version}`);
  fs.mkdirSync(path.join(dir, "deploy"), { recursive: true });
  fs.mkdirSync(path.join(dir, "bin"));
  for (const f of ["install-lib.sh", "install-server.sh", "install-agent.sh", "make-rootfs.sh"]) {
    fs.copyFileSync(path.join(REPO_ROOT, "deploy", f), path.join(dir, "deploy", f));
    fs.chmodSync(path.join(dir, "deploy", f), 0o755);
  }
  for (const b of ["grove", "grove-server", "grove-agent"]) {
    fs.writeFileSync(path.join(dir, "bin", b), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  }
  fs.writeFileSync(path.join(dir, "VERSION"), `${version}\n`);
  const files = ["VERSION", "bin/grove", "bin/grove-server", "bin/grove-agent", "deploy/install-lib.sh"];
  const sums = files.map(
    (f) =>
      `${createHash("sha256")
        .update(fs.readFileSync(path.join(dir, f)))
        .digest("hex")}  ${f}`,
  );
  fs.writeFileSync(path.join(dir, "SHA256SUMS"), sums.join("\n") + "\n");
  return dir;
}

describe("install scripts: units, flags, upgrade and rollback under --root", () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir("grove-inst-units");
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("grove-server and grove-agent units verify and start the installed flags", async () => {
    const rel = fakeRelease(dir, "0.0.1");
    const root = path.join(dir, "root-a");
    const server = await run(path.join(rel, "deploy", "install-server.sh"), [
      ...["install", "--root", root, "--no-start", "--user", "root", "--tls-san", "cp1.example"],
      ...["--", "--etcd-endpoints", "https://10.0.0.5:2379"],
    ]);
    expect(server).toMatchObject({ code: 0 });
    const agent = await run(path.join(rel, "deploy", "install-agent.sh"), [
      ...["install", "--root", root, "--no-start", "--server", "https://cp1.example:7480"],
      ...["--join", "abc.def", "--ca-hash", HASH, "--node-name", "n1", "--label", "zone=a"],
    ]);
    expect(agent).toMatchObject({ code: 0 });
    for (const name of ["grove-server", "grove-agent"]) {
      const unit = path.join(root, "etc/systemd/system", `${name}.service`);
      expect(await run("systemd-analyze", ["verify", "--man=no", unit])).toEqual({ code: 0, out: "" });
    }
    const su = readUnit(path.join(root, "etc/systemd/system/grove-server.service"));
    expect(execStartArgv(su, unitEnvironment(su))).toEqual([
      path.join(root, "opt/grove/current/bin/grove-server"),
      ...["--data-dir", path.join(root, "var/lib/grove/server"), "--listen", "0.0.0.0:7480"],
      ...["--grpc-listen", "0.0.0.0:7481", "--tls-san", "cp1.example"],
      ...["--etcd-endpoints", "https://10.0.0.5:2379"],
    ]);
    const au = readUnit(path.join(root, "etc/systemd/system/grove-agent.service"));
    const env = unitEnvironment(au);
    expect(env.GROVE_AGENT_JOIN).toBe("abc.def");
    expect(execStartArgv(au, env)).toEqual([
      path.join(root, "opt/grove/current/bin/grove-agent"),
      ...["--server", "https://cp1.example:7480", "--ca-hash", HASH, "--node-name", "n1"],
      ...[
        "--state-dir",
        path.join(root, "var/lib/grove/agent"),
        "--rootfs-dir",
        path.join(root, "var/lib/grove/rootfs"),
      ],
      ...["--label", "zone=a"],
    ]);
    expect(au.service.get("KillMode")).toEqual(["process"]);
    expect(fs.statSync(path.join(root, "etc/grove/grove-agent.env")).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(root, "var/lib/grove/rootfs")).mode & 0o777).toBe(0o700);
    expect(fs.readlinkSync(path.join(root, "usr/local/bin/grove"))).toBe(
      path.join(root, "opt/grove/current/bin/grove"),
    );
  });

  test("upgrade keeps the flags and moves current and previous; rollback moves them back", async () => {
    const [r1, r2] = [fakeRelease(dir, "0.0.2"), fakeRelease(dir, "0.0.3")];
    const root = path.join(dir, "root-b");
    const opt = path.join(root, "opt/grove");
    const flags = ["--server", "https://cp1:7480", "--join", "t.t", "--ca-hash", HASH, "--node-name", "n2"];
    expect(
      await run(path.join(r1, "deploy/install-agent.sh"), ["install", "--root", root, "--no-start", ...flags]),
    ).toMatchObject({ code: 0 });
    const envFile = path.join(root, "etc/grove/grove-agent.env");
    const before = fs.readFileSync(envFile, "utf8");
    expect(
      await run(path.join(r2, "deploy/install-agent.sh"), ["upgrade", "--root", root, "--no-start"]),
    ).toMatchObject({ code: 0 });
    expect([fs.readlinkSync(path.join(opt, "current")), fs.readlinkSync(path.join(opt, "previous"))]).toEqual([
      "0.0.3",
      "0.0.2",
    ]);
    // Not joined yet (no node certificate): the token stays.
    expect(fs.readFileSync(envFile, "utf8")).toBe(before);
    const back = await run(path.join(opt, "current/deploy/install-agent.sh"), [
      "rollback",
      "--root",
      root,
      "--no-start",
    ]);
    expect(back).toMatchObject({ code: 0 });
    expect([fs.readlinkSync(path.join(opt, "current")), fs.readlinkSync(path.join(opt, "previous"))]).toEqual([
      "0.0.2",
      "0.0.3",
    ]);
    const none = await run(path.join(opt, "current/deploy/install-agent.sh"), ["rollback", "0.0.9", "--root", root]);
    expect(none.code).not.toBe(0);
    expect(none.out).toMatch(/no release 0\.0\.9/);
  });

  test("bad input names the flag and writes nothing", async () => {
    const rel = fakeRelease(dir, "0.0.4");
    const script = path.join(rel, "deploy/install-agent.sh");
    const cases: [string[], RegExp][] = [
      [["--server", "http://cp1:7480", "--join", "t", "--ca-hash", HASH], /--server: joining needs https/],
      [["--server", "https://cp1:7480", "--join", "t", "--ca-hash", "sha256:12"], /--ca-hash: expected sha256/],
      [["--server", "https://cp1:7480", "--ca-hash", HASH], /--join TOKEN is required/],
      [["--server", "https://cp1:7480", "--join", "t", "--ca-hash", HASH, "--label", "a=b c"], /flag value "a=b c"/],
      [["--server", "https://cp1:7480", "--join", "t", "--ca-hash", HASH, "--label"], /--label needs KEY=VALUE/],
      [["--server", "https://cp1:7480", "--frob", "x"], /unknown flag "--frob"/],
      [["--server", "https://cp1:7480", "stray"], /unexpected argument "stray"/],
    ];
    for (const [i, [args, message]] of cases.entries()) {
      const root = path.join(dir, `root-bad-${i}`);
      const r = await run(script, ["install", "--root", root, "--no-start", ...args]);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(message);
      expect(fs.readdirSync(root)).toEqual([]);
    }
  });
});
