// A cluster of agent hosts on one machine: every host is a network namespace
// (grove-<run tag>-hN) joined to a bridge in the machine's namespace by a veth
// pair, with its own address, state directory and cgroup parent. The control
// plane (and its etcd) runs on the machine; agents dial it on the bridge
// address. Tests can stop a host's agent, cut its link and slow it. destroy()
// removes every namespace, veth, bridge, mount, cgroup and process the
// cluster made, also after a failed test or an agent killed with SIGKILL.
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { NativeRuntime } from "@grove/agent";
import { GroveClient } from "@grove/api";
import {
  REPO_ROOT,
  isReady,
  startAgent,
  startServer,
  tempDir,
  waitFor,
  type ServerProcess,
  type Started,
} from "./processes";
import { Cleanup, cgroupGone, linkGone, netnsGone } from "./cleanup";
import { RUN_TAG } from "./run-id";

const execAsync = promisify(execFile);

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function trySh(cmd: string, args: string[]): boolean {
  try {
    sh(cmd, args);
    return true;
  } catch {
    return false;
  }
}

export interface Host {
  /** Node name (also the agent's --node-name). */
  name: string;
  index: number;
  /** Network namespace name under /run/netns. */
  netns: string;
  /** The host's address on the bridge. */
  address: string;
  /** The machine-side end of the host's veth pair. */
  veth: string;
  stateDir: string;
  cgroupParent: string;
  agent?: Started;
}

export interface HostClusterOptions {
  hosts: number;
  /** Prefix of everything the cluster names; must be unique per run and worker (default: the run tag, run-id.ts). */
  id?: string;
  /** Extra grove-server flags (e.g. --egress-default allow). */
  serverArgs?: string[];
  /** Extra grove-agent flags for every host. */
  agentArgs?: string[];
  /** Extra environment for every agent. */
  agentEnv?: NodeJS.ProcessEnv;
  /** More control-plane replicas' gRPC addresses every agent is given (--server), from the bridge's address. */
  moreServers?: (gateway: string) => string[];
}

/** An IPv4 /24 on the machine that no existing route covers, starting from a guess made from the cluster's id. */
function freeBridgeSubnet(id: string): string {
  let seed = 0;
  for (const c of id) seed = (seed * 31 + c.charCodeAt(0)) % 4096;
  const routes = sh("ip", ["-4", "route", "show", "table", "all"]);
  for (let k = 0; k < 4096; k++) {
    const n = (seed + k) % 4096;
    const prefix = `172.${16 + (n % 16)}.${Math.floor(n / 16) % 256}`;
    if (!routes.includes(`${prefix}.`)) return prefix;
  }
  throw new Error("no free 172.16.0.0/12 /24 for the host bridge");
}

export class HostCluster {
  readonly hosts: Host[] = [];
  readonly dir: string;
  readonly bridge: string;
  /** The bridge's address: where agents reach the control plane. */
  readonly gateway: string;
  readonly rootfsDir: string;
  server?: ServerProcess;
  private readonly prefix: string;
  private readonly id: string;

  private constructor(private readonly opts: HostClusterOptions) {
    this.id = opts.id ?? RUN_TAG;
    this.dir = tempDir(`grove-net-${this.id}`);
    this.bridge = `gvb${this.id}`.slice(0, 15);
    this.prefix = freeBridgeSubnet(this.id);
    this.gateway = `${this.prefix}.1`;
    this.rootfsDir = path.join(this.dir, "rootfs");
  }

  /** Builds the bridge, the hosts and their links, starts grove-server and one agent per host. */
  static async start(opts: HostClusterOptions): Promise<HostCluster> {
    const c = new HostCluster(opts);
    try {
      c.makeNetwork();
      execFileSync(path.join(REPO_ROOT, "deploy", "make-rootfs.sh"), [path.join(c.rootfsDir, "busybox")]);
      c.server = await startServer({
        dataDir: path.join(c.dir, "server"),
        grpcListen: `${c.gateway}:0`,
        // Agents in the hosts join through the API, so it listens where they reach it.
        extraArgs: ["--listen", `${c.gateway}:0`, ...(opts.serverArgs ?? [])],
      });
      await Promise.all(c.hosts.map((h) => c.startAgent(h)));
      return c;
    } catch (err) {
      try {
        await c.destroy();
      } catch (cleanupErr) {
        // Both matter: why set-up failed, and what its clean-up left behind.
        throw new AggregateError([err, cleanupErr], `${String(err)}; then clean-up failed: ${String(cleanupErr)}`);
      }
      throw err;
    }
  }

