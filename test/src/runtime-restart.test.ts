// Containers outlive the agent: the real grove-server (embedded etcd) and a
// real grove-agent that is killed with SIGKILL and started again 10 times in
// a row, once in the middle of a container start. Each container is run by
// its grove-shim, so the same PIDs keep running, the control plane sees no
// restart, an exit that happened while the agent was down is reported with
// its code, and nothing is left behind.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import { waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "it-restart-1";
const CGROUP_PARENT = `grove-it-${RUN_TAG}-rs`;
const SHIM_STATE = `/run/grove/${CGROUP_PARENT}`;
const V1 = fs.existsSync("/sys/fs/cgroup/memory/cgroup.procs");
const RESTARTS = 10;
const MID_START_AT = 6;
const EXIT_AT = 3;

function app(name: string, command: string[], spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: { rootfs: "busybox", command, instances: 1, stopGracePeriodSeconds: 0, ...spec },
  };
}

function containerCgroups(): string[] {
  const dir = V1 ? `/sys/fs/cgroup/pids/${CGROUP_PARENT}` : `/sys/fs/cgroup/${CGROUP_PARENT}`;
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/** Live grove-shim processes of this test's containers (by their state dir's ids). */
function shims(ids: Set<string>): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      const stat = fs.readFileSync(`/proc/${p}/stat`, "utf8");
      if (argv[0] === "grove-shim" && ids.has(argv[1] ?? "") && !/\) Z /.test(stat)) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

describe("containers outlive the agent", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started | undefined;
  let client: GroveClient;
  const allUids = new Set<string>();

  async function boot(env: NodeJS.ProcessEnv = {}): Promise<Started> {
    return m.startAgent({
      nodeName: NODE,
      cgroupParent: CGROUP_PARENT,
      stopContainersOnExit: false,
      env,
    });
  }

  async function instancesOf(appName: string): Promise<Instance[]> {
    const list = await client.list("Instance", { namespace: "default" });
    const items = list.items.filter((i) => i.spec.app === appName);
    for (const i of items) allUids.add(i.metadata.uid!);
    return items.sort((a, b) => a.spec.index - b.spec.index);
  }

  beforeAll(async () => {
    m = await startMachine("grove-it-rs");
    ({ dir, server } = m);
    client = m.client;
    agent = await boot();
    await waitNodeReady(client, NODE);
  });

  afterAll(async () => {
    // Delete what runs, with an agent up to stop it; then kill what is left.
    try {
      agent ??= await boot();
      for (const name of ["survivor", "quitter", "midstart"]) {
        await client.delete("App", name, "default").catch(() => undefined);
      }
      await waitFor(
        "every instance to be gone",
        async () => (await client.list("Instance", { namespace: "default" })).items.length === 0,
        60_000,
      );
      await waitFor("the containers to be removed", async () => containerCgroups().length === 0, 30_000);
    } finally {
      await agent?.stop();
      await server?.stop();
      for (const pid of shims(allUids)) process.kill(pid, "SIGKILL");
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(fs.existsSync(SHIM_STATE)).toBe(false);
    expect(shims(allUids)).toEqual([]);
  });

  test(`kill -9 and restart the agent ${RESTARTS} times: same PIDs, no restarts, exits reported`, async () => {
    await client.apply(app("survivor", ["/bin/sh", "-c", "sleep 100000"], { instances: 3 }));
    // Exits with 42 once /tmp/quit-now appears in its root (created while the agent is down).
    await client.apply(
      app("quitter", ["/bin/sh", "-c", "while [ ! -f /tmp/quit-now ]; do sleep 0.1; done; exit 42"], {
        restartPolicy: "Never",
      }),
    );
    const running = async (name: string, n: number) =>
      waitFor(
        `${name} to have ${n} Running instances`,
        async () => {
          const items = await instancesOf(name);
          return items.length === n && items.every((i) => i.status?.state === "Running" && i.status.pid) && items;
        },
        60_000,
      );
    const before = await running("survivor", 3);
    const quitter = (await running("quitter", 1))[0]!;
    const pids = new Map(before.map((i) => [i.metadata.uid!, i.status!.pid!]));
    const restartsBefore = before.map((i) => i.spec.restarts);
    for (const pid of pids.values()) expect(alive(pid)).toBe(true);
    expect(shims(new Set([...pids.keys(), quitter.metadata.uid!])).length).toBe(4);

    let midstartUid: string | undefined;
    for (let round = 1; round <= RESTARTS; round++) {
      if (round === MID_START_AT) {
        // A new App while the next agent pauses inside the runtime's start
        // (shim and container up, start() not returned): kill it right there.
        await agent!.kill9();
        agent = await boot({ GROVE_AGENT_PAUSE_IN_START_MS: "60000" });
        await client.apply(app("midstart", ["/bin/sh", "-c", "sleep 100000"]));
        await waitFor(
          "the agent to be inside a container start",
          async () =>
            agent!.output.some((l) => l.includes("starting instance") && l.includes("midstart")) &&
            fs.existsSync(SHIM_STATE) &&
            fs.readdirSync(SHIM_STATE).some((id) => {
              const spec = path.join(SHIM_STATE, id, "spec.json");
              return (
                fs.existsSync(path.join(SHIM_STATE, id, "state")) && fs.readFileSync(spec, "utf8").includes("midstart")
              );
            }),
          30_000,
        );
      }
      await agent!.kill9();
      agent = undefined;
      if (round === EXIT_AT) {
        // Into the quitter's own (private) root, through its process.
        fs.writeFileSync(`/proc/${quitter.status!.pid!}/root/tmp/quit-now`, "");
        await waitFor("the quitter to exit while the agent is down", async () => !alive(quitter.status!.pid!));
      }
      // Nothing stopped with the agent.
      for (const pid of pids.values()) expect(alive(pid)).toBe(true);
      agent = await boot();

      const after = await running("survivor", 3);
      expect(new Map(after.map((i) => [i.metadata.uid!, i.status!.pid!]))).toEqual(pids);
      expect(after.map((i) => i.spec.restarts)).toEqual(restartsBefore);
      if (round >= EXIT_AT) {
        const [q] = await waitFor(
          "the quitter's exit to be reported",
          async () => {
            const items = await instancesOf("quitter");
            return items[0]?.status?.state === "Failed" && items;
          },
          30_000,
        );
        expect(q!.metadata.uid).toBe(quitter.metadata.uid);
        expect(q!.status).toMatchObject({ state: "Failed", exitCode: 42, pid: quitter.status!.pid });
      }
      if (round >= MID_START_AT) {
        const [m] = await running("midstart", 1);
        midstartUid ??= m!.metadata.uid!;
        expect(m!.metadata.uid).toBe(midstartUid);
        expect(m!.spec.restarts).toBe(0);
      }
    }

    // Nothing leaked: one cgroup, one shim, one state directory per live container.
    const live = [...pids.keys(), midstartUid!].sort();
    await waitFor("the quitter's leftovers to be removed", async () => containerCgroups().length === live.length);
    expect(containerCgroups()).toEqual(live);
    expect(fs.readdirSync(SHIM_STATE).sort()).toEqual(live);
    expect(shims(new Set(live)).length).toBe(live.length);
    expect(shims(new Set([quitter.metadata.uid!]))).toEqual([]);
  });
});
