// Checks of an App's ports and egress rules that JSON Schema cannot express:
// unique port names, container ports and host ports; egress CIDRs that are
// real networks (octets, prefix, no host bits); port ranges in order and
// only for tcp/udp; with a host port policy, fixed host ports it allows
// (host-ports.ts). Each problem names its field as a JSON pointer.
import { hostPortProblem, type HostPortPolicy } from "./host-ports";

export interface NetworkProblem {
  pointer: string;
  message: string;
}

function ipv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!;
}

/** Why `cidr` is not an IPv4 network, or undefined when it is one. */
export function cidrProblem(cidr: string): string | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) return `${JSON.stringify(cidr)} is not an IPv4 CIDR (a.b.c.d/n)`;
  const base = ipv4(m[1]!);
  const prefix = Number(m[2]);
  if (base === undefined) return `${JSON.stringify(m[1])} is not an IPv4 address`;
  if (prefix > 32) return `prefix /${prefix} is longer than 32`;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if ((base & mask) >>> 0 !== base) {
    const net = (base & mask) >>> 0;
    const text = [net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join(".");
    return `${cidr} has host bits set (did you mean ${text}/${prefix}?)`;
  }
  return undefined;
}

export function appNetworkProblems(spec: unknown, hostPorts?: HostPortPolicy): NetworkProblem[] {
  const out: NetworkProblem[] = [];
  if (typeof spec !== "object" || spec === null) return out;
  const { ports, egress } = spec as { ports?: unknown; egress?: unknown };

  if (Array.isArray(ports)) {
    const names = new Map<string, number>();
    const container = new Map<string, number>();
    const host = new Map<string, number>();
    ports.forEach((p: unknown, i) => {
      if (typeof p !== "object" || p === null) return;
      const { name, containerPort, hostPort, protocol } = p as Record<string, unknown>;
      const proto = typeof protocol === "string" ? protocol : "tcp";
      const dup = (map: Map<string, number>, key: string, field: string, what: string) => {
        const first = map.get(key);
        if (first !== undefined) {
          out.push({
            pointer: `/spec/ports/${i}/${field}`,
            message: `${what} is already used by /spec/ports/${first}`,
          });
        } else map.set(key, i);
      };
      if (typeof name === "string") dup(names, name, "name", `port name ${JSON.stringify(name)}`);
      if (typeof containerPort === "number")
        dup(container, `${containerPort}/${proto}`, "containerPort", `containerPort ${containerPort}/${proto}`);
      if (typeof hostPort === "number") dup(host, `${hostPort}/${proto}`, "hostPort", `hostPort ${hostPort}/${proto}`);
      if (hostPorts && Number.isInteger(hostPort) && (hostPort as number) >= 1 && (hostPort as number) <= 65535) {
        const why = hostPortProblem(hostPort as number, proto, hostPorts);
        if (why) out.push({ pointer: `/spec/ports/${i}/hostPort`, message: why });
      }
    });
  }

  if (Array.isArray(egress)) {
    egress.forEach((r: unknown, i) => {
      if (typeof r !== "object" || r === null) return;
      const { cidr, protocol, ports: range } = r as Record<string, unknown>;
      if (typeof cidr === "string") {
        const why = cidrProblem(cidr);
        if (why) out.push({ pointer: `/spec/egress/${i}/cidr`, message: why });
      }
      if (typeof range === "string") {
        const proto = typeof protocol === "string" ? protocol : "all";
        if (proto !== "tcp" && proto !== "udp") {
          out.push({ pointer: `/spec/egress/${i}/ports`, message: `ports need protocol tcp or udp (got ${proto})` });
        }
        const m = /^(\d+)(?:-(\d+))?$/.exec(range);
        if (m) {
          const first = Number(m[1]);
          const last = Number(m[2] ?? m[1]);
          if (first < 1 || last > 65535 || first > last) {
            out.push({
              pointer: `/spec/egress/${i}/ports`,
              message: `${JSON.stringify(range)} is not a port or an ascending range within 1-65535`,
            });
          }
        }
      }
    });
  }
  return out;
}
