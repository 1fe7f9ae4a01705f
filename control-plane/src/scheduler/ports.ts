// Dynamic host ports: an instance whose port names no host port gets the
// lowest free ports of the configured range on the node it is placed on.
// Handing them out is part of placement (as Nomad's BinPackIterator assigns
// ports through its NetworkIndex), so a dry run (`grove apply --plan`) and the
// scheduler loop, given the same snapshot, give the same ports, and a node
// whose range is used up is rejected instead of being chosen and then failing.

import type { HostPortRange, NodeView, PlacementRequest } from "./types";

/** How many ports of `range` are neither in `used` nor among `also` (the request's own fixed ports). */
export function freeInRange(
  range: HostPortRange,
  used: ReadonlySet<number> | undefined,
  also?: readonly number[],
): number {
  let taken = 0;
  if (used) for (const p of used) if (p >= range.first && p <= range.last) taken++;
  if (also) for (const p of also) if (p >= range.first && p <= range.last && !used?.has(p)) taken++;
  return Math.max(0, range.last - range.first + 1 - taken);
}

/**
 * The host ports the request gets on this node: the lowest free ports of its
 * dynamic range, skipping the node's used ports and the request's own fixed
 * ones. Undefined when the request asks for none or the range has too few.
 */
export function assignHostPorts(req: PlacementRequest, node: NodeView): number[] | undefined {
  const want = req.dynamicHostPorts;
  if (!want || want.count <= 0) return undefined;
  const used = node.usedHostPorts;
  const own = req.hostPorts ?? [];
  const out: number[] = [];
  for (let p = want.range.first; p <= want.range.last && out.length < want.count; p++) {
    if (!used?.has(p) && !own.includes(p)) out.push(p);
  }
  return out.length === want.count ? out : undefined;
}

/** Host ports handed out when a port names none (grove-server --host-port-range overrides it). */
export const DEFAULT_DYNAMIC_HOST_PORTS: HostPortRange = { first: 20000, last: 29999 };

/** A port as the API spells it: a fixed host port, or none to get one handed out. */
interface PortSpec {
  hostPort?: number;
}

/** The host-port part of an instance's placement request: its fixed ports and how many to hand out. */
export function hostPortRequest(
  ports: readonly PortSpec[] | undefined,
  range: HostPortRange,
): Pick<PlacementRequest, "hostPorts" | "dynamicHostPorts"> {
  const fixed: number[] = [];
  let dynamic = 0;
  for (const p of ports ?? []) {
    if (p.hostPort) fixed.push(p.hostPort);
    else dynamic++;
  }
  return {
    ...(fixed.length > 0 ? { hostPorts: fixed } : {}),
    ...(dynamic > 0 ? { dynamicHostPorts: { count: dynamic, range } } : {}),
  };
}

/** The ports with the handed-out host ports (PlacementResult.hostPorts) filled in, in order. */
export function withHostPorts<P extends PortSpec>(ports: readonly P[], handedOut: readonly number[] | undefined): P[] {
  let next = 0;
  return ports.map((p) => (p.hostPort ? p : { ...p, hostPort: handedOut?.[next++] }));
}
