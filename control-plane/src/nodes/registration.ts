// Node registration: the in-process service behind the agent gateway. It
// owns what an agent's connection changes in the store: the node's subnet
// (carved out of the cluster CIDR), the Node object (created or updated from
// what the agent reports), its presence key (which replica holds the
// agent's stream), the conditions agents may set, the instance statuses they
// report, and the instances a returning node lost. The gRPC adapter
// (grpc/agent-gateway.ts) only decodes, calls this, and encodes.
import type { Logger } from "pino";
import {
  API_VERSION,
  GroveError,
  InstanceReason,
  isFinished,
  NodeReadyReason,
  type Instance,
  type InstanceStatus,
  type Node,
  type NodeCondition,
  type Resources,
  withoutHeldHostPorts,
} from "@grove/api";
import type { Repository } from "../resources/repository";
import { Keys, type Store } from "../store/store";
import type { Informer } from "../controllers/informer";
import { markNodeUnknown, readyCondition, withReady, type Heartbeat } from "../controllers/node-lifecycle";
import { addressesInside, formatCidr, parseCidr, type Cidr } from "../network/subnets";
import { claimSubnet, SubnetClaimCache } from "../network/subnet-claims";
import { zeroResources } from "../scheduler";
import { newReplicaId, removeReplicaBeat, writeReplicaBeat } from "./presence";
import { InstancesByNode } from "./instances-by-node";

/** Cluster networking handed to agents at registration. */
export interface ClusterNetworkOptions {
  /** Node subnets are carved out of this (default 10.244.0.0/16). */
  clusterCidr?: string;
  /** Prefix length of a node's subnet (default 24). */
  nodeSubnetPrefix?: number;
  /** Egress no rule allows: "deny" (default, as Garden) or "allow". */
  egressDefault?: "deny" | "allow";
}

export const DEFAULT_CLUSTER_CIDR = "10.244.0.0/16";

/** Node names: a DNS label, dots allowed (an agent's default name is its hostname). */
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** What an agent says about its node when it registers. */
export interface NodeRegistrationInfo {
  name: string;
  labels: Record<string, string>;
  capacity: Resources;
  allocatable: Resources;
  addresses: string[];
  agentVersion: string;
  kernel: string;
  cgroupMode: string;
}

/** A node condition as an agent reports it. */
export interface AgentCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

/** Node conditions an agent may set (the others belong to the control plane). */
export const AGENT_CONDITION_TYPES: readonly string[] = ["DesiredStateRefused"];

/**
 * The node's conditions with the agent's reports folded in: only types in
 * AGENT_CONDITION_TYPES, the transition time kept while the status stays.
 */
export function withAgentConditions(
  conditions: readonly NodeCondition[],
  reports: readonly AgentCondition[],
  now: Date,
): NodeCondition[] {
  const out = [...conditions];
  for (const r of reports) {
    if (!AGENT_CONDITION_TYPES.includes(r.type)) continue;
    const status = r.status === "True" ? "True" : r.status === "False" ? "False" : "Unknown";
    const i = out.findIndex((c) => c.type === r.type);
    const prev = i >= 0 ? out[i] : undefined;
    const next: NodeCondition = {
      type: r.type,
      status,
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.message ? { message: r.message } : {}),
      lastTransitionTime:
        prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now.toISOString(),
    };
    if (i >= 0) out[i] = next;
    else out.push(next);
  }
  return out;
}

function notFoundIsUndefined(err: unknown): undefined {
  if (err instanceof GroveError && err.code === "NotFound") return undefined;
  throw err;
}

export class NodeRegistration {
  private readonly clusterCidr: Cidr;
  private readonly nodeSubnetPrefix: number;
  /** The first address each registered node advertised (where its ports are published). */
  private readonly nodeAddresses = new Map<string, string>();
  /** Written into presence keys, so other replicas can name the one holding a node's stream. */
  private serverId = "";
  /** This replica process's id in presence keys: its replica beat vouches for them (nodes/presence.ts). */
  readonly replicaId = newReplicaId();
  /** The subnet claims as last listed, so that a new node's registration does not list them all. */
  private readonly claims = new SubnetClaimCache();
  /** Subnets recorded on Node objects when this process first looked (recordedSubnets). */
  private recorded: Promise<{ node: string; subnet: string }[]> | undefined;
  /** Nodes given up whose Ready=Unknown the store refused to take yet. */
  private readonly unreachable = new Map<
    string,
    { presenceRev: string; reason: string; message: string; lastHeard: Date }
  >();

  /** The instances cache by node: a node's own instances without a scan of all of them. */
  private readonly byNode: InstancesByNode;

