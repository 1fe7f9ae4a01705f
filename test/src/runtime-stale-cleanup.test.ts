// cleanupStale() against the real addon, real shims and the real kernel: the
// containers an agent left running (it stopped, they keep running) are killed
// and their state directories removed, every one of them, in one call.
//
// Each container's grove-shim lives outside the container's cgroup: after the
// cgroup's SIGKILL it writes the exit record into the container's directory.
// Removing the directory before that raced the shim: rm failed with ENOTEMPTY
// and left the containers after it running (HostCluster.destroy, hence the
// leader-failover benchmark's clean-up failures under /run/grove/<parent>).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";

import { NativeRuntime, loadNativeBinding, type ContainerSpec } from "@grove/agent";
import { RUN_TAG, tempDir } from "./harness/run-id";

const REPO = path.resolve(__dirname, "../..");
const PARENT = `grove-stale-${RUN_TAG}`;
// Without waiting for the shims, some shim's exit record lands mid-rm in about half the runs of 12.
const CONTAINERS = 12;

let tmp: string;
let rootfs: string;

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("runtime integration tests need root");
  loadNativeBinding();
  tmp = tempDir("grove-stale");
  rootfs = path.join(tmp, "rootfs");
  execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [rootfs], { stdio: "pipe" });
});

afterAll(async () => {
  // Whatever a failed assertion left: killed and removed (cleanupStale's own retry).
  for (const round of [0, 1]) {
    const rt = new NativeRuntime({ cgroupParent: `${PARENT}-${round}` });
    await rt.cleanupStale().catch(() => undefined);
    await rt.removeParentCgroup().catch(() => undefined);
    fs.rmSync(rt.stateDir, { recursive: true, force: true });
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function spec(id: string): ContainerSpec {
  return {
    id,
    rootfs,
    command: ["sh", "-c", "exec sleep 1000"],
    env: { PATH: "/bin" },
    hostname: id,
    resources: { cpuMillis: 10, memoryBytes: 16 * 2 ** 20, pids: 16 },
    logPath: path.join(tmp, `${id}.log`),
  };
}

function procStatus(pid: number, field: string): string | undefined {
  try {
    return new RegExp(`^${field}:\\s*(\\S+)`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  } catch {
    return undefined; // gone
  }
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("NativeRuntime.cleanupStale on a stopped agent's running containers", () => {
  it("removes a container's directory only once its shim has recorded the exit", async () => {
    const parent = `${PARENT}-0`;
    const previous = new NativeRuntime({ cgroupParent: parent });
    const { pid } = await previous.start(spec("slow-shim"));
    previous.detach();
    const shim = Number(procStatus(pid, "PPid"));
    const dir = path.join(previous.stateDir, "slow-shim");
    // The shim is held: the init dies of the kill, but nobody reaps it or writes its exit record.
    process.kill(shim, "SIGSTOP");
    let settled = false;
    const cleaning = new NativeRuntime({ cgroupParent: parent }).cleanupStale().finally(() => (settled = true));
    try {
      await until("the init killed (a zombie of the stopped shim)", () => procStatus(pid, "State") === "Z");
      // Time enough for the removal that does not wait (it took well under this).
      await new Promise((r) => setTimeout(r, 1000));
      expect(settled).toBe(false);
      expect(fs.existsSync(dir)).toBe(true);
    } finally {
      process.kill(shim, "SIGCONT");
    }
    const resumed = performance.now();
    expect(await cleaning).toEqual(["slow-shim"]);
    expect(performance.now() - resumed).toBeLessThan(5000); // the shim's answer, not the give-up timeout
    expect(fs.existsSync(dir)).toBe(false);
    await until("the shim gone", () => procStatus(shim, "State") === undefined);
    await new NativeRuntime({ cgroupParent: parent }).removeParentCgroup();
  });

  it("kills every one and removes every state directory in one call", async () => {
    const parent = `${PARENT}-1`;
    const previous = new NativeRuntime({ cgroupParent: parent });
    const pids: number[] = [];
    for (let i = 0; i < CONTAINERS; i++) pids.push((await previous.start(spec(`c${i}`))).pid);
    previous.detach(); // the agent went away; its shims keep the containers

    const next = new NativeRuntime({ cgroupParent: parent });
    expect((await next.cleanupStale()).length).toBe(CONTAINERS);
    expect(fs.readdirSync(next.stateDir)).toEqual([]);
    for (const pid of pids) expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    await next.removeParentCgroup();
    expect(fs.existsSync(next.stateDir)).toBe(false);
  });
});
