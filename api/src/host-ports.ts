// Which fixed host ports an App may publish. portmap DNATs every packet for a
// published port that arrives at (or leaves for) a local address of the node,
// so a host port is a claim on that port of every node address: one that a
// node service listens on (grove-server, the agents' gRPC, etcd, sshd, a
// database) would hand that service's clients, tokens included, to the App.
// The policy: no reserved port, nothing below 1024 unless the operator allows
// privileged ports, and otherwise only ports inside the allowed ranges.
// grove-server checks it at apply; grove-agent checks it again before it
// publishes anything (agent/src/network/host-ports.ts), so an old or foreign
// control plane cannot get around it.

export interface HostPortRange {
  first: number;
  last: number;
}

export interface HostPortPolicy {
  /** Ports 1024 and up must fall in one of these. */
  allowed: readonly HostPortRange[];
  /** Port -> what uses it ("grove-server's HTTP API"); never published. */
  reserved: ReadonlyMap<number, string>;
  /** Ports below 1024 are allowed (still subject to `reserved`). */
  allowPrivileged: boolean;
  /** The program whose flags set the policy, for messages ("grove-server"). */
  source: string;
}

/** Ports that are Grove's or etcd's by default, or sshd's, on any node (any replica may run there). */
export const WELL_KNOWN_RESERVED_PORTS: ReadonlyArray<readonly [number, string]> = [
  [22, "sshd"],
  [2379, "etcd's client port"],
  [2380, "etcd's peer port"],
  [2479, "the embedded etcd's client port"],
  [2480, "the embedded etcd's peer port"],
  [7480, "grove-server's HTTP API"],
  [7481, "grove-server's agent gRPC endpoint"],
];

/** Fixed host ports outside the well-known ports and the ephemeral range (32768-60999), around the dynamic range. */
export const DEFAULT_ALLOWED_HOST_PORTS = "10000-32767";

/** "10000-32767" or "10000-32767,40000,41000-41010" as ranges. */
export function parseHostPortRanges(text: string, what = "host port ranges"): HostPortRange[] {
  const parts = text.split(",").map((s) => s.trim());
  if (text.trim() === "") throw new Error(`${what}: empty (expected e.g. 10000-32767)`);
  return parts.map((part) => {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    const first = Number(m?.[1]);
    const last = Number(m?.[2] ?? m?.[1]);
    if (!m || first < 1 || last > 65535 || first > last)
      throw new Error(`${what}: ${JSON.stringify(part)} is not PORT or FIRST-LAST within 1-65535`);
    return { first, last };
  });
}

/** "22,8443" as a list of ports. */
export function parsePortList(text: string, what = "ports"): number[] {
  if (text.trim() === "") return [];
  return text.split(",").map((s) => {
    const p = Number(s.trim());
    if (!/^\d{1,5}$/.test(s.trim()) || p < 1 || p > 65535)
      throw new Error(`${what}: ${JSON.stringify(s.trim())} is not a port within 1-65535`);
    return p;
  });
}

export function formatHostPortRanges(ranges: readonly HostPortRange[]): string {
  return ranges.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`)).join(",");
}

/** Why `port` may not be published under `policy`, or undefined when it may. */
export function hostPortProblem(port: number, protocol: string, policy: HostPortPolicy): string | undefined {
  const what = `hostPort ${port}/${protocol}`;
  const user = policy.reserved.get(port);
  if (user !== undefined) return `${what} is reserved: it is ${user} on a node`;
  if (port < 1024) {
    if (policy.allowPrivileged) return undefined;
    return `${what} is a privileged port (below 1024), not allowed without ${policy.source} --allow-privileged-host-ports`;
  }
  if (policy.allowed.some((r) => port >= r.first && port <= r.last)) return undefined;
  const ranges = formatHostPortRanges(policy.allowed);
  return `${what} is outside the allowed host ports ${ranges} (${policy.source} --allowed-host-ports)`;
}
