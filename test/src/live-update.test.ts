// Live update of an App's memory, cpu and pids limits, end to end on real
// components: a real etcd (embedded in grove-server), the real grove-server
// and grove-agent processes, the real native addon on this kernel. The
// container's process and limits are checked from the host's /proc and
// cgroupfs; the applied limits through the API and `grove describe`.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import { runCli, waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "it-live-update";
const CGROUP_PARENT = `grove-it-lu-${RUN_TAG}`;
const V1 = fs.existsSync("/sys/fs/cgroup/memory/cgroup.procs");
const MiB = 2 ** 20;

function cgroupDir(controller: string, id: string): string {
  return V1 ? `/sys/fs/cgroup/${controller}/${CGROUP_PARENT}/${id}` : `/sys/fs/cgroup/${CGROUP_PARENT}/${id}`;
}

function readCg(controller: string, id: string, v1file: string, v2file: string): string {
  return fs.readFileSync(path.join(cgroupDir(controller, id), V1 ? v1file : v2file), "utf8").trim();
}

/** memory limit, pids limit and cpu quota (µs per 100 ms) as the kernel holds them. */
function limits(uid: string): { memory: number; pids: string; cpuQuota: string } {
  return {
    memory: Number(readCg("memory", uid, "memory.limit_in_bytes", "memory.max")),
    pids: readCg("pids", uid, "pids.max", "pids.max"),
    cpuQuota: V1 ? readCg("cpu", uid, "cpu.cfs_quota_us", "") : readCg("cpu", uid, "", "cpu.max").split(" ")[0]!,
  };
}

function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

// 40 MiB in the container's /dev/shm (tmpfs, charged to its memory cgroup and
// not reclaimable without swap), then the shell becomes sleep: one PID.
const HOLD_40MIB = ["/bin/sh", "-c", "head -c 41943040 /dev/zero > /dev/shm/fill && echo filled && exec sleep 600"];

function app(
  resources: NonNullable<App["spec"]["resources"]>,
  spec: Partial<App["spec"]> = {},
  name = "resizable",
): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: { rootfs: "busybox", command: HOLD_40MIB, instances: 1, stopGracePeriodSeconds: 1, resources, ...spec },
  };
}

