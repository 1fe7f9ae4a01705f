// End to end on real components: a real etcd (embedded in grove-server), the
// real grove-server and grove-agent processes, the real native addon on this
// kernel. The App's process is checked from the host's /proc and cgroupfs.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import { NODE_GRACE_MS, PRESENCE_REFRESH_MS } from "@grove/control-plane";
import { REPO_ROOT, runCli, waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "it-node-1";
const CGROUP_PARENT = `grove-it-${RUN_TAG}`;
const V1 = fs.existsSync("/sys/fs/cgroup/memory/cgroup.procs");

function cgroupDir(controller: string, id: string): string {
  return V1 ? `/sys/fs/cgroup/${controller}/${CGROUP_PARENT}/${id}` : `/sys/fs/cgroup/${CGROUP_PARENT}/${id}`;
}

function readCg(controller: string, id: string, v1file: string, v2file: string): string {
  return fs.readFileSync(path.join(cgroupDir(controller, id), V1 ? v1file : v2file), "utf8").trim();
}

function app(name: string, command: string[], spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: { rootfs: "busybox", command, instances: 1, stopGracePeriodSeconds: 1, ...spec },
  };
}

function pidsOf(procs: string): number[] {
  return procs.split("\n").filter(Boolean).map(Number);
}

describe("walking skeleton: grove apply runs a limited, isolated process on an agent node", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started;
  let client: GroveClient;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    m = await startMachine("grove-it");
    ({ dir, server } = m);
    agent = await m.startAgent({
      nodeName: NODE,
      cgroupParent: CGROUP_PARENT,
    });
    client = m.client;
    env = m.env;
    await waitNodeReady(client, NODE);
  });

  afterAll(async () => {
    await agent?.stop();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function instancesOf(appName: string): Promise<Instance[]> {
    const list = await client.list("Instance", { namespace: "default" });
    return list.items.filter((i) => i.spec.app === appName);
  }

  async function waitState(appName: string, state: string): Promise<Instance> {
    return waitFor(`${appName} to be ${state}`, async () => {
      const [i] = await instancesOf(appName);
      return i?.status?.state === state ? i : undefined;
    });
  }

  async function deleteApp(name: string): Promise<void> {
    await client.delete("App", name, "default");
    await waitFor(`${name}'s instances to be gone`, async () => (await instancesOf(name)).length === 0);
  }

  test("an App with memory and pids limits runs as PID 1 in its own namespaces and cgroup", async () => {
    await client.apply(
      app("limited", ["/bin/sh", "-c", "echo started; sleep 600"], {
        resources: { memory: "64Mi", pids: 32, cpu: "250m" },
      }),
    );
    const inst = await waitState("limited", "Running");
    const uid = inst.metadata.uid!;
    const pid = inst.status!.pid!;
    expect(pid).toBeGreaterThan(1);

    // PID 1 in its own pid namespace.
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    expect(status).toMatch(new RegExp(`^NSpid:\\s+${pid}\\s+1$`, "m"));
    // Its own mount, uts, ipc, net and pid namespaces.
    for (const ns of ["pid", "mnt", "uts", "ipc", "net"]) {
      expect(fs.readlinkSync(`/proc/${pid}/ns/${ns}`)).not.toBe(fs.readlinkSync(`/proc/self/ns/${ns}`));
    }
    // A cgroup carrying the limits, holding the process.
    expect(Number(readCg("memory", uid, "memory.limit_in_bytes", "memory.max"))).toBe(64 * 2 ** 20);
    expect(readCg("pids", uid, "pids.max", "pids.max")).toBe("32");
    if (V1) expect(readCg("cpu", uid, "cpu.cfs_quota_us", "cpu.max")).toBe("25000");
    else expect(readCg("cpu", uid, "", "cpu.max")).toBe("25000 100000");
    expect(pidsOf(readCg("memory", uid, "cgroup.procs", "cgroup.procs"))).toContain(pid);
    // Running in the API, on our node, and in the CLI's JSON.
    expect(inst.status!.nodeName).toBe(NODE);
    const out = await runCli(["get", "instances", "-o", "json"], env);
    expect(out.code).toBe(0);
    const listed = JSON.parse(out.stdout) as { items: Instance[] };
    expect(listed.items.find((i) => i.metadata.uid === uid)?.status?.state).toBe("Running");

    await deleteApp("limited");
    await waitFor("the process to be gone", async () => !fs.existsSync(`/proc/${pid}`));
    await waitFor("its cgroup to be removed", async () => !fs.existsSync(cgroupDir("memory", uid)));
  });

  test("allocating past the memory limit ends OOMKilled in the API", async () => {
    await client.apply(
      app("hog", ["/bin/sh", "-c", "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done"], {
        resources: { memory: "32Mi", pids: 16 },
        restartPolicy: "Never",
      }),
    );
    const inst = await waitState("hog", "OOMKilled");
    expect(inst.status?.reason).toBe("OOMKilled");
    await deleteApp("hog");
    await waitFor("its cgroup to be removed", async () => !fs.existsSync(cgroupDir("memory", inst.metadata.uid!)));
  });

  test("a fork bomb stops at the pids limit and the node stays healthy", async () => {
    await client.apply(
      // A subshell forks until the kernel refuses (busybox sh then exits), and
      // PID 1 execs (no fork needed) so the container stays up at the limit.
      app("forkbomb", ["/bin/sh", "-c", "(while true; do sleep 600 & done) 2>/dev/null; exec sleep 600"], {
        resources: { pids: 20, memory: "64Mi" },
        restartPolicy: "Never",
      }),
    );
    const inst = await waitState("forkbomb", "Running");
    const uid = inst.metadata.uid!;
    await waitFor("the pids limit to be reached", async () => {
      const current = Number(readCg("pids", uid, "pids.current", "pids.current"));
      return current >= 18;
    });
    // Held at the limit for longer than the node grace (a wedged agent would
    // have been marked lost by then), with the node Ready at every look and
    // its presence refreshed, so the agent kept heartbeating throughout.
    const beatBefore = (await client.get("Node", NODE)).status?.lastHeartbeatTime;
    const watchUntil = performance.now() + NODE_GRACE_MS + PRESENCE_REFRESH_MS + 1000;
    while (performance.now() < watchUntil) {
      expect(Number(readCg("pids", uid, "pids.current", "pids.current"))).toBeLessThanOrEqual(20);
      const node = await client.get("Node", NODE);
      expect(node.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
      await new Promise((r) => setTimeout(r, 250));
    }
    const beatAfter = (await client.get("Node", NODE)).status?.lastHeartbeatTime;
    expect(beatAfter).toBeDefined();
    expect(beatAfter).not.toBe(beatBefore);
    const procs = pidsOf(readCg("pids", uid, "cgroup.procs", "cgroup.procs"));
    expect(procs.length).toBeGreaterThan(10);

    expect(fs.existsSync(cgroupDir("pids", uid))).toBe(true); // so the wait below means something
    await deleteApp("forkbomb");
    await waitFor("every process of the fork bomb to be gone", async () =>
      procs.every((p) => !fs.existsSync(`/proc/${p}`)),
    );
    await waitFor("its cgroup to be removed", async () => !fs.existsSync(cgroupDir("pids", uid)));
  });

  test("an instance that fits nowhere stays Pending with the reason", async () => {
    await client.apply(app("huge", ["/bin/true"], { resources: { memory: "64Ti" } }));
    const inst = await waitFor("huge to be unschedulable", async () => {
      const [i] = await instancesOf("huge");
      return i?.status?.reason === "Unschedulable" ? i : undefined;
    });
    expect(inst.status?.state).toBe("Pending");
    expect(inst.status?.message).toBe("memory: insufficient on 1 of 1 nodes");
    await deleteApp("huge");
  });

  test("an instance that exits is reported with its exit code and replaced per its restart policy", async () => {
    await client.apply(app("exits", ["/bin/sh", "-c", "exit 7"], { restartPolicy: "Never" }));
    const inst = await waitState("exits", "Failed");
    expect(inst.status?.exitCode).toBe(7);

    await client.apply(app("restarts", ["/bin/sh", "-c", "sleep 0.2; exit 3"], { restartPolicy: "OnFailure" }));
    const replaced = await waitFor("a replacement instance", async () => {
      const [i] = await instancesOf("restarts");
      return i && i.spec.restarts >= 1 ? i : undefined;
    });
    expect(replaced.metadata.name).toBe("restarts-0");
    await deleteApp("exits");
    await deleteApp("restarts");
  });

  test("bad input is refused with file:line:col and the field path, and nothing is written", async () => {
    const bad = path.join(dir, "bad.yaml");
    fs.writeFileSync(
      bad,
      [
        "apiVersion: grove/v1",
        "kind: App",
        "metadata:",
        "  name: good-one",
        "spec:",
        "  rootfs: busybox",
        "  command: [/bin/true]",
        "  instances: 1",
        "---",
        "apiVersion: grove/v1",
        "kind: App",
        "metadata:",
        "  name: bad-one",
        "spec:",
        "  rootfs: busybox",
        "  command: [/bin/true]",
        "  instances: lots",
        "",
      ].join("\n"),
    );
    const out = await runCli(["apply", "-f", bad], env);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain(`${bad}:17:14`);
    expect(out.stderr).toContain("spec.instances");
    await expect(client.get("App", "good-one", "default")).rejects.toMatchObject({ code: "NotFound" });

    const unknown = path.join(dir, "unknown.yaml");
    fs.writeFileSync(unknown, "apiVersion: grove/v1\nkind: Pod\nmetadata:\n  name: x\nspec: {}\n");
    const out2 = await runCli(["apply", "-f", unknown], env);
    expect(out2.code).not.toBe(0);
    expect(out2.stderr).toMatch(/App/);

    // The API answers 400 with the field path, and 401 without a token.
    const res = await fetch(`${server.url}/v1/namespaces/default/apps/x`, {
      method: "PUT",
      headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(app("x", [])),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("/spec/command");
    const anon = await fetch(`${server.url}/v1/apps`);
    expect(anon.status).toBe(401);
  });

  test("the CLI applies, gets, describes and deletes the example", async () => {
    const example = path.join(REPO_ROOT, "examples", "hello.yaml");
    const applied = await runCli(["apply", "-f", example, "--wait", "--timeout", "60s"], env);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain("app/hello created");
    const got = await runCli(["get", "instances"], env);
    expect(got.stdout).toMatch(/hello-0\s.*Running/);
    expect(got.stdout).toMatch(/hello-1\s.*Running/);
    const described = await runCli(["describe", "app", "hello"], env);
    expect(described.code).toBe(0);
    expect(described.stdout).toContain("hello-0");
    const deleted = await runCli(["delete", "-f", example], env);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain("app/hello deleted");
    await waitFor("hello's instances to be gone", async () => (await instancesOf("hello")).length === 0);
  });
});
