// An agent told to stop (SIGTERM) while it is stopping an instance the
// control plane no longer wants. It keeps containers across its restarts
// (the default), but a stop already under way is the control plane's
// decision, half carried out: the agent finishes it (the container gone, its
// root unmounted, its cgroup removed) before it exits. It used to exit at
// once, leaving the instance's overlay root mounted and its cgroup behind
// until the next start cleaned up (seen as an EBUSY leak in CI).
// An agent killed (SIGKILL) in the same place cannot finish; the next one
// adopts the container and, on its first desired set, finishes the stop at
// once (it used to wait for the periodic resync, 30 s later).
// Real etcd (embedded in grove-server), real grove-server and grove-agent
// processes, the real addon on this kernel.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App } from "@grove/api";
import { waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "it-agent-shutdown";
const CGROUP_PARENT = `grove-it-as-${RUN_TAG}`;
const V1 = fs.existsSync("/sys/fs/cgroup/memory/cgroup.procs");
const GRACE_S = 3;

function cgroupOf(uid: string): string {
  return V1 ? `/sys/fs/cgroup/memory/${CGROUP_PARENT}/${uid}` : `/sys/fs/cgroup/${CGROUP_PARENT}/${uid}`;
}

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((p) => p.startsWith(dir + "/"));
}

// Ignores SIGTERM: the agent's stop takes the whole grace period, then SIGKILL.
const app: App = {
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name: "stubborn", namespace: "default" },
  spec: {
    rootfs: "busybox",
    command: ["/bin/sh", "-c", "trap '' TERM; echo up; while true; do sleep 1; done"],
    instances: 1,
    stopGracePeriodSeconds: GRACE_S,
    resources: { cpu: "50m", memory: "16Mi", pids: 16 },
  },
};

describe("agent shutdown while an instance is being stopped", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started | undefined;
  let client: GroveClient;

  const boot = (): Promise<Started> =>
    m.startAgent({
      nodeName: NODE,
      cgroupParent: CGROUP_PARENT,
      stopContainersOnExit: false,
    });

  beforeAll(async () => {
    m = await startMachine("grove-it-as");
    ({ dir, server } = m);
    agent = await boot();
    client = m.client;
    await waitNodeReady(client, NODE);
  });

  afterAll(async () => {
    try {
      // Whatever the test left: a fresh agent adopts it and the App is gone.
      agent ??= await boot();
      await client.delete("App", "stubborn", "default").catch(() => undefined);
      await waitFor(
        "the App's containers to be gone",
        async () => mountsUnder(path.join(dir, "agent")).length === 0,
        30_000,
      );
    } finally {
      await agent?.stop();
      await server?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a SIGTERM during a stop waits for the stop and its releases, then exits", async () => {
    await client.apply(app);
    const inst = await waitFor(
      "the instance to run",
      async () => {
        const [i] = (await client.list("Instance", { namespace: "default" })).items;
        return i?.status?.state === "Running" ? i : undefined;
      },
      60_000,
    );
    const uid = inst.metadata.uid!;
    expect(fs.existsSync(cgroupOf(uid))).toBe(true);
    expect(mountsUnder(path.join(dir, "agent"))).toHaveLength(1);

    const before = agent!.output.length;
    await client.delete("App", "stubborn", "default");
    await waitFor(
      "the agent to begin stopping the instance",
      async () => agent!.output.slice(before).some((l) => l.includes(uid) && l.includes("stopping instance")),
      30_000,
    );
    const t0 = performance.now();
    const stopping = agent!;
    agent = undefined;
    await stopping.stop(30_000);
    const waitedS = (performance.now() - t0) / 1000;

    // The stop ran its course (the grace period, then SIGKILL) before the agent exited ...
    expect(waitedS).toBeGreaterThan(GRACE_S - 1);
    // ... and released what the instance held on the host.
    expect(mountsUnder(path.join(dir, "agent"))).toEqual([]);
    expect(fs.existsSync(cgroupOf(uid))).toBe(false);
    expect(stopping.output.some((l) => l.includes(uid) && l.includes("instance finished"))).toBe(true);
  });

  test("after a kill -9 during a stop, the next agent finishes the stop on its first desired set", async () => {
    agent ??= await boot();
    await client.apply(app);
    const inst = await waitFor(
      "the instance to run",
      async () => {
        const [i] = (await client.list("Instance", { namespace: "default" })).items;
        return i?.status?.state === "Running" ? i : undefined;
      },
      60_000,
    );
    const uid = inst.metadata.uid!;
    const before = agent.output.length;
    await client.delete("App", "stubborn", "default");
    await waitFor(
      "the agent to begin stopping the instance",
      async () => agent!.output.slice(before).some((l) => l.includes(uid) && l.includes("stopping instance")),
      30_000,
    );
    await agent.kill9();
    agent = undefined;
    expect(fs.existsSync(cgroupOf(uid))).toBe(true);

    const t0 = performance.now();
    agent = await boot();
    // Well under the agent's 30 s resync: the grace period and a margin for a loaded machine.
    await waitFor(
      "the restarted agent to finish the stop",
      async () => !fs.existsSync(cgroupOf(uid)) && mountsUnder(path.join(dir, "agent")).length === 0,
      (GRACE_S + 12) * 1000,
    );
    console.log(`stop finished ${((performance.now() - t0) / 1000).toFixed(1)} s after the agent restarted`);
  });
});
