// An instance's network on this node: a persistent network namespace, CNI
// ADD of the node's network list into it (an IP from the node's subnet,
// published ports through portmap), then its egress chain. Teardown undoes
// all of it and tolerates any part being gone already, so it can run after
// a crash at any point. cleanupStale() finds what an earlier agent run left
// (cached CNI results, namespace files, host-local allocations, egress
// chains) and tears it down. Host ports this node refuses (host-ports.ts)
// fail the setup before anything is made; the node guard (node-guard.ts)
// is in place before every CNI ADD.
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { pino, type Logger } from "pino";
import { CniCaller, type CniNetworkList, type CniPortMapping, type CniResult } from "./cni";
import { DEFAULT_PLUGIN_DIRS, defaultNetworkList, loadNetworkList } from "./conflist";
import {
  applyEgress,
  removeEgress,
  removeIpMasqByComment,
  removeStaleEgress,
  type EgressDefault,
  type EgressRule,
} from "./egress";
import { createNetns, isMounted, removeNetns } from "./netns";
import {
  DEFAULT_HOST_PORT_POLICY,
  HostPortRefusedError,
  hostPortProblem,
  type AgentHostPortPolicy,
  type NodePortRule,
} from "./host-ports";
import { ensureNodeGuard, resetRouteLocalnet } from "./node-guard";

export const IFNAME = "eth0";

const exec = promisify(execFile);

export interface PortSpec {
  name: string;
  protocol: "tcp" | "udp";
  containerPort: number;
  /** 0: not published. */
  hostPort: number;
}

export interface InstanceNetworkRequest {
  uid: string;
  ports: readonly PortSpec[];
  egress: readonly EgressRule[];
}

export interface InstanceNetwork {
  netnsPath: string;
  /** IPv4 address without prefix length. */
  ip: string;
  ports: PortSpec[];
}

export interface NetworkManagerOptions {
  stateDir: string;
  pluginDirs?: string[];
  /** An operator's conflist instead of the default list ("{{subnet}}" is replaced). */
  conflistFile?: string;
  logger?: Logger;
  /** Which host ports this node publishes (default: 10000-32767, nothing reserved or privileged). */
  hostPorts?: AgentHostPortPolicy;
  /** What instances may open on the node's own addresses (default: nothing). */
  allowedNodePorts?: readonly NodePortRule[];
}

interface Persisted {
  subnet: string;
  egressDefault: EgressDefault;
}

export class NetworkManager {
  private settings: Persisted | undefined;
  private readonly cni: CniCaller;
  private readonly log: Logger;

  constructor(private readonly opts: NetworkManagerOptions) {
    this.cni = new CniCaller({ pluginDirs: opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS, cacheDir: this.dir("cni") });
    this.log = opts.logger ?? pino({ level: "silent" });
  }

