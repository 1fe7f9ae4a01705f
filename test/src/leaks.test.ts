// The suite's leak check (leaks.js) against objects a test really makes,
// named as the harness names them (run-id.ts): a veth pair, a bridge, an
// iptables chain in the machine's namespace, a cgroup in every hierarchy, a
// network namespace, a /run/grove state directory, a temporary directory and
// a process started from a Grove binary's name. Each must show in the diff
// against a snapshot taken before, in CI mode and outside it (where only this
// run's objects count), also from a jest worker other than the first; once
// removed, the diff is empty again. No server, no agent: a few seconds.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { Cleanup, cgroupGone, linkGone, netnsGone } from "./harness/cleanup";
import { RUN_ID, RUN_TAG, tempDir } from "./harness/run-id";
import { waitFor } from "./harness/processes";

type Snapshot = Record<string, string[]>;
const leaks = createRequire(__filename)("./leaks") as {
  snapshot(): Snapshot;
  diff(before: Snapshot, after: Snapshot): string[];
};

const NAME = `grove-leak-${RUN_TAG}`;
const VETH = `gvl${RUN_TAG}`.slice(0, 15);
const BRIDGE = `gvk${RUN_TAG}`.slice(0, 15);
const CHAIN = `GROVE-LEAK-${RUN_TAG}`;
const STATE = path.join("/run/grove", NAME);

function cgroupDirs(): string[] {
  return ["/sys/fs/cgroup", ...fs.readdirSync("/sys/fs/cgroup").map((h) => path.join("/sys/fs/cgroup", h))]
    .filter((d) => fs.existsSync(path.join(d, "cgroup.procs")))
    .map((d) => path.join(d, NAME));
}

let tmp = "";
let proc: ChildProcess | undefined;

async function removeAll(): Promise<void> {
  const c = new Cleanup("leak check test");
  if (proc?.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc!.once("exit", r));
    await c.step("kill the process", () => proc!.kill("SIGKILL"));
    await exited;
  }
  await c.command("ip", ["link", "del", VETH], () => linkGone(VETH));
  await c.command("ip", ["link", "del", BRIDGE], () => linkGone(BRIDGE));
  await c.command("iptables", ["-w", "-X", CHAIN], () => !chainExists());
  await c.command("ip", ["netns", "del", NAME], () => netnsGone(NAME));
  for (const d of cgroupDirs()) await c.step(`rmdir ${d}`, () => fs.existsSync(d) && fs.rmdirSync(d));
  await c.step(`remove ${STATE}`, () => fs.rmSync(STATE, { recursive: true, force: true }));
  if (tmp) await c.step(`remove ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  c.finish();
}

function chainExists(): boolean {
  try {
    execFileSync("iptables", ["-w", "-n", "-L", CHAIN], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

afterAll(removeAll);

test("every kind of object a test leaks shows in the leak check, in CI mode and outside it, and goes once removed", async () => {
  expect(RUN_TAG.startsWith(RUN_ID)).toBe(true);
  const ci = process.env.CI;
  const both = (): [Snapshot, Snapshot] => {
    delete process.env.CI;
    const mine = leaks.snapshot();
    process.env.CI = "1";
    const all = leaks.snapshot();
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
    return [mine, all];
  };
  const [mineBefore, allBefore] = both();

  execFileSync("ip", ["link", "add", VETH, "type", "veth", "peer", "name", `${VETH.slice(0, 13)}p`]);
  execFileSync("ip", ["link", "add", BRIDGE, "type", "bridge"]);
  execFileSync("iptables", ["-w", "-N", CHAIN]);
  execFileSync("ip", ["netns", "add", NAME]);
  for (const d of cgroupDirs()) fs.mkdirSync(d);
  fs.mkdirSync(STATE, { recursive: true });
  tmp = tempDir("grove-leak");
  // A process named like a Grove binary; it inherits the run id, as the harness's processes do.
  proc = spawn("sleep", ["600"], { argv0: "grove-shim", stdio: "ignore" });
  await waitFor("the process to run under its new name", async () =>
    fs.readFileSync(`/proc/${proc!.pid}/cmdline`, "utf8").startsWith("grove-shim"),
  );

  const [mineAfter, allAfter] = both();
  for (const problems of [leaks.diff(mineBefore, mineAfter), leaks.diff(allBefore, allAfter)]) {
    const text = problems.join("\n");
    expect(problems.find((p) => p.startsWith("links: "))).toEqual(expect.stringContaining(VETH));
    expect(text).toContain(BRIDGE);
    expect(problems.find((p) => p.startsWith("iptables: "))).toEqual(expect.stringContaining(`filter :${CHAIN}`));
    expect(problems.find((p) => p.startsWith("netns: "))).toEqual(expect.stringContaining(NAME));
    expect(problems.find((p) => p.startsWith("cgroups: "))).toEqual(expect.stringContaining(`/${NAME}`));
    expect(problems.find((p) => p.startsWith("state: "))).toEqual(expect.stringContaining(STATE));
    expect(problems.find((p) => p.startsWith("state: "))).toEqual(expect.stringContaining(tmp));
    expect(problems.find((p) => p.startsWith("processes: "))).toEqual(
      expect.stringContaining(`${proc.pid} run=${RUN_ID} `),
    );
  }

  await removeAll();
  expect(cgroupDirs().every((d) => cgroupGone(path.relative(path.dirname(d), d)))).toBe(true);
  const [mineClean] = both();
  // Another worker of this run may have made objects meanwhile (they count too): none of ours is left.
  const left = leaks.diff(mineBefore, mineClean).join("\n");
  for (const name of [VETH, BRIDGE, CHAIN, NAME, tmp, `${proc.pid} run=`]) expect(left).not.toContain(name);
});
