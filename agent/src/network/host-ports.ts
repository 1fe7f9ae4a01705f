// What this node lets instances publish and reach. The control plane refuses
// reserved, privileged and disallowed fixed host ports at apply
// (api/src/host-ports.ts); the agent applies the same rules with its own
// flags before it publishes anything, so an old or foreign control plane
// cannot hand an instance grove-server's, etcd's or sshd's port. The agent
// may import only @grove/proto, hence its own copy of the (small) rule.
// Node ports: what instances may open on the node's own addresses.

export interface PortRange {
  first: number;
  last: number;
}

export interface AgentHostPortPolicy {
  /** Ports 1024 and up must fall in one of these. */
  allowed: readonly PortRange[];
  /** Port -> what uses it; never published. */
  reserved: ReadonlyMap<number, string>;
  allowPrivileged: boolean;
}

/** Ports that are Grove's or etcd's by default, or sshd's, on any node (the same list as grove-server's). */
export const WELL_KNOWN_RESERVED_PORTS: ReadonlyArray<readonly [number, string]> = [
  [22, "sshd"],
  [2379, "etcd's client port"],
  [2380, "etcd's peer port"],
  [2479, "the embedded etcd's client port"],
  [2480, "the embedded etcd's peer port"],
  [7480, "grove-server's HTTP API"],
  [7481, "grove-server's agent gRPC endpoint"],
];

export const DEFAULT_ALLOWED_HOST_PORTS = "10000-32767";

/** "10000-32767" or "10000-32767,40000" as ranges. */
export function parsePortRanges(text: string, what: string): PortRange[] {
  if (text.trim() === "") throw new Error(`${what}: empty (expected e.g. 10000-32767)`);
  return text.split(",").map((raw) => {
    const part = raw.trim();
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    const first = Number(m?.[1]);
    const last = Number(m?.[2] ?? m?.[1]);
    if (!m || first < 1 || last > 65535 || first > last)
      throw new Error(`${what}: ${JSON.stringify(part)} is not PORT or FIRST-LAST within 1-65535`);
    return { first, last };
  });
}

/** "22,8443" as ports. */
export function parsePortList(text: string, what: string): number[] {
  if (text.trim() === "") return [];
  return text.split(",").map((raw) => {
    const s = raw.trim();
    const p = Number(s);
    if (!/^\d{1,5}$/.test(s) || p < 1 || p > 65535)
      throw new Error(`${what}: ${JSON.stringify(s)} is not a port within 1-65535`);
    return p;
  });
}

export interface NodePortRule {
  protocol: "tcp" | "udp";
  first: number;
  last: number;
}

/** "udp/53,tcp/53,tcp/8000-8100" as node port rules. */
export function parseNodePorts(text: string, what: string): NodePortRule[] {
  if (text.trim() === "") return [];
  return text.split(",").map((raw) => {
    const s = raw.trim();
    const m = /^(tcp|udp)\/(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
    const first = Number(m?.[2]);
    const last = Number(m?.[3] ?? m?.[2]);
    if (!m || first < 1 || last > 65535 || first > last)
      throw new Error(`${what}: ${JSON.stringify(s)} is not tcp/PORT, udp/PORT or PROTO/FIRST-LAST`);
    return { protocol: m[1] as "tcp" | "udp", first, last };
  });
}

/** The agent's policy: the well-known ports, the control plane port it dials, and the operator's. */
export function agentHostPortPolicy(opts: {
  allowed: readonly PortRange[];
  allowPrivileged: boolean;
  reserved: readonly number[];
  controlPlanePort?: number;
}): AgentHostPortPolicy {
  const reserved = new Map<number, string>(WELL_KNOWN_RESERVED_PORTS);
  if (opts.controlPlanePort) reserved.set(opts.controlPlanePort, "the control plane port this agent dials");
  for (const p of opts.reserved) if (!reserved.has(p)) reserved.set(p, "reserved by the operator");
  return { allowed: opts.allowed, reserved, allowPrivileged: opts.allowPrivileged };
}

export const DEFAULT_HOST_PORT_POLICY: AgentHostPortPolicy = agentHostPortPolicy({
  allowed: parsePortRanges(DEFAULT_ALLOWED_HOST_PORTS, "default"),
  allowPrivileged: false,
  reserved: [],
});

/** Why this node will not publish `port`, or undefined when it will. */
export function hostPortProblem(port: number, protocol: string, policy: AgentHostPortPolicy): string | undefined {
  const what = `hostPort ${port}/${protocol}`;
  const user = policy.reserved.get(port);
  if (user !== undefined) return `${what} is reserved on this node: it is ${user}`;
  if (port < 1024) {
    if (policy.allowPrivileged) return undefined;
    return `${what} is a privileged port (below 1024), not allowed without grove-agent --allow-privileged-host-ports`;
  }
  if (policy.allowed.some((r) => port >= r.first && port <= r.last)) return undefined;
  const ranges = policy.allowed.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`)).join(",");
  return `${what} is outside this node's allowed host ports ${ranges} (grove-agent --allowed-host-ports)`;
}

/** An instance asked for a host port this node refuses to publish. */
export class HostPortRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostPortRefusedError";
  }
}
