// Guards the node against desired sets that would undo what it runs by
// mistake: a set from another cluster (a control plane whose store was wiped
// or swapped comes back with a new cluster id and, most likely, an empty set)
// or one older than a set already applied (a replica serving a stale cache, a
// store restored from an old snapshot). Such a set is refused: the reconciler
// keeps converging to what it had, every container keeps running, and the
// refusal is logged and reported as the node condition DesiredStateRefused.
//
// The cluster id and the highest revision applied are kept in
// <state-dir>/cluster.json, so they survive agent restarts. An operator who
// really moved the node to a new cluster starts the agent once with
// --join-new-cluster (or removes the file).
import * as fs from "node:fs";
import * as path from "node:path";

export const CLUSTER_STATE_FILE = "cluster.json";
export const REFUSED_CONDITION = "DesiredStateRefused";

/** What the agent keeps about the cluster it belongs to. */
export interface ClusterState {
  clusterId: string;
  /** The highest DesiredInstances.revision applied (decimal). */
  revision: string;
  /** The newest leader epoch seen in an applied set (decimal; absent: none yet). */
  epoch?: string;
}

/** What the guard needs of a desired set. */
export interface DesiredHeader {
  clusterId: string;
  revision: string | number;
  /** The leader epoch the serving replica knows; 0 or absent: it knows none (not compared). */
  leaderEpoch?: string | number;
}

export type RefusalReason = "OtherCluster" | "StaleRevision" | "NoClusterId" | "StaleEpoch";

export type Verdict = { accept: true } | { accept: false; reason: RefusalReason; message: string };

/** A node condition as the agent reports it (proto NodeCondition). */
export interface GuardCondition {
  type: string;
  status: "True" | "False";
  reason: string;
  message: string;
}

/**
 * The verdict on a desired set, given what the node holds (pure).
 * `joinNewCluster`: accept the next set of another cluster (once).
 */
export function judge(known: ClusterState | undefined, set: DesiredHeader, joinNewCluster = false): Verdict {
  const revision = BigInt(set.revision || 0);
  if (set.clusterId === "") {
    // From a control plane that sends no id: fine for a node that never had one.
    if (!known) return { accept: true };
    return {
      accept: false,
      reason: "NoClusterId",
      message: `the control plane sent a desired set without a cluster id; this node belongs to cluster ${known.clusterId}`,
    };
  }
  if (!known) return { accept: true };
  if (known.clusterId !== set.clusterId) {
    if (joinNewCluster) return { accept: true };
    return {
      accept: false,
      reason: "OtherCluster",
      message:
        `refused a desired set of cluster ${set.clusterId} (revision ${revision}): this node belongs to cluster ` +
        `${known.clusterId}; its store may have been wiped or replaced. Containers keep running. If the node really ` +
        `moved, restart the agent with --join-new-cluster`,
    };
  }
  const epoch = BigInt(set.leaderEpoch || 0);
  if (epoch > 0n && known.epoch !== undefined && epoch < BigInt(known.epoch)) {
    return {
      accept: false,
      reason: "StaleEpoch",
      message:
        `refused a desired set of leader epoch ${epoch}: this node has seen epoch ${known.epoch} of cluster ` +
        `${known.clusterId}; the replica serving it missed a leader change. Containers keep running`,
    };
  }
  if (revision < BigInt(known.revision)) {
    return {
      accept: false,
      reason: "StaleRevision",
      message:
        `refused a desired set at revision ${revision}: this node applied revision ${known.revision} of cluster ` +
        `${known.clusterId}; the control plane's state is older (a lagging replica or a store restored from a ` +
        `snapshot). Containers keep running`,
    };
  }
  return { accept: true };
}

export interface DesiredStateGuardOptions {
  /** The agent's state directory (cluster.json lives there). */
  stateDir: string;
  /** --join-new-cluster: accept the next set of another cluster once, then guard as usual. */
  joinNewCluster?: boolean;
}

export class DesiredStateGuard {
  private known: ClusterState | undefined;
  private joinPending: boolean;
  private refusal: { reason: RefusalReason; message: string } | undefined;
  readonly file: string;

  constructor(options: DesiredStateGuardOptions) {
    this.file = path.join(options.stateDir, CLUSTER_STATE_FILE);
    this.joinPending = options.joinNewCluster === true;
    this.known = readState(this.file);
  }

  /** The cluster the node belongs to, if it has applied a set of one. */
  get state(): ClusterState | undefined {
    return this.known ? { ...this.known } : undefined;
  }

  /** The current refusal, if the last set was refused. */
  get refused(): { reason: RefusalReason; message: string } | undefined {
    return this.refusal;
  }

  /**
   * Judges a set. Accepted: records its cluster id and revision (on disk
   * before it is applied, so a restart never goes back). Refused: remembered
   * for condition().
   */
  admit(set: DesiredHeader): Verdict {
    const verdict = judge(this.known, set, this.joinPending);
    if (!verdict.accept) {
      this.refusal = { reason: verdict.reason, message: verdict.message };
      return verdict;
    }
    this.refusal = undefined;
    if (set.clusterId !== "") {
      const revision = BigInt(set.revision || 0);
      const epoch = BigInt(set.leaderEpoch || 0);
      const sameCluster = this.known?.clusterId === set.clusterId;
      const knownRevision = sameCluster ? BigInt(this.known!.revision) : 0n;
      const knownEpoch = sameCluster && this.known?.epoch !== undefined ? BigInt(this.known.epoch) : 0n;
      if (!sameCluster || revision > knownRevision || epoch > knownEpoch) {
        const newest = epoch > knownEpoch ? epoch : knownEpoch;
        const next: ClusterState = {
          clusterId: set.clusterId,
          revision: (revision > knownRevision ? revision : knownRevision).toString(),
          ...(newest > 0n ? { epoch: newest.toString() } : {}),
        };
        writeState(this.file, next);
        this.known = next;
      }
      this.joinPending = false;
    }
    return verdict;
  }

  /** The DesiredStateRefused condition as it is now. */
  condition(): GuardCondition {
    if (this.refusal) {
      return { type: REFUSED_CONDITION, status: "True", reason: this.refusal.reason, message: this.refusal.message };
    }
    return { type: REFUSED_CONDITION, status: "False", reason: "Applied", message: "the last desired set was applied" };
  }
}

function readState(file: string): ClusterState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(
      `${file}: not JSON (${(err as Error).message}); remove it to accept the next cluster's desired set`,
    );
  }
  const s = parsed as Partial<ClusterState>;
  if (
    typeof s.clusterId !== "string" ||
    s.clusterId === "" ||
    typeof s.revision !== "string" ||
    !/^\d+$/.test(s.revision) ||
    (s.epoch !== undefined && (typeof s.epoch !== "string" || !/^\d+$/.test(s.epoch)))
  ) {
    throw new Error(
      `${file}: expected {"clusterId": "<id>", "revision": "<decimal>", "epoch"?: "<decimal>"}; remove it to accept the next cluster's desired set`,
    );
  }
  return { clusterId: s.clusterId, revision: s.revision, ...(s.epoch !== undefined ? { epoch: s.epoch } : {}) };
}

/** Atomic and durable: a crash leaves the old file or the new one. */
function writeState(file: string, state: ClusterState): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, "w", 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(state) + "\n");
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
