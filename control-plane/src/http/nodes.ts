// /v1/nodes: agents register nodes (over gRPC); operators read them, apply
// them (cordon with spec.unschedulable) and delete them.
//
// A node's last heartbeat is not written into the Node on every beat (that
// would bump the revision scheduling transactions compare): the replica
// holding the agent's stream vouches for all its nodes every few seconds in
// its replica presence key (nodes/presence.ts), and reads fill it in here.
import type { FastifyInstance } from "fastify";
import type { Node } from "@grove/api";
import type { Heartbeat } from "../controllers/node-lifecycle";
import { lastHeardTime, listReplicaBeats } from "../nodes/presence";
import { Keys } from "../store/store";
import { registerResourceRoutes, type RouteContext } from "./resource-routes";

export function registerNodeRoutes(app: FastifyInstance, ctx: RouteContext): void {
  registerResourceRoutes(app, ctx, {
    kind: "Node",
    create: false,
    apply: true,
    decorate: async (nodes) => {
      // One node (a get): its own key, not every node's (thousands of them).
      const one = nodes.length === 1 ? nodes[0]!.metadata.name : undefined;
      const [beats, replicas] = await Promise.all([
        one !== undefined
          ? ctx.repo.store.get<Heartbeat>(Keys.heartbeat(one)).then((kv) => ({ items: kv ? [kv] : [] }))
          : ctx.repo.store.list<Heartbeat>(Keys.heartbeat("")),
        listReplicaBeats(ctx.repo.store),
      ]);
      const last = new Map(
        beats.items.map((kv) => [kv.key.slice(Keys.heartbeat("").length), lastHeardTime(kv.value, replicas)]),
      );
      return nodes.map((n) => withHeartbeat(n, last.get(n.metadata.name)));
    },
  });
}

/** The node with the later of its recorded last heartbeat and its presence key's. */
export function withHeartbeat(node: Node, presence: string | undefined): Node {
  const recorded = node.status?.lastHeartbeatTime;
  if (!presence || (recorded && Date.parse(recorded) >= Date.parse(presence))) return node;
  return { ...node, status: { ...node.status, lastHeartbeatTime: presence } };
}
