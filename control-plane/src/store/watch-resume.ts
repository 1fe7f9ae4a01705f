// The watch wrapper's own resume bookkeeping, kept apart from I/O so it can be
// tested without etcd.
//
// Why not trust the etcd3 client: it resumes from the last *header* revision
// + 1, but a watch's create response and catch-up batches carry the current
// store revision, so a stream that drops mid catch-up would resume past events
// it never delivered. Like the Go client we resume from the last delivered
// *event's* mod revision + 1, and drop anything at or below it when a
// reconnect replays events we already have.
//
// Why an etcd watch starts one revision *before* the resume revision: etcd
// accepts a watch from exactly the compact revision, but what it sends for that
// revision is incomplete. A compaction at a delete's revision drops the
// tombstone (etcd-io/etcd#18089, fixed in 3.4/3.5 by #18475/#18474 in Aug 2024;
// the Debian etcd 3.4.23 we test with has it), so the delete is never sent, and
// any event there loses its prev_kv (read at revision - 1, compacted). Starting at resume - 1, which we already delivered and drop
// again, makes etcd refuse (compacted: we relist) whenever the resume revision
// is at or below the compact revision, and every revision we do need is above it.

/** Anything carrying an etcd mod revision (decimal string, 64-bit). */
export interface Revisioned {
  modRevision: string;
}

export function parseRevision(revision: string): bigint {
  if (!/^\d+$/.test(revision)) throw new Error(`not an etcd revision: ${JSON.stringify(revision)}`);
  return BigInt(revision);
}

export class ResumeTracker {
  /** The lowest revision we still need: last delivered event's revision + 1. */
  private next: bigint;

  /** @param fromRevision the first revision to deliver (inclusive), e.g. list revision + 1 */
  constructor(fromRevision: string) {
    this.next = parseRevision(fromRevision);
  }

  /** Where a (re)created etcd watch must start. */
  get resumeRevision(): string {
    return this.next.toString();
  }

  /**
   * Where to start the etcd watch itself: one below the resume revision (see
   * above), never 0 (etcd's "from now"). The replayed revision is dropped by accept().
   */
  get watchStartRevision(): string {
    return (this.next > 1n ? this.next - 1n : 1n).toString();
  }

  /** The last revision whose events were all delivered ("0" if none yet). */
  get lastDeliveredRevision(): string {
    return (this.next > 0n ? this.next - 1n : 0n).toString();
  }

  /**
   * Takes the events of one etcd watch response (etcd never splits one
   * revision across responses) and returns those not delivered yet, in order;
   * advances the resume revision past the last returned event. Events below
   * the resume revision (replays after a reconnect) and events going backwards
   * within the batch are dropped.
   */
  accept<E extends Revisioned>(events: readonly E[]): E[] {
    const out: E[] = [];
    let floor = this.next;
    let last: bigint | undefined;
    for (const event of events) {
      const rev = parseRevision(event.modRevision);
      if (rev < floor) continue;
      out.push(event);
      floor = rev; // same revision may repeat (one txn, several keys); lower may not
      last = rev;
    }
    if (last !== undefined) this.next = last + 1n;
    return out;
  }

  /** After a relist read at `revision`: the watch continues at revision + 1. */
  relisted(revision: string): void {
    const rev = parseRevision(revision);
    // A relist never moves us backwards: events up to `next - 1` were delivered.
    if (rev + 1n > this.next) this.next = rev + 1n;
  }
}
