// Runtime handlers end to end (docs/runtime.md, "Runtime handlers"): on one
// harness host (its own network namespace, CNI networking), an App with
// `runtimeClass: runc` runs through Debian's runc and one with
// `runtimeClass: grove-runtime` through Grove's own OCI runtime, each driven
// by grove-shim from the bundle the agent writes, next to an App on the
// native path. For all three: logs, exec, stats, the CNI network namespace,
// the seccomp filter, and an agent killed with SIGKILL and started again
// adopting the container and reporting its exit.
// An unknown class fails naming the class and the node; a malformed one is
// refused by the API naming the field.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App } from "@grove/api";
import { HostCluster, type Host } from "./harness/hosts";
import { runCli, waitFor } from "./harness/processes";
import { runningInstance, type SeenInstance } from "./harness/probes";

const RUNC = "/usr/sbin/runc";
const GROVE_RUNTIME = path.resolve(__dirname, "../../agent/native/build/Release/grove-runtime");
/** App name -> its runtimeClass and that runtime's executable. */
const HANDLERS: Record<string, { runtimeClass: string; binary: string }> = {
  viarunc: { runtimeClass: "runc", binary: RUNC },
  viagrove: { runtimeClass: "grove-runtime", binary: GROVE_RUNTIME },
};
const APPS = ["viarunc", "viagrove", "native"];

function app(name: string, runtimeClass?: string): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", `echo hello from ${name}; exec sleep 100000`],
      instances: 1,
      stopGracePeriodSeconds: 1,
      ...(runtimeClass !== undefined ? { runtimeClass } : {}),
    },
  };
}

/** The runtime's view of a container the agent started through it (its --root is in the container's state directory). */
function runtimeState(host: Host, uid: string, binary: string): { status: string; pid: number } | undefined {
  const root = path.join("/run/grove", host.cgroupParent, uid, "runtime");
  if (!fs.existsSync(root) || fs.readdirSync(root).length === 0) return undefined;
  return JSON.parse(execFileSync(binary, ["--root", root, "state", uid], { encoding: "utf8" })) as {
    status: string;
    pid: number;
  };
}

function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

function comm(pid: number): string {
  return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
}