  private makeNetwork(): void {
    sh("ip", ["link", "add", this.bridge, "type", "bridge"]);
    sh("ip", ["addr", "add", `${this.gateway}/24`, "dev", this.bridge]);
    sh("ip", ["link", "set", this.bridge, "up"]);
    for (let i = 1; i <= this.opts.hosts; i++) {
      const host: Host = {
        name: `h${i}`,
        index: i,
        netns: `grove-${this.id}-h${i}`,
        address: `${this.prefix}.${10 + i}`,
        veth: `gv${this.id}h${i}`.slice(0, 15),
        stateDir: path.join(this.dir, `h${i}`),
        cgroupParent: `grove-it-${this.id}-h${i}`,
      };
      this.hosts.push(host);
      const peer = `gv${this.id}p${i}`.slice(0, 15);
      sh("ip", ["netns", "add", host.netns]);
      sh("ip", ["link", "add", host.veth, "type", "veth", "peer", "name", peer]);
      sh("ip", ["link", "set", peer, "netns", host.netns]);
      sh("ip", ["-n", host.netns, "link", "set", peer, "name", "eth0"]);
      sh("ip", ["-n", host.netns, "addr", "add", `${host.address}/24`, "dev", "eth0"]);
      sh("ip", ["-n", host.netns, "link", "set", "eth0", "up"]);
      sh("ip", ["-n", host.netns, "link", "set", "lo", "up"]);
      sh("ip", ["link", "set", host.veth, "master", this.bridge, "up"]);
      // No default route: nothing in a host can reach beyond the bridge.
      fs.mkdirSync(host.stateDir, { recursive: true });
    }
  }

