// The leader record: /grove/leader = {identity, epoch}, written by a newly
// elected leader through its fenced store (so a former leader cannot write
// it back) and watched by every replica. The agent gateway puts the epoch it
// shows into desired sets, so agents can refuse sets from a replica that
// missed a leader change (agent/src/grpc/desired-state-guard.ts).
import type { Logger } from "pino";
import type { Store, Watch } from "../store/store";

export const LEADER_RECORD_KEY = "/grove/leader";

export interface LeaderRecord {
  identity: string;
  /** The create revision of the leader's election key (decimal). */
  epoch: string;
}

/** Writes the record (call with the new leader's fenced store). */
export async function publishLeader(store: Store, record: LeaderRecord): Promise<void> {
  await store.txn([], [{ type: "put", key: LEADER_RECORD_KEY, value: record }]);
}

/** The newest leader epoch this replica has seen, kept current by a watch. */
export class LeaderEpochWatch {
  private epoch = 0n;
  private watch: Watch | undefined;

  constructor(
    private readonly store: Store,
    private readonly logger?: Logger,
  ) {}

  /** "0" until a leader published its record. Never goes down. */
  get current(): string {
    return this.epoch.toString();
  }

  private see(record: LeaderRecord | undefined): void {
    if (!record || !/^\d+$/.test(record.epoch)) return;
    const e = BigInt(record.epoch);
    if (e > this.epoch) {
      this.epoch = e;
      this.logger?.info({ epoch: record.epoch, leader: record.identity }, "leader epoch");
    }
  }

  async start(): Promise<void> {
    const kv = await this.store.get<LeaderRecord>(LEADER_RECORD_KEY);
    this.see(kv?.value);
    // Watch from the revision we read at (or from now when the key is absent).
    const from = kv ? (BigInt(kv.modRevision) + 1n).toString() : "0";
    this.watch = await this.store.watch<LeaderRecord>(LEADER_RECORD_KEY, from, {
      onEvent: (ev) => {
        if (ev.type === "put" && ev.key === LEADER_RECORD_KEY) this.see(ev.value);
      },
      onRelist: (items) => this.see(items.find((i) => i.key === LEADER_RECORD_KEY)?.value),
    });
  }

  async stop(): Promise<void> {
    await this.watch?.close();
    this.watch = undefined;
  }
}
