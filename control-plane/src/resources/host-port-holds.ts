// The write that deletes or overwrites an Instance also holds its host ports
// on its Node (status.heldHostPorts, @grove/api host-port-holds.ts) when its
// container may still be there: its agent stops it, with its stop grace, only
// after the desired set without it arrives, and until its network is torn
// down its DNAT rules still send the port's traffic to it. One transaction
// guarded by the instance's and the Node's revisions, so the scheduler (which
// guards its bindings by the node's revision) never sees the instance gone
// without the hold. The hold goes when the agent reports the uid released, or
// registers again without it (nodes/registration.ts), or with the Node.
import { GroveError, withHeldHostPorts, type Instance, type Node } from "@grove/api";
import { Keys, type Store, type TxnOp } from "../store/store";

/** A node written under us this many times in a row: give up with Conflict. */
const NODE_RETRIES = 10;

/**
 * Writes `op` (the instance's delete, or its successor's put) at the
 * instance's revision, with its hold on its Node when it holds host ports.
 * Returns the revision, or undefined when it holds none (the caller writes
 * as usual). Throws Conflict when the instance changed.
 */
export async function writeHoldingPorts(
  store: Store,
  gone: Instance,
  op: TxnOp<unknown>,
  now: Date,
): Promise<string | undefined> {
  const nodeName = gone.spec.nodeName;
  if (!nodeName) return undefined;
  const instanceKey = Keys.object("instances", gone.metadata.namespace, gone.metadata.name);
  const nodeKey = Keys.object("nodes", undefined, nodeName);
  for (let attempt = 0; attempt < NODE_RETRIES; attempt++) {
    const kv = await store.get<Node>(nodeKey);
    // A deleted node holds nothing.
    const status = kv ? withHeldHostPorts(kv.value, gone, now) : undefined;
    if (!kv || !status) return undefined;
    const r = await store.txn<unknown>(
      [
        { key: instanceKey, modRevision: gone.metadata.resourceVersion ?? "0" },
        { key: nodeKey, modRevision: kv.modRevision },
      ],
      [op, { type: "put", key: nodeKey, value: { ...kv.value, status } }],
    );
    if (r.succeeded) return r.revision;
    const cur = await store.get(instanceKey);
    if (cur?.modRevision !== gone.metadata.resourceVersion) {
      throw new GroveError(
        "Conflict",
        `Instance ${gone.metadata.namespace ?? "default"}/${gone.metadata.name} changed: read it again and retry`,
      );
    }
    // Only the node changed (a status write): hold on its new revision.
  }
  throw new GroveError("Conflict", `node ${nodeName} kept changing while holding the host ports of a gone instance`);
}
