// An agent that loses its local state while its containers run (issue 11):
// the agent is killed with SIGKILL, its runtime state (/run/grove/<parent>)
// and its --state-dir are deleted (rm -rf: the network namespace bind mounts
// in it are busy and stay), and it is started again. It must rebuild from a
// scan of the host (cgroups under its parent, the shims, the namespaces) and
// the desired set: the same containers (same pids), no duplicate, no second
// IP handed out, and nothing leaked (cgroup, netns, veth, iptables rule, port,
// IP) once the App is gone. Real etcd, grove-server, an agent as a host in a
// network namespace, real CNI plugins.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import { HostCluster, type Host } from "./harness/hosts";
import { waitFor, waitNodeReady } from "./harness/processes";

interface Seen {
  name: string;
  uid: string;
  pid: number;
  ip: string;
  hostPort: number;
}

/** What instance networking and the runtime have made on a host, as the host shows it. */
interface Scan {
  cgroups: string[];
  shims: number;
  netnsMounts: number;
  veths: number;
  egressChains: number;
  /** host-local allocations: address -> container id. */
  ipam: Record<string, string>;
  /** iptables lines (filter and nat) naming any of `uids` or `ips`. */
  rulesNaming: number;
}

function app(instances: number): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "lost", namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: [
        "/bin/sh",
        "-c",
        "d=/tmp/w-$(hostname); mkdir -p $d; hostname > $d/index.html; exec httpd -f -p 8080 -h $d",
      ],
      instances,
      stopGracePeriodSeconds: 1,
      resources: { cpu: "50m", memory: "16Mi", pids: 16 },
      // A host port from the dynamic range: portmap DNAT rules to keep or to leak.
      ports: [{ name: "http", containerPort: 8080 }],
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("agent state loss: rebuilt from the host and the desired set", () => {
  let cluster: HostCluster;
  let client: GroveClient;
  let host: Host;

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 1 });
    client = cluster.adminClient();
    host = cluster.host("h1");
    await waitNodeReady(client, host.name, 60_000);
  }, 180_000);

  afterAll(async () => {
    await cluster?.destroy();
  }, 120_000);

  async function running(count: number): Promise<Seen[]> {
    return waitFor(
      `${count} Running instances of lost`,
      async () => {
        const items = (await client.list("Instance", { namespace: "default" })).items.filter(
          (i: Instance) => i.spec.app === "lost" && i.status?.state === "Running" && i.status.ip && i.status.pid,
        );
        if (items.length !== count) return undefined;
        return items
          .map((i) => ({
            name: i.metadata.name,
            uid: i.metadata.uid ?? "",
            pid: i.status!.pid!,
            ip: i.status!.ip!,
            hostPort: i.status!.ports?.[0]?.hostPort ?? 0,
          }))
          .sort((a, b) => a.name.localeCompare(b.name));
      },
      120_000,
    );
  }

  function scan(uids: string[], ips: string[]): Scan {
    const cgroupDir = path.join("/sys/fs/cgroup/pids", host.cgroupParent);
    const cgroups = fs.existsSync(cgroupDir)
      ? fs
          .readdirSync(cgroupDir, { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => e.name)
          .sort()
      : [];
    let shims = 0;
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        if (fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "grove-shim") continue;
        // Ours: the shim of a container in this host's cgroups (its child is in one).
        const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
        if (children.some((c) => c && fs.readFileSync(`/proc/${c}/cgroup`, "utf8").includes(`/${host.cgroupParent}/`)))
          shims++;
      } catch {
        /* gone meanwhile */
      }
    }
    const netnsDir = path.join(host.stateDir, "network", "netns");
    const mounts = fs.readFileSync("/proc/self/mountinfo", "utf8");
    const netnsMounts = mounts.split("\n").filter((l) => (l.split(" ")[4] ?? "").startsWith(netnsDir + "/")).length;
    // The instances' host ends (the host's own eth0 is a veth too).
    const veths = cluster
      .exec(host, "ip", ["-o", "link", "show", "type", "veth"])
      .split("\n")
      .filter((l) => l && !/^\d+: eth0@/.test(l)).length;
    const filter = cluster.exec(host, "iptables", ["-w", "10", "-S"]);
    const nat = cluster.exec(host, "iptables", ["-w", "10", "-t", "nat", "-S"]);
    const egressChains = filter.split("\n").filter((l) => l.startsWith("-N GROVE-EG-")).length;
    const rulesNaming = [...filter.split("\n"), ...nat.split("\n")].filter((l) =>
      [...uids, ...ips.map((ip) => `${ip}/32`)].some((x) => l.includes(x)),
    ).length;
    const ipamDir = path.join(host.stateDir, "network", "ipam", "grove");
    const ipam: Record<string, string> = {};
    for (const f of fs.existsSync(ipamDir) ? fs.readdirSync(ipamDir) : []) {
      if (/^\d+\.\d+\.\d+\.\d+$/.test(f)) ipam[f] = fs.readFileSync(path.join(ipamDir, f), "utf8").split(/\r?\n/)[0]!;
    }
    return { cgroups, shims, netnsMounts, veths, egressChains, ipam, rulesNaming };
  }

  async function get(url: string): Promise<string> {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
    return (await res.text()).trim();
  }

  it("deleting the agent's state dir and runtime state while 3 containers run: the restarted agent adopts them, nothing doubles or leaks", async () => {
    await client.apply(app(3));
    const before = await running(3);
    const uids = before.map((i) => i.uid);
    const ips = before.map((i) => i.ip);
    const scanBefore = scan(uids, ips);
    expect(scanBefore.cgroups).toEqual([...uids].sort());
    expect(scanBefore).toMatchObject({ shims: 3, netnsMounts: 3, veths: 3, egressChains: 3 });
    expect(Object.keys(scanBefore.ipam).sort()).toEqual([...ips].sort());
    expect(scanBefore.rulesNaming).toBeGreaterThan(0);

    // The agent dies and its state goes with it.
    await host.agent!.kill9();
    fs.rmSync(path.join("/run/grove", host.cgroupParent), { recursive: true, force: true });
    try {
      execFileSync("rm", ["-rf", host.stateDir], { stdio: "ignore" });
    } catch {
      // The instances' network namespace files are mount points: busy, they stay (as with any rm -rf).
    }
    expect(fs.existsSync(path.join(host.stateDir, "network", "ipam"))).toBe(false);
    expect(fs.existsSync(path.join(host.stateDir, "network", "network.json"))).toBe(false);
    for (const i of before) expect(alive(i.pid)).toBe(true);

    await cluster.startAgent(host);
    // Time for a restarted agent to do what it does to what it found (kill and restart, or adopt).
    await new Promise((r) => setTimeout(r, 10_000));
    for (const i of before) expect({ name: i.name, alive: alive(i.pid) }).toEqual({ name: i.name, alive: true });
    await waitFor(
      "the agent to adopt all three",
      async () =>
        host.agent!.output.filter((l) => l.includes("adopted a container whose records were lost")).length === 3,
      60_000,
    );
    // The same instances, the same processes, the same addresses: nothing restarted, nothing doubled.
    const after = await running(3);
    expect(after).toEqual(before);
    for (const i of before) expect(alive(i.pid)).toBe(true);
    const insts = (await client.list("Instance", { namespace: "default" })).items.filter((i) => i.spec.app === "lost");
    expect(insts.map((i) => i.spec.restarts)).toEqual([0, 0, 0]);
    const scanAfter = scan(uids, ips);
    expect({ ...scanAfter, rulesNaming: undefined }).toEqual({ ...scanBefore, rulesNaming: undefined });
    expect(scanAfter.rulesNaming).toBe(scanBefore.rulesNaming);
    // Published ports still lead to the right container.
    for (const i of before) expect(await get(`http://${host.address}:${i.hostPort}/`)).toBe(i.name);
    const timeOf = (msg: string) =>
      Math.max(
        ...host.agent!.output.filter((l) => l.includes(msg)).map((l) => (JSON.parse(l) as { time: number }).time),
      );
    const adoptedMs = timeOf("adopted a container whose records were lost") - timeOf('"msg":"grove-agent started"');
    console.log(`state loss: 3 containers adopted ${(adoptedMs / 1000).toFixed(1)}s after the agent started`);

    // New instances get new addresses: none of the adopted ones is handed out again.
    await client.apply(app(5));
    const five = await running(5);
    expect(new Set(five.map((i) => i.ip)).size).toBe(5);
    expect(five.filter((i) => uids.includes(i.uid))).toEqual(before);
    const allUids = five.map((i) => i.uid);
    const allIps = five.map((i) => i.ip);
    expect(Object.entries(scan(allUids, allIps).ipam).sort()).toEqual(
      five.map((i) => [i.ip, i.uid] as [string, string]).sort(),
    );

    // Gone: nothing of the five is left on the host.
    await client.delete("App", "lost", "default");
    await waitFor(
      "every instance of lost gone from the host",
      async () => scan(allUids, allIps).cgroups.length === 0 && scan(allUids, allIps).netnsMounts === 0,
      90_000,
    );
    await waitFor(
      "the host clean",
      async () => {
        const s = scan(allUids, allIps);
        return s.shims === 0 &&
          s.veths === 0 &&
          s.egressChains === 0 &&
          Object.keys(s.ipam).length === 0 &&
          s.rulesNaming === 0
          ? s
          : undefined;
      },
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; last scan: ${JSON.stringify(scan(allUids, allIps))}`);
    });
    for (const i of five) expect(alive(i.pid)).toBe(false);
  }, 600_000);
});
