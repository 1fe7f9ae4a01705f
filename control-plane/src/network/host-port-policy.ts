// grove-server's host port policy (api/src/host-ports.ts): the well-known
// Grove, etcd and sshd ports, this server's own listeners and etcd's ports,
// and what the operator adds are reserved; ports below 1024 need
// --allow-privileged-host-ports; the rest must be in --allowed-host-ports.
import { WELL_KNOWN_RESERVED_PORTS, formatHostPortRanges, type HostPortPolicy, type HostPortRange } from "@grove/api";
import type { PortRange } from "./subnets";

export interface HostPortPolicyOptions {
  /** Fixed host ports 1024 and up must be in one of these (default 10000-32767). */
  allowed: readonly HostPortRange[];
  allowPrivileged: boolean;
  /** More reserved ports (--reserved-host-ports). */
  reserved: readonly number[];
}

/** A policy whose reserved set the server completes as it learns its own ports (addReserved). */
export class ControlPlaneHostPorts {
  private readonly reserved = new Map<number, string>(WELL_KNOWN_RESERVED_PORTS);
  readonly policy: HostPortPolicy;

  constructor(opts: HostPortPolicyOptions) {
    for (const p of opts.reserved) if (!this.reserved.has(p)) this.reserved.set(p, "reserved by the operator");
    this.policy = {
      allowed: opts.allowed,
      allowPrivileged: opts.allowPrivileged,
      reserved: this.reserved,
      source: "grove-server",
    };
  }

  /** A port this control plane (or its etcd) listens on. */
  addReserved(port: number, what: string): void {
    if (port > 0) this.reserved.set(port, what);
  }

  /** The ports of external etcd endpoints (http://10.0.0.5:2379). */
  addEtcdEndpoints(endpoints: readonly string[]): void {
    for (const e of endpoints) {
      try {
        const url = new URL(e);
        const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
        if (!this.reserved.has(port)) this.reserved.set(port, "an etcd client port of this cluster");
      } catch {
        /* the store reports bad endpoints */
      }
    }
  }

  /**
   * Why the dynamic range (ports the scheduler hands out) does not fit the
   * policy, or undefined: every port of it must be allowed and none reserved.
   */
  dynamicRangeProblem(range: PortRange): string | undefined {
    const text = `${range.first}-${range.last}`;
    const inside = this.policy.allowed.some((r) => range.first >= r.first && range.last <= r.last);
    if (!inside)
      return `--host-port-range ${text} is not inside --allowed-host-ports ${formatHostPortRanges(this.policy.allowed)}`;
    if (range.first < 1024 && !this.policy.allowPrivileged)
      return `--host-port-range ${text} holds privileged ports (below 1024)`;
    for (const [port, what] of this.reserved) {
      if (port >= range.first && port <= range.last)
        return `--host-port-range ${text} holds port ${port}, which is reserved (${what})`;
    }
    return undefined;
  }
}
