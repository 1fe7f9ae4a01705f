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
