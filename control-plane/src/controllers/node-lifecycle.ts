// Node lifecycle: a node is Ready while its agent heartbeats. Heartbeats are
// kept under their own keys (Keys.heartbeat) so they do not bump the Node's
// revision, which guards scheduling transactions. This controller turns a
// missing heartbeat into Ready=False (and back), so the scheduler stops
// placing instances on a node whose agent went away.
import type { Logger } from "pino";
import type { Node, NodeCondition } from "@grove/api";
import { Keys, type Store } from "../store/store";
import { Informer } from "./informer";

export const NODE_GRACE_MS = 20_000;

export interface Heartbeat {
  time: string;
  /** The grove-server replica (its HTTP URL) holding the node's agent stream. */
  server?: string;
}

export function nodeIsReady(node: Node): boolean {
  return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

export function readyCondition(ready: boolean, reason: string, message: string, now: Date): NodeCondition {
  return { type: "Ready", status: ready ? "True" : "False", reason, message, lastTransitionTime: now.toISOString() };
}

/** Node with its Ready condition set (other conditions kept). */
export function withReady(node: Node, cond: NodeCondition): Node {
  const others = (node.status?.conditions ?? []).filter((c) => c.type !== "Ready");
  return { ...node, status: { ...node.status, conditions: [...others, cond] } };
}

export class NodeLifecycleController {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly store: Store,
    private readonly nodes: Informer<Node>,
    private readonly logger: Logger,
    private readonly graceMs = NODE_GRACE_MS,
    private readonly intervalMs = 5_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async check(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const beats = await this.store.list<Heartbeat>(Keys.heartbeat(""));
      const last = new Map<string, number>();
      for (const kv of beats.items) last.set(kv.key.slice(Keys.heartbeat("").length), Date.parse(kv.value.time));
      const now = Date.now();
      for (const node of this.nodes.list()) {
        const seen = last.get(node.metadata.name);
        const fresh = seen !== undefined && now - seen <= this.graceMs;
        if (fresh || !nodeIsReady(node)) continue; // only flips Ready -> NotReady; the agent's Register sets Ready
        const cond = readyCondition(
          false,
          "AgentNotHeartbeating",
          seen === undefined
            ? "no heartbeat recorded"
            : `no heartbeat from the agent for ${Math.round((now - seen) / 1000)}s`,
          new Date(now),
        );
        const key = Keys.object("nodes", undefined, node.metadata.name);
        const { resourceVersion: _rv, ...metadata } = node.metadata;
        const r = await this.store.txn(
          [{ key, modRevision: node.metadata.resourceVersion ?? "0" }],
          [{ type: "put", key, value: { ...withReady(node, cond), metadata } }],
        );
        if (r.succeeded) this.logger.warn({ node: node.metadata.name, reason: cond.message }, "node not ready");
      }
    } catch (err) {
      this.logger.warn({ err }, "node lifecycle check failed; will retry");
    } finally {
      this.running = false;
    }
  }
}
