// Agents' instance status reports, written to etcd a batch at a time.
//
// Each report used to be its own etcd transaction (NodeRegistration.recordStatus:
// one update per report). When a pass binds hundreds of instances, their
// agents report them Starting and Running within moments of each other, one
// stream per node: hundreds of single-key transactions, each with its gRPC call
// to etcd. The reports that arrive in one turn of the event loop (across all
// streams) now go out together: one transaction of up to STATUS_BATCH_MAX keys,
// each key guarded by the revision of the instance its new status was folded
// from, so a report never overwrites a change it did not see. That copy is the
// informer's, or this batcher's own last write of the instance until the
// watch shows it (scheduling/assumed.ts): an agent reports Starting and then
// Running at once, and the second must not wait for the watch to bring the
// first. When a guard fails, nothing of that transaction is written; the
// reports whose instance changed are recorded on their own, as before
// (recordStatus: reads the stored instance, retries), the rest go once more
// together. A transaction that fails outright sends each report on its own. A report is
// answered (its promise resolves) only once its status is in etcd, so a
// stream's next message still waits for it as before.
import type { Instance, InstanceStatus } from "@grove/api";
import { Keys, type Store, type TxnCompare, type TxnOp } from "../store/store";
import { deepEqual } from "../resources/repository";
import { Assumed, type AssumeSource } from "../scheduling/assumed";
import { staleKeys } from "../scheduling/commit-conflicts";

/** Reports per transaction: below etcd's --max-txn-ops (128). */
export const STATUS_BATCH_MAX = 100;
/** And well below etcd's 1.5 MiB request limit. */
const STATUS_BATCH_BYTES = 512 * 1024;

export interface StatusRef {
  uid: string;
  namespace: string;
  name: string;
}

/** NodeRegistration.recordStatus: one report on its own (true: the instance is gone or replaced). */
export type RecordOne = (
  node: string,
  ref: StatusRef,
  fold: (cur: Instance) => InstanceStatus | undefined,
) => Promise<boolean>;

interface Entry {
  node: string;
  ref: StatusRef;
  fold: (cur: Instance) => InstanceStatus | undefined;
  resolve: (gone: boolean) => void;
  reject: (err: unknown) => void;
}

interface Write {
  entry: Entry;
  compare: TxnCompare;
  op: TxnOp<Instance>;
  bytes: number;
}

export class StatusBatcher {
  private waiting: Entry[] = [];
  private flush: NodeJS.Immediate | undefined;
  /** Transactions written (for tests and the bench's account). */
  transactions = 0;

  /** The informer's instances with this batcher's writes laid over them until its watch shows them. */
  private readonly written: Assumed<Instance>;

  constructor(
    private readonly store: Store,
    instances: AssumeSource<Instance>,
    private readonly recordOne: RecordOne,
  ) {
    this.written = new Assumed(instances);
  }

  /** Records the report (`fold` turns the stored instance into its next status); true when the instance is gone or replaced. */
  record(node: string, ref: StatusRef, fold: (cur: Instance) => InstanceStatus | undefined): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ node, ref, fold, resolve, reject });
      this.flush ??= setImmediate(() => {
        this.flush = undefined;
        const batch = this.waiting;
        this.waiting = [];
        void this.write(batch);
      });
    });
  }

  private async write(batch: Entry[]): Promise<void> {
    const writes: Write[] = [];
    const keys = new Set<string>();
    for (const entry of batch) {
      const { ref, node } = entry;
      const key = Keys.object("instances", ref.namespace, ref.name);
      const inst = this.written.get(`${ref.namespace}/${ref.name}`);
      // Gone or replaced (as recordStatus decides it).
      if (!inst || inst.metadata.uid !== ref.uid || inst.spec.nodeName !== node) {
        entry.resolve(true);
        continue;
      }
      const next = entry.fold(inst);
      if (!next || deepEqual(next, inst.status)) {
        entry.resolve(false);
        continue;
      }
      // A second report on one key in one batch goes on its own at once (recordStatus reads the
      // stored instance). A stream waits for each answer, so its node never sends two in one batch.
      if (keys.has(key) || inst.metadata.resourceVersion === undefined) {
        this.alone(entry);
        continue;
      }
      keys.add(key);
      const { resourceVersion, ...metadata } = inst.metadata;
      const value: Instance = { ...inst, metadata, status: next };
      writes.push({
        entry,
        compare: { key, modRevision: resourceVersion },
        op: { type: "put", key, value },
        bytes: JSON.stringify(value).length,
      });
    }
    let chunk: Write[] = [];
    let bytes = 0;
    const sends: Array<Promise<void>> = [];
    for (const w of writes) {
      if (chunk.length >= STATUS_BATCH_MAX || (chunk.length > 0 && bytes + w.bytes > STATUS_BATCH_BYTES)) {
        sends.push(this.send(chunk));
        chunk = [];
        bytes = 0;
      }
      chunk.push(w);
      bytes += w.bytes;
    }
    if (chunk.length > 0) sends.push(this.send(chunk));
    await Promise.all(sends);
  }

  private async send(chunk: Write[], again = true): Promise<void> {
    let r: { succeeded: boolean; revision: string };
    try {
      this.transactions++;
      r = await this.store.txn(
        chunk.map((w) => w.compare),
        chunk.map((w) => w.op),
      );
    } catch {
      // Each on its own, as before: one that fails again fails its own stream only.
      for (const w of chunk) this.alone(w.entry);
      return;
    }
    if (r.succeeded) {
      // The next report on these folds from what was written, not from a watch that may lag behind it.
      for (const w of chunk) if (w.op.type === "put") this.written.assume(w.op.value, r.revision);
      for (const w of chunk) w.entry.resolve(false);
      return;
    }
    // Some instance changed since the copy its status was folded from: those
    // reports on their own (recordStatus reads the stored one), the rest once more together.
    let stale: Set<string>;
    try {
      stale = again
        ? await staleKeys(
            this.store,
            chunk.map((w) => w.compare),
          )
        : new Set(chunk.map((w) => w.op.key));
    } catch {
      stale = new Set(chunk.map((w) => w.op.key));
    }
    const rest: Write[] = [];
    for (const w of chunk) {
      if (stale.has(w.op.key)) this.alone(w.entry);
      else rest.push(w);
    }
    if (rest.length > 0) await this.send(rest, false);
  }

  private alone(entry: Entry): void {
    this.recordOne(entry.node, entry.ref, entry.fold).then(entry.resolve, entry.reject);
  }
}