describe("live update: an App's resources change without restarting its instances", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started | undefined;
  let client: GroveClient;
  let env: NodeJS.ProcessEnv;

  async function boot(): Promise<Started> {
    return m.startAgent({
      nodeName: NODE,
      cgroupParent: CGROUP_PARENT,
      // The restart step kills the agent: its containers must outlive it.
      stopContainersOnExit: false,
    });
  }

  beforeAll(async () => {
    m = await startMachine("grove-it-lu");
    ({ dir, server } = m);
    agent = await boot();
    client = m.client;
    env = m.env;
    await waitNodeReady(client, NODE);
  });

  // Each test starts on an empty node (the allocation it checks is its own),
  // so either runs alone or in any order.
  async function removeApps(): Promise<void> {
    for (const name of ["resizable", "shrinkable"]) {
      await client.delete("App", name, "default").catch((err: unknown) => {
        if ((err as { code?: string }).code !== "NotFound") throw err;
      });
    }
    await waitFor(
      "every instance to be gone",
      async () => (await client.list("Instance", { namespace: "default" })).items.length === 0,
      60_000,
    );
  }

  afterEach(async () => {
    agent ??= await boot();
    await removeApps();
  });

  afterAll(async () => {
    try {
      agent ??= await boot();
      await removeApps();
      await waitFor("the containers' cgroups to be removed", async () => {
        const parent = V1 ? `/sys/fs/cgroup/memory/${CGROUP_PARENT}` : `/sys/fs/cgroup/${CGROUP_PARENT}`;
        return (
          !fs.existsSync(parent) || fs.readdirSync(parent).every((e) => !fs.statSync(`${parent}/${e}`).isDirectory())
        );
      });
    } finally {
      await agent?.stop();
      await server?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  async function current(name = "resizable"): Promise<Instance> {
    const list = await client.list("Instance", { namespace: "default" });
    const [inst] = list.items.filter((i) => i.spec.app === name);
    if (!inst) throw new Error(`no instance of ${name}`);
    return inst;
  }

  /** Applies the App and waits for its instance to run with its 40 MiB filled. */
  async function runFilled(a: App): Promise<Instance> {
    await client.apply(a);
    return waitFor("the instance to run with its memory filled", async () => {
      const i = await current(a.metadata.name);
      const log = path.join(dir, "agent", "logs", `${i.metadata.uid}.log`);
      return i.status?.state === "Running" && fs.existsSync(log) && fs.readFileSync(log, "utf8").includes("filled")
        ? i
        : undefined;
    });
  }

  test("grows in place, survives an agent restart, and replaces under the Replace policy", async () => {
    // 1. 64Mi, 32 pids, 250m: running, holding 40 MiB.
    const first = await runFilled(app({ memory: "64Mi", pids: 32, cpu: "250m" }));
    const uid = first.metadata.uid!;
    const pid = first.status!.pid!;
    expect(first.spec.restarts).toBe(0);
    expect(first.status?.appliedResources).toEqual({ cpuMillis: 250, memoryBytes: 64 * MiB, pids: 32 });
    expect(limits(uid)).toEqual({ memory: 64 * MiB, pids: "32", cpuQuota: "25000" });

    // 2. 128Mi, 64 pids, 500m: the same process keeps running with the new limits.
    await client.apply(app({ memory: "128Mi", pids: 64, cpu: "500m" }));
    const grown = await waitFor("the new limits to be applied", async () => {
      const i = await current();
      return i.status?.appliedResources?.memoryBytes === 128 * MiB ? i : undefined;
    });
    expect(grown.metadata.uid).toBe(uid);
    expect(grown.spec.nodeName).toBe(NODE);
    expect(grown.spec.restarts).toBe(0);
    expect(grown.status).toMatchObject({
      state: "Running",
      pid,
      reason: "Resized",
      appliedResources: { cpuMillis: 500, memoryBytes: 128 * MiB, pids: 64 },
    });
    expect(alive(pid)).toBe(true);
    expect(limits(uid)).toEqual({ memory: 128 * MiB, pids: "64", cpuQuota: "50000" });
    // The node's allocation follows.
    expect((await client.get("Node", NODE)).status?.allocated).toMatchObject({
      cpuMillis: 500,
      memoryBytes: 128 * MiB,
      pids: 64,
    });
    const described = await runCli(["describe", "instance", "resizable-0"], env);
    expect(described.code).toBe(0);
    expect(described.stdout).toMatch(/^ {2}Limits: +cpu 500m, memory 128Mi, pids 64$/m);

    // 3. The agent is killed and restarted: it adopts the container knowing
    // its limits (recorded at the update), so it neither re-applies nor misses them.
    await agent!.kill9();
    agent = undefined;
    agent = await boot();
    const adopted = await waitFor("the restarted agent to report the adopted instance", async () => {
      const i = await current();
      return i.status?.reason === "Running" ? i : undefined;
    });
    expect(adopted.metadata.uid).toBe(uid);
    expect(adopted.status).toMatchObject({
      pid,
      appliedResources: { cpuMillis: 500, memoryBytes: 128 * MiB, pids: 64 },
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await current()).status?.reason).toBe("Running"); // no second "Resized"
    expect(limits(uid)).toEqual({ memory: 128 * MiB, pids: "64", cpuQuota: "50000" });

    // 4. Under the Replace policy a change of resources starts a new instance.
    await client.apply(app({ memory: "96Mi", pids: 64, cpu: "500m" }, { updatePolicy: { resources: "Replace" } }));
    // Under the default Rolling update the replacement is a surge with its own
    // name next to the old instance (which then stays listed, RolledOut).
    const replaced = await waitFor("a replacement to run", async () => {
      const list = await client.list("Instance", { namespace: "default" });
      return list.items.find(
        (i) => i.spec.app === "resizable" && i.metadata.uid !== uid && i.status?.state === "Running",
      );
    });
    expect(replaced.status?.appliedResources).toEqual({ cpuMillis: 500, memoryBytes: 96 * MiB, pids: 64 });
    expect(limits(replaced.metadata.uid!)).toEqual({ memory: 96 * MiB, pids: "64", cpuQuota: "50000" });
    await waitFor("the old process to be gone", async () => !alive(pid));
    await waitFor("the old cgroup to be removed", async () => !fs.existsSync(cgroupDir("memory", uid)));
  });

  // A memory limit below what the container uses: on cgroup v1 the kernel
  // refuses (EBUSY); the instance keeps running with the old limits and says
  // why. cgroup v2 has no refusal to test (memory.max below usage reclaims,
  // then OOM-kills), so there jest reports this test as skipped, by name.
  (V1 ? test : test.skip)(
    "cgroup v1 only (skipped on v2, which reclaims or OOM-kills instead of refusing): a shrink below usage is refused, the old limits stay, and the refusal clears",
    async () => {
      const first = await runFilled(app({ memory: "128Mi", pids: 64, cpu: "500m" }, {}, "shrinkable"));
      const uid = first.metadata.uid!;
      const pid = first.status!.pid!;
      await client.apply(app({ memory: "16Mi", pids: 64, cpu: "500m" }, {}, "shrinkable"));
      const refused = await waitFor("the shrink to be refused", async () => {
        const i = await current("shrinkable");
        return i.status?.reason === "ResizeFailed" ? i : undefined;
      });
      expect(refused.metadata.uid).toBe(uid);
      expect(refused.spec.resources.memoryBytes).toBe(16 * MiB);
      expect(refused.status).toMatchObject({
        state: "Running",
        pid,
        appliedResources: { cpuMillis: 500, memoryBytes: 128 * MiB, pids: 64 },
      });
      expect(refused.status?.message).toMatch(
        /^could not resize to cpu 500m, memory 16Mi, pids 64: .*memory\.limit_in_bytes.*busy/i,
      );
      expect(refused.status?.message).toMatch(/running on with cpu 500m, memory 128Mi, pids 64$/);
      expect(alive(pid)).toBe(true);
      expect(limits(uid).memory).toBe(128 * MiB);
      const text = (await runCli(["describe", "instance", "shrinkable-0"], env)).stdout;
      expect(text).toContain("Limits:");
      expect(text).toContain("resize refused; spec asks for cpu 500m, memory 16Mi, pids 64");

      // Back to the size it has: nothing to apply, the refusal is cleared.
      await client.apply(app({ memory: "128Mi", pids: 64, cpu: "500m" }, {}, "shrinkable"));
      const back = await waitFor("the refusal to be cleared", async () => {
        const i = await current("shrinkable");
        return i.spec.resources.memoryBytes === 128 * MiB && i.status?.reason === "Running" ? i : undefined;
      });
      expect(back.metadata.uid).toBe(uid);
      expect(back.status?.pid).toBe(pid);
      expect(back.status?.message).toBeUndefined();
    },
  );
});