  constructor(
    private readonly store: Store,
    private readonly repo: Repository,
    private readonly instances: Informer<Instance>,
    private readonly logger: Logger,
    private readonly network: ClusterNetworkOptions = {},
  ) {
    this.byNode = new InstancesByNode(instances);
    this.clusterCidr = parseCidr(network.clusterCidr ?? DEFAULT_CLUSTER_CIDR, "cluster CIDR");
    this.nodeSubnetPrefix = network.nodeSubnetPrefix ?? 24;
    if (this.nodeSubnetPrefix < this.clusterCidr.prefix || this.nodeSubnetPrefix > 30) {
      throw new Error(
        `node subnet prefix: /${this.nodeSubnetPrefix} must be between the cluster CIDR's /${this.clusterCidr.prefix} and /30`,
      );
    }
  }

  /** The egress default agents enforce. */
  get egressDefault(): "deny" | "allow" {
    return this.network.egressDefault ?? "deny";
  }

  /** This replica's HTTP URL, written into presence keys. */
  setServerId(id: string): void {
    this.serverId = id;
  }

  /** The instances bound to or recorded on the node (from the cache). */
  instancesOf(node: string): Instance[] {
    return this.byNode.of(node);
  }

  /** The address a registered node publishes its host ports on. */
  addressOf(node: string): string | undefined {
    return this.nodeAddresses.get(node);
  }

  /**
   * Registers a node: checks its name and addresses, gives it its subnet,
   * writes its presence key (this replica holds its stream) and creates or
   * updates its Node as Ready. Returns the subnet and the presence key's
   * revision (the fence of later presence writes). Throws BadRequest.
   */
  async register(info: NodeRegistrationInfo, conditions: readonly AgentCondition[]) {
    if (!NODE_NAME.test(info.name) || info.name.length > 63) {
      throw new GroveError("BadRequest", `invalid node name "${info.name}"`);
    }
    const name = info.name;
    const now = new Date();
    const ready = readyCondition(
      "True",
      NodeReadyReason.AgentConnected,
      "the agent is connected and heartbeating",
      now,
    );
    const existing = await this.repo.get("Node", undefined, name).catch(notFoundIsUndefined);
    // Instance subnets must not overlap the network the nodes themselves are on.
    const clash = addressesInside(this.clusterCidr, info.addresses);
    if (clash.length > 0) {
      throw new GroveError(
        "BadRequest",
        `node ${name}'s address ${clash.join(", ")} lies inside the cluster CIDR ${formatCidr(this.clusterCidr)}: ` +
          "give grove-server a --cluster-cidr that does not overlap the nodes' network",
      );
    }
    const subnet = await this.allocateSubnetFor(name, existing);
    // Presence first: a Ready node without a presence key looks abandoned to the leader.
    const presenceRev = await this.writePresence(name, now);
    if (info.addresses[0]) this.nodeAddresses.set(name, info.addresses[0]);
    const status = {
      subnet,
      capacity: info.capacity,
      allocatable: info.allocatable,
      addresses: info.addresses,
      agentVersion: info.agentVersion,
      kernel: info.kernel,
      cgroupMode: info.cgroupMode,
      lastHeartbeatTime: now.toISOString(),
    };
    if (!existing) {
      // Nothing bound to a new node: its allocation is recorded as nothing now, not by a second
      // write of the scheduler's (one more Node write and scheduler pass per joining node).
      const allocated = this.byNode.of(name).some((i) => !isFinished(i)) ? {} : { allocated: zeroResources() };
      const node: Node = {
        apiVersion: API_VERSION,
        kind: "Node",
        metadata: { name, labels: { ...info.labels } },
        spec: {},
        status: { ...status, ...allocated, conditions: withAgentConditions([ready], conditions, now) },
      };
      await this.repo.create(node);
    } else {
      await this.repo.updateStatus("Node", existing, (n) => {
        const node = n as Node;
        const updated = withReady({ ...node, status: { ...node.status, ...status } }, ready);
        node.status = {
          ...updated.status,
          conditions: withAgentConditions(updated.status?.conditions ?? [], conditions, now),
        };
        node.metadata.labels = { ...(node.metadata.labels ?? {}), ...info.labels };
      });
    }
    return { subnet, presenceRev };
  }

  /** The node's subnet: claimed in etcd, safe across replicas (network/subnet-claims.ts). */
  private async allocateSubnetFor(name: string, existing: Node | undefined): Promise<string> {
    const recorded = existing?.status?.subnet;
    // Only a node without a recorded subnet needs the others' (Nodes from before claims).
    const legacy = recorded ? [] : await this.recordedSubnets();
    return claimSubnet(
      this.store,
      {
        node: name,
        cluster: this.clusterCidr,
        prefix: this.nodeSubnetPrefix,
        ...(recorded ? { recorded } : {}),
        nodeSubnets: legacy.flatMap((n) => (n.node !== name ? [n.subnet] : [])),
      },
      this.claims,
    );
  }

