// An App's security settings (user, capabilities, seccomp, read-only root)
// travel API -> control plane -> agent -> runtime, and the container's
// process shows them (read from the host's /proc). Real server, etcd, agent.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import { waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG, runSlot } from "./harness/run-id";

const NODE = "it-sec-1";
const CGROUP_PARENT = `grove-it-${RUN_TAG}-sec`;
/** This agent's user namespace pool: 4 ranges of 65536 ids of its own (ids < 2^32). */
const USERNS_BASE = 400_000_000 + runSlot(10_000) * 4 * 65536;

function app(name: string, spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", "touch /probe 2>/dev/null; sleep 600"],
      instances: 1,
      stopGracePeriodSeconds: 0,
      ...spec,
    },
  };
}

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const m = /^(\w+):\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

describe("App security settings reach the container", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started;
  let client: GroveClient;

  beforeAll(async () => {
    m = await startMachine("grove-it-sec");
    ({ dir, server } = m);
    agent = await launchAgent();
    client = m.client;
    await waitNodeReady(client, NODE);
  });

  function launchAgent(): Promise<Started> {
    return m.startAgent({
      nodeName: NODE,
      cgroupParent: CGROUP_PARENT,
      extraArgs: ["--userns-range", `${USERNS_BASE}:65536x4`],
    });
  }

  afterAll(async () => {
    const apps = (await client?.list("App", { namespace: "default" }).catch(() => undefined))?.items ?? [];
    for (const a of apps) await client.delete("App", a.metadata.name, "default").catch(() => undefined);
    await waitFor(
      "the instances to be gone",
      async () => (await client.list("Instance", { namespace: "default" })).items.length === 0,
    ).catch(() => undefined);
    await agent?.stop();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function running(name: string): Promise<Instance> {
    return waitFor(`${name} to be Running`, async () => {
      const list = await client.list("Instance", { namespace: "default" });
      const i = list.items.find((x) => x.spec.app === name);
      return i?.status?.state === "Running" && i.status.pid ? i : undefined;
    });
  }

  /**
   * Deletes every App with a user namespace and waits until their instances
   * are gone, so the agent's pool is empty and the next pool range handed
   * out is the lowest: the tests below start from that state whatever ran
   * before them.
   */
  async function emptyUsernsPool(): Promise<void> {
    const apps = (await client.list("App", { namespace: "default" })).items.filter(
      (a) => a.spec.security?.userNamespace !== undefined && a.spec.security.userNamespace !== false,
    );
    const names = new Set(apps.map((a) => a.metadata.name));
    for (const name of names) await client.delete("App", name, "default");
    await waitFor("the user-namespaced instances to be gone", async () => {
      const list = await client.list("Instance", { namespace: "default" });
      return !list.items.some((x) => names.has(x.spec.app));
    });
  }

  test("user, capabilities, seccomp and a read-only root from the App; defaults without them", async () => {
    await client.apply(
      app("hardened", {
        security: {
          user: "nobody",
          capabilities: { drop: ["ALL"], add: ["CAP_NET_BIND_SERVICE"] },
          seccomp: "unconfined",
          readOnlyRootFilesystem: true,
        },
      }),
    );
    await client.apply(app("plain"));
    const hardened = status((await running("hardened")).status!.pid!);
    expect(hardened.Uid?.split(/\s+/)[0]).toBe("65534");
    expect(hardened.CapBnd).toBe("0000000000000400"); // NET_BIND_SERVICE only
    expect(hardened.CapEff).toBe("0000000000000000"); // not root: none effective
    expect(hardened.Seccomp).toBe("0");
    expect(hardened.NoNewPrivs).toBe("1");

    const plainInstance = await running("plain");
    const plain = status(plainInstance.status!.pid!);
    expect(plain.Uid?.split(/\s+/)[0]).toBe("0");
    expect(plain.CapBnd).toBe("00000000a80425fb");
    expect(plain.Seccomp).toBe("2");
    // The read-only root refused the write; the default one took it, into its own upper layer.
    const upper = path.join(dir, "agent", "roots", plainInstance.metadata.uid!, "upper");
    await waitFor("the plain instance's probe", async () => fs.existsSync(path.join(upper, "probe")));
    expect(fs.existsSync(path.join(dir, "rootfs", "busybox", "probe"))).toBe(false);
  });

  test("security.userNamespace: root of each instance is a range of the agent's pool; an explicit range is used as given", async () => {
    await emptyUsernsPool();
    await client.apply(app("userns", { instances: 2, security: { userNamespace: true } }));
    const explicitUid = USERNS_BASE + 4 * 65536;
    await client.apply(
      app("userns-explicit", {
        security: { userNamespace: { hostUid: explicitUid, hostGid: explicitUid + 65536, size: 65536 } },
      }),
    );
    const instances = await waitFor("both userns instances to be Running", async () => {
      const list = await client.list("Instance", { namespace: "default" });
      const mine = list.items.filter((x) => x.spec.app === "userns" && x.status?.state === "Running" && x.status.pid);
      return mine.length === 2 ? mine : undefined;
    });
    const uids = instances.map((i) => Number(status(i.status!.pid!).Uid?.split(/\s+/)[0]));
    // Distinct ranges of the pool, one per instance.
    expect(uids.sort()).toEqual([USERNS_BASE, USERNS_BASE + 65536]);
    for (const i of instances) {
      const pid = i.status!.pid!;
      const uid = Number(status(pid).Uid?.split(/\s+/)[0]);
      expect(fs.readFileSync(`/proc/${pid}/uid_map`, "utf8").trim().split(/\s+/)).toEqual(["0", String(uid), "65536"]);
    }
    const explicit = status((await running("userns-explicit")).status!.pid!);
    expect(explicit.Uid?.split(/\s+/)[0]).toBe(String(explicitUid));
    expect(explicit.Gid?.split(/\s+/)[0]).toBe(String(explicitUid + 65536));
    expect(explicit.CapEff).toBe("00000000a80425fb"); // root of its own namespace

    // Deleting the App frees its ranges: a new App gets the lowest again.
    await client.delete("App", "userns", "default");
    await waitFor("the userns instances to be gone", async () => {
      const list = await client.list("Instance", { namespace: "default" });
      return !list.items.some((x) => x.spec.app === "userns");
    });
    await client.apply(app("userns", { security: { userNamespace: true } }));
    const again = status((await running("userns")).status!.pid!);
    expect(again.Uid?.split(/\s+/)[0]).toBe(String(USERNS_BASE));
  });

  test("after an agent kill -9 and restart, the adopted instance keeps its range and a new one gets another", async () => {
    await emptyUsernsPool();
    await client.apply(app("userns-adopted", { security: { userNamespace: true } }));
    const before = await running("userns-adopted");
    expect(status(before.status!.pid!).Uid?.split(/\s+/)[0]).toBe(String(USERNS_BASE));
    await agent.kill9();
    agent = await launchAgent();
    await client.apply(app("userns-2", { security: { userNamespace: true } }));
    const next = status((await running("userns-2")).status!.pid!);
    // Slot 0 is the adopted container's (from its recorded range): the new one gets slot 1.
    expect(next.Uid?.split(/\s+/)[0]).toBe(String(USERNS_BASE + 65536));
    const after = await running("userns-adopted");
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.status!.pid).toBe(before.status!.pid);
    expect(status(after.status!.pid!).Uid?.split(/\s+/)[0]).toBe(String(USERNS_BASE));
  });

  test("a malformed userNamespace is refused at apply with the field path", async () => {
    await expect(
      client.apply(app("badns", { security: { userNamespace: { hostUid: 0, hostGid: 5 } } })),
    ).rejects.toThrow(/security\/userNamespace|security\.userNamespace/);
    await expect(client.get("App", "badns", "default")).rejects.toMatchObject({ code: "NotFound" });
  });

  test("an unknown capability is refused at apply with the field path, and nothing is written", async () => {
    await expect(client.apply(app("badcaps", { security: { capabilities: { add: ["CAP_NOPE"] } } }))).rejects.toThrow(
      /security\/capabilities\/add\/0|security\.capabilities\.add\[0\]/,
    );
    await expect(client.get("App", "badcaps", "default")).rejects.toMatchObject({ code: "NotFound" });
  });
});
