// Rules about Nodes that every part of Grove must read the same way.
import type { Node, NodeCondition } from "./schemas";

/** The status of a node's Ready condition ("Unknown" when it has none). */
export function readyStatus(node: Node): NodeCondition["status"] {
  return node.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown";
}

/** Whether a node is Ready: its agent is connected and heartbeating. The scheduler places only on Ready nodes. */
export function nodeIsReady(node: Node): boolean {
  return readyStatus(node) === "True";
}