  /** Reads the subnet a previous run recorded, so leftovers can be torn down before registration. */
  async init(): Promise<void> {
    // A broken operator conflist is a start-up error, not a surprise at the first instance.
    if (this.opts.conflistFile) loadNetworkList(this.opts.conflistFile, "10.0.0.0/24");
    await fs.mkdir(this.dir("netns"), { recursive: true, mode: 0o700 });
    try {
      this.settings = JSON.parse(await fs.readFile(this.dir("network.json"), "utf8")) as Persisted;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    // Instances adopted from an earlier run (or made by an older agent) are guarded before registration.
    if (this.settings) await this.guard(this.networkList());
  }

  /** The control plane told us the node's subnet and the egress default. */
  async configure(subnet: string, egressDefault: EgressDefault): Promise<void> {
    if (!subnet) return;
    const next: Persisted = { subnet, egressDefault };
    if (this.settings && this.settings.subnet !== subnet) {
      this.log.warn({ from: this.settings.subnet, to: subnet }, "node subnet changed; new instances use the new one");
    }
    this.settings = next;
    const list = this.networkList(); // fail early on a bad conflist
    await fs.mkdir(this.opts.stateDir, { recursive: true });
    await fs.writeFile(this.dir("network.json"), JSON.stringify(next));
    await this.guard(list);
    this.log.info(next, "instance network configured");
  }

  get ready(): boolean {
    return this.settings !== undefined;
  }

  get subnet(): string | undefined {
    return this.settings?.subnet;
  }

  netnsPath(uid: string): string {
    return path.join(this.dir("netns"), uid);
  }

  async setup(req: InstanceNetworkRequest): Promise<InstanceNetwork> {
    const settings = this.settings;
    if (!settings) throw new Error("the node's subnet is not known yet (not registered)");
    const published = req.ports.filter((p) => p.hostPort > 0);
    const refused = published.flatMap((p) => {
      const why = hostPortProblem(p.hostPort, p.protocol, this.opts.hostPorts ?? DEFAULT_HOST_PORT_POLICY);
      return why ? [`port ${JSON.stringify(p.name)}: ${why}`] : [];
    });
    if (refused.length > 0) throw new HostPortRefusedError(refused.join("; "));
    const list = this.networkList();
    const netnsPath = this.netnsPath(req.uid);
    const portMappings: CniPortMapping[] = published.map((p) => ({
      hostPort: p.hostPort,
      containerPort: p.containerPort,
      protocol: p.protocol,
      hostIP: "",
    }));
    try {
      await this.guard(list);
      await createNetns(netnsPath);
      const result = await this.cni.add(list, {
        containerId: req.uid,
        netns: netnsPath,
        ifName: IFNAME,
        capabilityArgs: { portMappings },
      });
      // portmap turned route_localnet on for the bridge; nothing here needs it.
      const hostSide = (result.interfaces ?? []).filter((i) => !i.sandbox).map((i) => i.name);
      await resetRouteLocalnet([...bridgesOf(list), ...hostSide]);
      const ip = instanceIp(result);
      if (!ip) throw new Error(`CNI ADD returned no IPv4 address: ${JSON.stringify(result.ips ?? [])}`);
      await applyEgress(req.uid, ip, req.egress, settings.egressDefault);
      this.log.info({ uid: req.uid, ip, ports: published }, "instance network ready");
      return { netnsPath, ip, ports: req.ports.map((p) => ({ ...p })) };
    } catch (err) {
      await this.teardown(req.uid).catch((e: unknown) =>
        this.log.warn({ uid: req.uid, err: e }, "teardown after a failed network setup failed"),
      );
      throw err;
    }
  }

  /**
   * Takes over the network of a running container whose records were lost
   * (the agent's state directory was removed while it ran): its namespace
   * (bound again from the container's init `pid` when the file is gone), its
   * address read from inside it, and the host-local allocation and the CNI
   * cache entry written again, so that no other instance gets its address
   * and teardown undoes its port mappings. (Egress chains, port mappings and
   * masquerade rules live in iptables: they were never lost.)
   */
  async adopt(req: InstanceNetworkRequest, pid: number): Promise<InstanceNetwork> {
    if (!this.settings) throw new Error("the node's subnet is not known yet (not registered)");
    const list = this.networkList();
    const netnsPath = this.netnsPath(req.uid);
    if (!(await isMounted(netnsPath))) {
      await fs.mkdir(this.dir("netns"), { recursive: true, mode: 0o700 });
      await fs.writeFile(netnsPath, "", { flag: "a", mode: 0o600 });
      await exec("mount", ["--bind", `/proc/${pid}/ns/net`, netnsPath]);
    }
    const { stdout } = await exec("nsenter", [`--net=${netnsPath}`, "ip", "-4", "-o", "addr", "show", "dev", IFNAME]);
    const cidr = /\binet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(stdout)?.[1];
    if (!cidr) throw new Error(`no IPv4 address on ${IFNAME} in the network namespace of ${req.uid}`);
    const ip = cidr.split("/")[0]!;
    if (!this.opts.conflistFile) {
      // host-local's record of the allocation: "<container id>\r\n<ifname>" in a file named by the address.
      const dir = path.join(this.dir("ipam"), list.name);
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      const file = path.join(dir, ip);
      const holder = (await fs.readFile(file, "utf8").catch(() => "")).split(/\r?\n/)[0]?.trim();
      if (holder && holder !== req.uid) throw new Error(`address ${ip} of ${req.uid} is recorded for ${holder}`);
      await fs.writeFile(file, `${req.uid}\r\n${IFNAME}`, { mode: 0o600 });
    }
    const portMappings: CniPortMapping[] = req.ports
      .filter((p) => p.hostPort > 0)
      .map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, hostIP: "" }));
    await this.cni.recordResult(
      list,
      { containerId: req.uid, netns: netnsPath, ifName: IFNAME, capabilityArgs: { portMappings } },
      {
        cniVersion: list.cniVersion,
        interfaces: [{ name: IFNAME, sandbox: netnsPath }],
        ips: [{ address: cidr, interface: 0 }],
      },
    );
    this.log.info({ uid: req.uid, ip }, "instance network adopted from the host");
    return { netnsPath, ip, ports: req.ports.map((p) => ({ ...p })) };
  }

  /** Removes everything of an instance's network; idempotent. */
  async teardown(uid: string): Promise<void> {
    await removeEgress(uid);
    if (this.settings) {
      const netnsPath = this.netnsPath(uid);
      const mounted = await isMounted(netnsPath);
      const list = this.networkList();
      await this.cni.del(list, {
        containerId: uid,
        ifName: IFNAME,
        ...(mounted ? { netns: netnsPath } : {}),
      });
      // Without its namespace the bridge plugin cannot find the masquerade rule to remove.
      if (!mounted) await removeIpMasqByComment(list.name, uid);
    }
    await removeNetns(this.netnsPath(uid));
  }

  /** Tears down every instance network not in `keep`; returns their uids. */
  async cleanupStale(keep: ReadonlySet<string> = new Set()): Promise<string[]> {
    const uids = new Set<string>();
    for (const f of await fs.readdir(this.dir("netns")).catch(() => [] as string[])) uids.add(f);
    if (this.settings) {
      const list = this.networkList();
      for (const c of await this.cni.cachedContainers(list.name)) uids.add(c.containerId);
      for (const id of await this.ipamContainers()) uids.add(id);
    }
    const removed: string[] = [];
    for (const uid of uids) {
      if (keep.has(uid)) continue;
      try {
        await this.teardown(uid);
        removed.push(uid);
      } catch (err) {
        this.log.warn({ uid, err }, "could not remove a stale instance network");
      }
    }
    const chains = await removeStaleEgress(keep);
    if (chains.length) this.log.info({ chains }, "removed stale egress chains");
    return removed;
  }

  /** Container ids holding an address in the default list's host-local store. */
  private async ipamContainers(): Promise<string[]> {
    const dir = path.join(this.dir("ipam"), this.networkList().name);
    const out: string[] = [];
    for (const f of await fs.readdir(dir).catch(() => [] as string[])) {
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(f)) continue;
      const text = await fs.readFile(path.join(dir, f), "utf8").catch(() => "");
      const id = text.split(/\r?\n/)[0]?.trim();
      if (id) out.push(id);
    }
    return out;
  }

  /** The node guard for this list's bridges and the node's subnet; route_localnet off on the bridges. */
  private async guard(list: CniNetworkList): Promise<void> {
    if (!this.settings) return;
    const bridges = bridgesOf(list);
    await ensureNodeGuard({
      subnet: this.settings.subnet,
      interfaces: bridges,
      allowedNodePorts: this.opts.allowedNodePorts ?? [],
    });
    await resetRouteLocalnet(bridges);
  }

  networkList(): CniNetworkList {
    if (!this.settings) throw new Error("the node's subnet is not known yet");
    return this.opts.conflistFile
      ? loadNetworkList(this.opts.conflistFile, this.settings.subnet)
      : defaultNetworkList(this.settings.subnet, this.dir("ipam"));
  }

  private dir(name: string): string {
    return path.join(this.opts.stateDir, name);
  }
}

/** The bridges a network list attaches instances to (the bridge plugin's default is cni0). */
export function bridgesOf(list: CniNetworkList): string[] {
  return list.plugins
    .filter((p) => p.type === "bridge")
    .map((p) => (typeof p.bridge === "string" && p.bridge !== "" ? p.bridge : "cni0"));
}

/** The first IPv4 address of the result on an interface inside the sandbox. */
export function instanceIp(result: CniResult): string | undefined {
  for (const ip of result.ips ?? []) {
    const iface = ip.interface !== undefined ? result.interfaces?.[ip.interface] : undefined;
    if (iface && !iface.sandbox) continue;
    const addr = ip.address.split("/")[0] ?? "";
    if (/^\d+\.\d+\.\d+\.\d+$/.test(addr) && addr !== "127.0.0.1") return addr;
  }
  return undefined;
}