describe("runtime handlers: Apps under runtimeClass runc and grove-runtime next to the native path", () => {
  let cluster: HostCluster;
  let client: GroveClient;
  let host: Host;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 1 });
    client = cluster.adminClient();
    host = cluster.host("h1");
    env = { GROVE_SERVER: cluster.server!.url, GROVE_TOKEN: cluster.server!.adminToken, HOME: cluster.dir };
    for (const [name, h] of Object.entries(HANDLERS)) await client.apply(app(name, h.runtimeClass));
    await client.apply(app("native"));
    for (const name of APPS) await runningInstance(client, name);
  }, 180_000);

  afterAll(async () => {
    await cluster?.destroy();
  }, 120_000);

  // Each test reads the instances as they are now: the SIGKILL test replaces the handlers' containers
  // (new uid, pid and IP), and the tests run in any order.
  it.each(Object.keys(HANDLERS))(
    "starts %s through its runtime, with grove-shim as the container's parent",
    async (name) => {
      const r = await runningInstance(client, name);
      expect(runtimeState(host, r.uid, HANDLERS[name]!.binary)).toMatchObject({ status: "running", pid: r.pid });
      expect(comm(parentOf(r.pid))).toBe("grove-shim");
    },
  );

  it("the native instance never touched a runtime, and has the same kind of parent", async () => {
    const n = await runningInstance(client, "native");
    for (const h of Object.values(HANDLERS)) expect(runtimeState(host, n.uid, h.binary)).toBeUndefined();
    expect(comm(parentOf(n.pid))).toBe("grove-shim");
  });

  it.each(APPS)("%s: logs, exec in the CNI network namespace, stats, Grove's default seccomp filter", async (name) => {
    const s = await runningInstance(client, name);
    await waitFor(`${name}'s log line`, async () => {
      const r = await runCli(["logs", `${name}/0`], env);
      return r.stdout.includes(`hello from ${name}\n`);
    });
    // exec joins the container's namespaces: its network one is the CNI one holding the instance's IP.
    const ex = await runCli(
      ["exec", `${name}/0`, "--", "sh", "-c", "cat /proc/net/fib_trie; echo exit-with 7; exit 7"],
      env,
    );
    expect({ code: ex.code, ip: ex.stdout.includes(`|-- ${s.ip}\n`) }).toEqual({ code: 7, ip: true });
    // ... and the init's cgroups, in every hierarchy (runc puts the init in blkio, cpuset, ...
    // too): read by one process, through one cgroup namespace.
    const cg = await runCli(
      ["exec", `${name}/0`, "--", "sh", "-c", "cat /proc/1/cgroup; echo ---; cat /proc/self/cgroup"],
      env,
    );
    const [init, self] = cg.stdout.split("---\n");
    expect({ code: cg.code, self }).toEqual({ code: 0, self: init });
    // The init runs under a seccomp filter (the bundle's profile for a handler: Grove's default
    // one), and Docker's profile refuses unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN.
    const status = fs.readFileSync(`/proc/${s.pid}/status`, "utf8");
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    const un = await runCli(["exec", `${name}/0`, "--", "unshare", "-U", "true"], env);
    expect(un.code).not.toBe(0);
    const stats = await client.instanceStats(`${name}-0`, "default");
    expect(stats.pids).toBeGreaterThanOrEqual(1);
    expect(stats.memoryBytes).toBeGreaterThan(0);
    expect(stats.cpuUsageNs).toBeGreaterThan(0);
  });

  it("an agent killed with SIGKILL and started again adopts both containers and reports their exits", async () => {
    const seen = new Map<string, SeenInstance>();
    for (const name of APPS) seen.set(name, await runningInstance(client, name));
    await host.agent!.kill9();
    for (const s of seen.values()) process.kill(s.pid, 0); // outlived the agent
    await cluster.startAgent(host);
    for (const name of APPS) {
      const s = seen.get(name)!;
      const again = await runningInstance(client, name);
      expect(again).toEqual(s); // adopted, not restarted
      const ex = await runCli(["exec", `${name}/0`, "--", "echo", "still-here"], env);
      expect(ex).toMatchObject({ code: 0, stdout: "still-here\n" });
      expect((await client.instanceStats(`${name}-0`, "default")).pids).toBeGreaterThanOrEqual(1);
    }
    // The exit of an adopted container reaches the control plane (its shim reports it): it is replaced.
    // Both at once: their replacements start side by side.
    for (const name of Object.keys(HANDLERS)) process.kill(seen.get(name)!.pid, "SIGKILL");
    for (const [name, h] of Object.entries(HANDLERS)) {
      const r = seen.get(name)!;
      const next = await runningInstance(client, name, r.pid);
      expect(runtimeState(host, next.uid, h.binary)).toMatchObject({ status: "running", pid: next.pid });
      // Its shim ran the runtime's delete and the agent removed the container: no runtime state, no cgroup
      // left in any hierarchy.
      await waitFor(`${name}'s ended container's runtime state and cgroups to go`, async () =>
        runtimeState(host, r.uid, h.binary) === undefined &&
        fs
          .readdirSync("/sys/fs/cgroup")
          .every((c) => !fs.existsSync(path.join("/sys/fs/cgroup", c, host.cgroupParent, r.uid)))
          ? true
          : undefined,
      );
    }
  });

  it("an unknown runtimeClass fails naming the class and the node; a malformed one is refused naming the field", async () => {
    await client.apply(app("nohandler", "no-such-runtime"));
    const failed = await waitFor(
      "nohandler-0 to fail",
      async () => {
        const i = await client.get("Instance", "nohandler-0", "default").catch(() => undefined);
        return i?.status?.reason === "UnknownRuntimeClass" ? i.status : undefined;
      },
      60_000,
    );
    expect(failed.message).toContain("runtimeClass no-such-runtime has no handler here");
    expect(failed.message).toContain(`on node ${host.name}`);
    await client.delete("App", "nohandler", "default");

    const bad = (await client.apply(app("badclass", "Not_A_Label")).catch((e: unknown) => e)) as {
      code?: string;
      details?: Array<{ path: string; message: string }>;
    };
    expect(bad.code).toBe("ValidationFailed");
    expect(bad.details?.find((d) => d.path === "/spec/runtimeClass")?.message).toMatch(/pattern/);
    await expect(client.get("App", "badclass", "default")).rejects.toMatchObject({ code: "NotFound" });
  });
});