  /**
   * The subnets Node objects recorded, read once per process: every node
   * registered since has a claim, which claimSubnet reads anyway. Listing
   * every Node at each registration made joining 5,000 nodes quadratic.
   */
  private recordedSubnets(): Promise<{ node: string; subnet: string }[]> {
    this.recorded ??= this.repo.list("Node").then(
      (r) => r.items.flatMap((n) => (n.status?.subnet ? [{ node: n.metadata.name, subnet: n.status.subnet }] : [])),
      (err: unknown) => {
        this.recorded = undefined;
        throw err;
      },
    );
    return this.recorded;
  }

  private beat(heard: Date): Heartbeat {
    return {
      time: heard.toISOString(),
      ...(this.serverId ? { server: this.serverId } : {}),
      replica: this.replicaId,
    };
  }

  /** Writes the node's presence key (this replica holds its stream); returns its mod revision. */
  private async writePresence(node: string, heard: Date): Promise<string> {
    const r = await this.store.txn([], [{ type: "put", key: Keys.heartbeat(node), value: this.beat(heard) }]);
    return r.revision;
  }

  /**
   * Vouches, in one write, for every stream this replica holds (the caller
   * has just checked their silence): the replica presence key.
   */
  async beatReplica(streams: number): Promise<void> {
    await writeReplicaBeat(this.store, this.replicaId, {
      time: new Date().toISOString(),
      ...(this.serverId ? { server: this.serverId } : {}),
      streams,
    });
  }