  /** Starts (or restarts) the agent of a host inside its namespace. */
  async startAgent(host: Host, env: NodeJS.ProcessEnv = {}, timeoutMs?: number): Promise<Started> {
    if (!this.server) throw new Error("no server");
    host.agent = await startAgent({
      server: this.server,
      nodeName: host.name,
      stateDir: host.stateDir,
      rootfsDir: this.rootfsDir,
      cgroupParent: host.cgroupParent,
      network: "cni",
      netnsPath: `/run/netns/${host.netns}`,
      labels: { "grove.test/host": host.name },
      // oci: layouts a test builds live in the cluster's directory.
      extraArgs: [
        "--address",
        host.address,
        "--oci-dir",
        this.dir,
        ...(this.opts.agentArgs ?? []),
        ...(this.opts.moreServers?.(this.gateway) ?? []).flatMap((a) => ["--server", a]),
      ],
      env: { ...this.opts.agentEnv, ...env },
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
    return host.agent;
  }

  host(name: string): Host {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** Runs a command inside a host's network namespace. */
  exec(host: Host, cmd: string, args: string[]): string {
    return sh("ip", ["netns", "exec", host.netns, cmd, ...args]);
  }

  async execAsync(host: Host, cmd: string, args: string[], timeoutMs = 20_000): Promise<string> {
    const { stdout } = await execAsync("ip", ["netns", "exec", host.netns, cmd, ...args], { timeout: timeoutMs });
    return stdout;
  }

  /** Cuts (down) or restores (up) a host's link to the bridge. */
  setLink(host: Host, up: boolean): void {
    sh("ip", ["link", "set", host.veth, up ? "up" : "down"]);
  }

  /**
   * Cuts (or restores) only the host's connection to the control plane's
   * gRPC port, silently (iptables DROP both ways inside the host's
   * namespace), as Nomad's disconnected-client tests do: the data plane stays
   * up and neither side sees a reset.
   */
  cutControlPlane(host: Host, cut: boolean): void {
    if (!this.server) throw new Error("no server");
    const [addr, port] = [this.server.grpcAddress.replace(/:\d+$/, ""), this.server.grpcAddress.replace(/^.*:/, "")];
    const op = cut ? "-I" : "-D";
    const rules = [
      ["OUTPUT", "-p", "tcp", "-d", addr, "--dport", port, "-j", "DROP"],
      ["INPUT", "-p", "tcp", "-s", addr, "--sport", port, "-j", "DROP"],
    ];
    for (const r of rules) {
      const args = ["netns", "exec", host.netns, "iptables", "-w", op, ...r];
      if (cut) sh("ip", args);
      else trySh("ip", args);
    }
  }

  /** Containers (cgroups) under a host's cgroup parent, as the kernel has them. */
  containersOn(host: Host): number {
    const v2 = fs.existsSync("/sys/fs/cgroup/cgroup.controllers");
    const dir = v2 ? `/sys/fs/cgroup/${host.cgroupParent}` : `/sys/fs/cgroup/pids/${host.cgroupParent}`;
    try {
      return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).length;
    } catch {
      return 0;
    }
  }

  /** A client of the cluster's API with the admin token. */
  adminClient(): GroveClient {
    if (!this.server) throw new Error("the cluster's grove-server is not running");
    return new GroveClient({ server: this.server.url, token: this.server.adminToken });
  }

  /** Waits until every host's node is registered and Ready. */
  async waitAllReady(client: GroveClient, timeoutMs = 60_000): Promise<void> {
    await waitFor(
      `${this.hosts.length} Ready nodes`,
      async () => {
        const nodes = (await client.list("Node")).items;
        return nodes.length === this.hosts.length && nodes.every(isReady);
      },
      timeoutMs,
    );
  }

  /**
   * The host dies: its agent is killed with SIGKILL, and its containers (and
   * with them their shims) and runtime state go, as after a power cut.
   */
  async killHost(host: Host): Promise<void> {
    await host.agent?.kill9();
    // cleanupStale waits for each shim's exit record before removing the container's directory.
    await new NativeRuntime({ cgroupParent: host.cgroupParent }).cleanupStale();
  }

  /**
   * Slows a host's link: `delayMs` with tc netem (needs sch_netem, which this
   * development kernel lacks: then it throws saying so), `rateKbit` with tc tbf.
   */
  slow(host: Host, opts: { delayMs?: number; rateKbit?: number }): void {
    if (opts.delayMs !== undefined) {
      try {
        sh("tc", ["qdisc", "replace", "dev", host.veth, "root", "netem", "delay", `${opts.delayMs}ms`]);
      } catch (err) {
        throw new Error(`cannot delay ${host.name}: tc netem is unavailable on this kernel (${String(err)})`);
      }
    } else if (opts.rateKbit !== undefined) {
      const args = ["rate", `${opts.rateKbit}kbit`, "burst", "32kbit", "latency", "400ms"];
      sh("tc", ["qdisc", "replace", "dev", host.veth, "root", "tbf", ...args]);
    }
  }

  /** Undoes slow(). */
  unslow(host: Host): void {
    trySh("tc", ["qdisc", "del", "dev", host.veth, "root"]);
  }

  /** Routes every host's instance subnet via that host, so instance IPs are reachable across hosts. */
  routeSubnets(subnets: Record<string, string>): void {
    for (const from of this.hosts) {
      for (const to of this.hosts) {
        const subnet = subnets[to.name];
        if (to === from || !subnet) continue;
        sh("ip", ["-n", from.netns, "route", "replace", subnet, "via", to.address]);
      }
    }
  }

  /**
   * Removes everything; safe to call more than once and after partial set-up.
   * Runs every step even when one fails, then throws an AggregateError naming
   * each thing it could not remove (see Cleanup).
   */
  async destroy(): Promise<void> {
    const c = new Cleanup(`HostCluster ${this.id}`);
    for (const h of this.hosts) await c.step(`stop the agent of ${h.name}`, () => h.agent?.stop(20_000));
    await c.step("stop grove-server", () => this.server?.stop());
    // Containers of agents killed with SIGKILL, and their shims: by cgroup, with the real runtime.
    for (const h of this.hosts) {
      await c.step(
        `remove the containers and cgroup parent ${h.cgroupParent} of ${h.name}`,
        async () => {
          const rt = new NativeRuntime({ cgroupParent: h.cgroupParent });
          await rt.cleanupStale();
          await rt.removeParentCgroup();
        },
        () => cgroupGone(h.cgroupParent),
      );
    }
    // Instance network namespaces are bind mounts under the cluster's directory.
    for (const m of mountsUnder(this.dir).reverse()) {
      await c.command("umount", ["-l", m], () => !mountsUnder(this.dir).includes(m));
    }
    for (const h of this.hosts) {
      await c.command("ip", ["netns", "del", h.netns], () => netnsGone(h.netns));
      await c.command("ip", ["link", "del", h.veth], () => linkGone(h.veth));
    }
    if (this.bridge) await c.command("ip", ["link", "del", this.bridge], () => linkGone(this.bridge));
    if (this.dir) await c.step(`remove ${this.dir}`, () => fs.rmSync(this.dir, { recursive: true, force: true }));
    c.finish();
  }
}

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) =>
      (l.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))),
    )
    .filter((p) => p === dir || p.startsWith(dir + "/"));
}
