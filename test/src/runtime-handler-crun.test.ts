// The crun runtime handler end to end (docs/runtime.md, "Runtime handlers"):
// on one harness host, an App with `runtimeClass: crun` runs through Debian's
// crun, driven by grove-shim from the bundle the agent writes. The agent's
// default handlers map crun (defaultRuntimeHandlers): /usr/bin/crun on a pure
// cgroup v2 host, else agent/bin/crun-hybrid, which runs crun in a mount
// namespace without the unified hierarchy (crun 1.8.1 refuses a host whose
// unified hierarchy holds controllers, as this one's holds hugetlb). Checked:
// crun's own state, grove-shim as the container's parent, the cgroup where
// the native path puts it, logs, exec in the CNI network namespace, the
// seccomp filter, stats, and an agent killed with SIGKILL and started again
// adopting the container and reporting its exit (then crun's state and the
// cgroups are gone).
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App } from "@grove/api";
import { CRUN_HYBRID_PATH, CRUN_PATH, defaultRuntimeHandlers } from "@grove/agent";
import { HostCluster, type Host } from "./harness/hosts";
import { runCli, waitFor } from "./harness/processes";
import { runningInstance } from "./harness/probes";

const NAME = "viacrun";

function app(): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: NAME, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", `echo hello from ${NAME}; exec sleep 100000`],
      instances: 1,
      stopGracePeriodSeconds: 1,
      runtimeClass: "crun",
    },
  };
}

describe("runtime handler crun: an App under runtimeClass crun", () => {
  const handlers = defaultRuntimeHandlers();
  const pureV2 = fs.existsSync("/sys/fs/cgroup/cgroup.controllers");
  let cluster: HostCluster;
  let client: GroveClient;
  let host: Host;
  let env: NodeJS.ProcessEnv;

  /** crun's view of a container (its --root is in the container's state directory), through the handler. */
  function crunState(uid: string): { status: string; pid: number } | undefined {
    const root = path.join("/run/grove", host.cgroupParent, uid, "runtime");
    if (!fs.existsSync(root) || fs.readdirSync(root).length === 0) return undefined;
    return JSON.parse(execFileSync(handlers.crun!, ["--root", root, "state", uid], { encoding: "utf8" })) as {
      status: string;
      pid: number;
    };
  }

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 1 });
    client = cluster.adminClient();
    host = cluster.host("h1");
    env = { GROVE_SERVER: cluster.server!.url, GROVE_TOKEN: cluster.server!.adminToken, HOME: cluster.dir };
    await client.apply(app());
    await runningInstance(client, NAME);
  }, 180_000);

  afterAll(async () => {
    await cluster?.destroy();
  }, 120_000);

  // Each test reads the instance when it starts: the SIGKILL test replaces it (new uid, pid and IP).
  it("the agent's default handlers map crun (through crun-hybrid on a cgroup v1 host), which crun alone refuses here", async () => {
    expect(handlers.crun).toBe(pureV2 ? CRUN_PATH : CRUN_HYBRID_PATH);
    if (pureV2) return;
    // Why the wrapper: crun itself refuses the host while its unified hierarchy holds controllers.
    const controllers = fs.existsSync("/sys/fs/cgroup/unified/cgroup.controllers")
      ? fs.readFileSync("/sys/fs/cgroup/unified/cgroup.controllers", "utf8").trim()
      : "";
    // This host's holds hugetlb. (Without controllers there crun would run as it is: crun-hybrid only
    // hides an empty hierarchy then.)
    if (controllers === "") return;
    // The agent's bundle of the running instance, in a cgroup of its own, run by crun itself.
    const seen = await runningInstance(client, NAME);
    const config = JSON.parse(
      fs.readFileSync(path.join("/run/grove", host.cgroupParent, seen.uid, "bundle", "config.json"), "utf8"),
    ) as { process: { args: string[] }; linux: { cgroupsPath: string } };
    config.process.args = ["/bin/true"];
    config.linux.cgroupsPath = `/${host.cgroupParent}/crun-alone`;
    const bundle = path.join(cluster.dir, "crun-alone");
    fs.mkdirSync(bundle, { recursive: true });
    fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(config));
    const root = path.join(bundle, "state");
    const alone = spawnSync(CRUN_PATH, ["--root", root, "run", "--bundle", bundle, "crun-alone"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 30_000,
    });
    spawnSync(CRUN_PATH, ["--root", root, "delete", "--force", "crun-alone"]);
    expect({ code: alone.status, err: alone.stderr }).toEqual({
      code: 1,
      err: expect.stringContaining(
        "cgroups in hybrid mode not supported, drop all controllers from cgroupv2",
      ) as string,
    });
  });

  it("starts it through crun, with grove-shim as the container's parent and its cgroup where the native path puts it", async () => {
    const seen = await runningInstance(client, NAME);
    expect(crunState(seen.uid)).toMatchObject({ status: "running", pid: seen.pid });
    const stat = fs.readFileSync(`/proc/${seen.pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    expect(fs.readFileSync(`/proc/${ppid}/comm`, "utf8").trim()).toBe("grove-shim");
    const cgroups = fs.readFileSync(`/proc/${seen.pid}/cgroup`, "utf8");
    for (const c of pureV2 ? [""] : ["memory", "pids", "cpu"]) {
      expect(cgroups).toMatch(new RegExp(`^\\d+:[^:\\n]*${c}[^:\\n]*:/${host.cgroupParent}/${seen.uid}$`, "m"));
    }
  });

  it("logs, exec in the CNI network namespace, Grove's default seccomp filter, stats", async () => {
    const seen = await runningInstance(client, NAME);
    await waitFor(`${NAME}'s log line`, async () => {
      const r = await runCli(["logs", `${NAME}/0`], env);
      return r.stdout.includes(`hello from ${NAME}\n`);
    });
    const ex = await runCli(
      ["exec", `${NAME}/0`, "--", "sh", "-c", "cat /proc/net/fib_trie; echo exit-with 7; exit 7"],
      env,
    );
    expect({ code: ex.code, ip: ex.stdout.includes(`|-- ${seen.ip}\n`) }).toEqual({ code: 7, ip: true });
    expect(fs.readFileSync(`/proc/${seen.pid}/status`, "utf8")).toMatch(/^Seccomp:\s+2$/m);
    const un = await runCli(["exec", `${NAME}/0`, "--", "unshare", "-U", "true"], env);
    expect(un.code).not.toBe(0);
    const stats = await client.instanceStats(`${NAME}-0`, "default");
    expect(stats.pids).toBeGreaterThanOrEqual(1);
    expect(stats.memoryBytes).toBeGreaterThan(0);
    expect(stats.cpuUsageNs).toBeGreaterThan(0);
  });

  it("an agent killed with SIGKILL and started again adopts the container and reports its exit", async () => {
    const seen = await runningInstance(client, NAME);
    await host.agent!.kill9();
    process.kill(seen.pid, 0); // outlived the agent
    await cluster.startAgent(host);
    expect(await runningInstance(client, NAME)).toEqual(seen); // adopted, not restarted
    const ex = await runCli(["exec", `${NAME}/0`, "--", "echo", "still-here"], env);
    expect(ex).toMatchObject({ code: 0, stdout: "still-here\n" });
    expect((await client.instanceStats(`${NAME}-0`, "default")).pids).toBeGreaterThanOrEqual(1);
    // The adopted container's exit reaches the control plane through its shim: it is replaced.
    process.kill(seen.pid, "SIGKILL");
    const next = await runningInstance(client, NAME, seen.pid);
    expect(crunState(next.uid)).toMatchObject({ status: "running", pid: next.pid });
    // The shim ran crun's delete and the agent removed the container: no crun state, no cgroup
    // left in any hierarchy.
    await waitFor("the ended container's crun state and cgroups to go", async () =>
      crunState(seen.uid) === undefined &&
      fs
        .readdirSync("/sys/fs/cgroup")
        .every((c) => !fs.existsSync(path.join("/sys/fs/cgroup", c, host.cgroupParent, seen.uid)))
        ? true
        : undefined,
    );
  });
});