  /**
   * Removes this replica's presence key (clean shutdown); its nodes then age
   * as if it had stopped. Waits at most `timeoutMs`: a store that does not
   * answer must not hold up the shutdown.
   */
  async endReplica(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      removeReplicaBeat(this.store, this.replicaId).catch((err: unknown) =>
        this.logger.warn({ err }, "could not remove the replica's presence"),
      ),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Every node's presence key revision (one range read), and the store
   * revision they were read at: a stream whose key moved to another revision
   * was taken over or given up elsewhere.
   */
  async presenceRevisions(): Promise<{ revisions: Map<string, string>; revision: string }> {
    const prefix = Keys.heartbeat("");
    const r = await this.store.list<Heartbeat>(prefix);
    return {
      revisions: new Map(r.items.map((kv) => [kv.key.slice(prefix.length), kv.modRevision])),
      revision: r.revision,
    };
  }

  /** The node's presence key: which replica holds its agent's stream, if any. */
  async presenceOf(node: string): Promise<Heartbeat | undefined> {
    return (await this.store.get<Heartbeat>(Keys.heartbeat(node)))?.value;
  }

  /**
   * Marks the node Ready=Unknown, fenced by our presence revision so a
   * registration elsewhere in the meantime wins (markNodeUnknown). Returns
   * whether it wrote. When the store fails, the mark is kept for
   * retryUnreachable: our replica beat goes on vouching for our other nodes,
   * so the leader would not see this one go stale.
   */
  async markUnreachable(
    node: string,
    presenceRev: string,
    reason: string,
    message: string,
    lastHeard: Date,
  ): Promise<boolean> {
    try {
      return await markNodeUnknown(this.store, { node, modRevision: presenceRev }, reason, message, lastHeard);
    } catch (err) {
      this.logger.warn({ err, node }, "could not mark the node lost; will retry");
      this.unreachable.set(node, { presenceRev, reason, message, lastHeard });
      return false;
    }
  }

  /** Tries again the marks markUnreachable could not write. */
  async retryUnreachable(): Promise<void> {
    for (const [node, u] of [...this.unreachable]) {
      this.unreachable.delete(node);
      if (await this.markUnreachable(node, u.presenceRev, u.reason, u.message, u.lastHeard)) {
        this.logger.warn({ node, reason: u.reason, message: u.message }, "node not ready");
      }
    }
  }

  /**
   * The Register carries every instance the agent has. One of this node's
   * Unknown instances it did not report is not there any more (the host
   * rebooted, its containers were lost): it ended, as Failed/Lost, so that it
   * is replaced (or its replacement kept) instead of being started again.
   */
  async markLost(node: string, reported: ReadonlySet<string>): Promise<void> {
    for (const inst of this.byNode.of(node)) {
      if (inst.spec.nodeName !== node || inst.status?.state !== "Unknown" || reported.has(inst.metadata.uid ?? "")) {
        continue;
      }
      try {
        await this.repo.updateStatus(
          "Instance",
          { metadata: { name: inst.metadata.name, namespace: inst.metadata.namespace } },
          (i) => {
            const cur = i as Instance;
            if (cur.metadata.uid !== inst.metadata.uid || cur.status?.state !== "Unknown") return false;
            cur.status = {
              ...cur.status,
              state: "Failed",
              reason: InstanceReason.Lost,
              message: `node ${node} came back without it: its agent does not have it (the host lost its containers)`,
              finishedAt: new Date().toISOString(),
              releasedAt: new Date().toISOString(),
            };
          },
        );
        this.logger.warn({ node, instance: `${inst.metadata.namespace}/${inst.metadata.name}` }, "instance lost");
      } catch (err) {
        notFoundIsUndefined(err);
      }
    }
  }

  /**
   * The Register carries every instance the agent has. A finished instance of
   * this node that it did not report is gone from it: released, so its host
   * ports may be handed out again (its own released report was lost, sent
   * while the stream was down, or not sent because the agent shut down).
   */
  async markReleased(node: string, reported: ReadonlySet<string>): Promise<void> {
    for (const inst of this.byNode.of(node)) {
      if (inst.spec.nodeName !== node || !isFinished(inst) || inst.status?.releasedAt) continue;
      if (reported.has(inst.metadata.uid ?? "")) continue;
      try {
        const ref = { metadata: { name: inst.metadata.name, namespace: inst.metadata.namespace } };
        await this.repo.updateStatus("Instance", ref, (i) => {
          const cur = i as Instance;
          if (cur.metadata.uid !== inst.metadata.uid || !isFinished(cur) || cur.status?.releasedAt) return false;
          cur.status = { ...cur.status!, releasedAt: new Date().toISOString() };
        });
      } catch (err) {
        notFoundIsUndefined(err);
      }
    }
  }

  /**
   * Drops the node's holds on the host ports of gone instances
   * (status.heldHostPorts) whose uid `release` picks: its agent reported it
   * released, registered again without it, or never had it.
   */
  async releaseHeldPorts(node: string, release: (uid: string) => boolean, why: string): Promise<void> {
    let dropped: string[] = [];
    try {
      await this.repo.updateStatus("Node", { metadata: { name: node } }, (n) => {
        const cur = n as Node;
        dropped = (cur.status?.heldHostPorts ?? []).filter((h) => release(h.uid)).map((h) => h.instance);
        const next = withoutHeldHostPorts(cur, release);
        if (!next) return false;
        cur.status = next;
      });
    } catch (err) {
      notFoundIsUndefined(err); // a deleted node holds nothing
    }
    if (dropped.length > 0)
      this.logger.info({ node, instances: dropped, why }, "host ports of gone instances released");
  }

  /** An agent's conditions (e.g. DesiredStateRefused) onto its Node. */
  async recordConditions(name: string, reports: readonly AgentCondition[]): Promise<void> {
    const node = await this.repo.get("Node", undefined, name);
    for (const r of reports) {
      const level = r.status === "True" ? "warn" : "info";
      this.logger[level](
        { node: name, condition: r.type, status: r.status, reason: r.reason, message: r.message },
        "agent condition",
      );
    }
    await this.repo.updateStatus("Node", node, (n) => {
      const cur = n as Node;
      cur.status = {
        ...cur.status,
        conditions: withAgentConditions(cur.status?.conditions ?? [], reports, new Date()),
      };
    });
  }

  /**
   * An agent's report on one of its node's instances: `fold` turns the
   * stored instance into its next status (undefined: nothing to change).
   * Reports on instances gone, replaced or bound elsewhere are dropped.
   * `fresh` (at registration) applies it to the stored instance even when
   * the cache shows nothing to change: the leader may have marked it Unknown
   * just before, and the cache may not show that yet. Returns true when the
   * instance is gone or replaced.
   */
  async recordStatus(
    node: string,
    ref: { uid: string; namespace: string; name: string },
    fold: (cur: Instance) => InstanceStatus | undefined,
    fresh = false,
  ): Promise<boolean> {
    const inst = this.instances.get(`${ref.namespace}/${ref.name}`);
    if (!inst || inst.metadata.uid !== ref.uid || inst.spec.nodeName !== node) return true; // gone or replaced
    if (!fresh && !fold(inst)) return false;
    let gone = false;
    try {
      // Only the name: updateStatus then reads the stored object.
      const target = fresh ? { metadata: { name: inst.metadata.name, namespace: inst.metadata.namespace } } : inst;
      await this.repo.updateStatus("Instance", target, (i) => {
        const cur = i as Instance;
        gone = cur.metadata.uid !== ref.uid;
        if (gone) return;
        const next = fold(cur);
        if (next) cur.status = next;
      });
    } catch (err) {
      notFoundIsUndefined(err);
      gone = true;
    }
    return gone;
  }
}
