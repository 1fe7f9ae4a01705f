// Host ports an instance holds on its node, and those a node holds for
// instances gone from the API. A published port is a DNAT rule on the node
// until its agent tears the instance's network down; an instance given the
// same port on that node before then would have the old container answer for
// it. So the ports stay in use: while the instance is bound and unfinished;
// once finished, until its agent reports it released (status.releasedAt);
// and once deleted or overwritten under its name (scale down, an App deleted,
// Recreate, a restart in place), on its Node (status.heldHostPorts) until its
// agent reports it gone, the agent comes back without it, or the Node goes.
import type { HeldHostPorts, Instance, Node, NodeStatus } from "./schemas";
import { isFinished } from "./instance-rules";

/** Whether an instance's host ports are in use on its node (bound; unfinished, or finished and not released). */
export function holdsHostPorts(inst: Instance): boolean {
  return !!inst.spec.nodeName && (!isFinished(inst) || !inst.status?.releasedAt);
}

/** The host ports an instance holds on its node (none when holdsHostPorts is false). */
export function hostPortsHeldBy(inst: Instance): number[] {
  if (!holdsHostPorts(inst)) return [];
  return (inst.spec.ports ?? []).flatMap((p) => (p.hostPort ? [p.hostPort] : []));
}

/** The host ports a node holds for instances gone from the API. */
export function nodeHeldHostPorts(node: Pick<Node, "status">): number[] {
  return (node.status?.heldHostPorts ?? []).flatMap((h) => h.ports);
}

/**
 * The node's status with the ports of `gone` (being deleted or overwritten)
 * held; undefined when it holds none there (not bound to this node, released,
 * no host ports) or they are held already.
 */
export function withHeldHostPorts(node: Node, gone: Instance, now: Date): NodeStatus | undefined {
  const ports = hostPortsHeldBy(gone);
  const uid = gone.metadata.uid ?? "";
  if (ports.length === 0 || uid === "" || gone.spec.nodeName !== node.metadata.name) return undefined;
  const held = node.status?.heldHostPorts ?? [];
  if (held.some((h) => h.uid === uid)) return undefined;
  const hold: HeldHostPorts = {
    uid,
    instance: `${gone.metadata.namespace ?? "default"}/${gone.metadata.name}`,
    ports,
    since: now.toISOString(),
  };
  return { ...node.status, heldHostPorts: [...held, hold] };
}

/** The node's status without the holds whose uid `release` picks; undefined when none is picked. */
export function withoutHeldHostPorts(
  node: Pick<Node, "status">,
  release: (uid: string) => boolean,
): NodeStatus | undefined {
  const held = node.status?.heldHostPorts ?? [];
  const kept = held.filter((h) => !release(h.uid));
  if (kept.length === held.length) return undefined;
  const { heldHostPorts: _drop, ...rest } = node.status ?? {};
  return kept.length > 0 ? { ...rest, heldHostPorts: kept } : rest;
}