describe("agent/bin/crun-hybrid", () => {
  const unified = "/sys/fs/cgroup/unified";
  const isMount = spawnSync("mountpoint", ["-q", unified]).status === 0;

  it("runs crun; an unmount of the unified hierarchy that fails ends it with its own message", () => {
    const ok = spawnSync(CRUN_HYBRID_PATH, ["--version"], { encoding: "utf8", timeout: 30_000 });
    expect({ code: ok.status, out: ok.stdout.split("\n")[0] }).toEqual({
      code: 0,
      out: expect.stringMatching(/^crun version /) as string,
    });
    // An umount that fails (first on PATH: the script's own lookup): where the unified hierarchy
    // is mounted, crun-hybrid says why instead of running crun (which would refuse the host);
    // where it is not, there is nothing to unmount and crun runs.
    const bin = fs.mkdtempSync("/tmp/grove-crun-hybrid-");
    try {
      fs.writeFileSync(path.join(bin, "umount"), "#!/bin/sh\necho 'umount: refused by the test' >&2\nexit 32\n", {
        mode: 0o755,
      });
      const failed = spawnSync(CRUN_HYBRID_PATH, ["--version"], {
        encoding: "utf8",
        timeout: 30_000,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` },
      });
      expect({ code: failed.status, err: failed.stderr }).toEqual(
        isMount
          ? {
              code: 1,
              err: expect.stringContaining(
                `crun-hybrid: cannot unmount ${unified} in its own mount namespace`,
              ) as string,
            }
          : { code: 0, err: "" },
      );
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });
});
