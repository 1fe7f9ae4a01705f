// The scheduler's own committed writes, shown before the watch brings them
// (kube-scheduler's "assume" cache, for writes that are already in etcd).
// A pass's bindings and node updates go to etcd in guarded transactions; the
// next pass used to wait until both informers' watches showed them (about
// 1.4 s a pass with a busy grove-server). Instead, each transaction that
// succeeds is applied here at the revision etcd gave it, and the next pass
// plans on the informer's cache with these objects laid over it. The watch
// then confirms them: once the informer has reached an assumption's revision
// (one watch delivers a prefix's events in revision order), the informer's
// own object replaces it, whatever it shows (the same object, or what came
// after: a delete, a status report). An assumption can also be rolled back
// (forget): the overlay then shows the informer's object again, so the
// capacity it booked is free. Nothing here loosens the guards: the objects
// carry the revision their transaction produced, which is what the next
// pass's compares name, so a write by anyone else still fails them.
import { objectKey, type InformerEvent, type InformerHandler, type Meta } from "../controllers/informer";

/** What the overlay follows: an informer's cache, events and revision. */
export interface AssumeSource<T> {
  get(key: string): T | undefined;
  list(): T[];
  on(handler: InformerHandler<T>): void;
  /** The store revision the cache reflects (decimal string; it only grows). */
  readonly revision: string;
}

interface Assumption<T> {
  obj: T;
  revision: bigint;
}

export class Assumed<T extends Meta> {
  private readonly assumed = new Map<string, Assumption<T>>();
  private readonly handlers: InformerHandler<T>[] = [];
  /** At most the lowest revision assumed (a sweep for assumptions the watch has passed waits until then). */
  private lowest = 0n;

  constructor(private readonly source: AssumeSource<T>) {
    source.on((ev) => this.onSourceEvent(ev));
  }

  /** Assumptions not yet confirmed by the watch. */
  get size(): number {
    return this.assumed.size;
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.assumed.get(key)?.obj ?? this.source.get(key);
  }

  list(): T[] {
    const items = this.source.list();
    if (this.assumed.size === 0) return items;
    return items.map((o) => this.assumed.get(objectKey(o))?.obj ?? o);
  }

  /**
   * `obj` was written at `revision` (a transaction that succeeded): show it
   * until the watch reaches that revision. Nothing when the informer is there
   * already (it shows this write or what came after it).
   */
  assume(obj: T, revision: string): void {
    const rev = BigInt(revision);
    // Past it: the informer shows this write or what came after. (At it, the
    // revision's other events may still be on their way: assume.)
    if (BigInt(this.source.revision) > rev) return;
    const key = objectKey(obj);
    const prior = this.assumed.get(key);
    if (prior && prior.revision >= rev) return;
    const before = this.get(key);
    const next = { ...obj, metadata: { ...obj.metadata, resourceVersion: revision } };
    if (this.assumed.size === 0 || rev < this.lowest) this.lowest = rev;
    this.assumed.set(key, { obj: next, revision: rev });
    this.emit(before ? { type: "updated", object: next, old: before } : { type: "added", object: next });
  }

  /** Rolls back the assumption of `key`: the informer's object shows again (and frees what the assumed one booked). */
  forget(key: string): void {
    const a = this.assumed.get(key);
    if (!a) return;
    this.assumed.delete(key);
    const cur = this.source.get(key);
    this.emit(cur ? { type: "updated", object: cur, old: a.obj } : { type: "deleted", object: a.obj });
  }

  private onSourceEvent(ev: InformerEvent<T>): void {
    const key = objectKey(ev.object);
    const a = this.assumed.get(key);
    const reached = BigInt(this.source.revision);
    // Older than our own write (only a relist of an older state could bring
    // that): the assumption stands until the watch gets to it.
    if (a && reached < a.revision) return;
    if (!a) this.emit(ev);
    else {
      // Followers hold the assumed object: the change is from it.
      this.assumed.delete(key);
      this.emit(
        ev.type === "deleted" ? { type: "deleted", object: a.obj } : { type: "updated", object: ev.object, old: a.obj },
      );
    }
    // Others the watch has passed without an event of theirs (a relist): the
    // informer's object stands. Only below `reached`: one transaction's writes
    // share a revision and arrive one event at a time, so at `reached` the
    // others of that revision may be still to come.
    if (this.assumed.size === 0 || reached <= this.lowest) return;
    let lowest: bigint | undefined;
    for (const [k, other] of this.assumed) {
      if (other.revision < reached) this.forget(k);
      else if (lowest === undefined || other.revision < lowest) lowest = other.revision;
    }
    this.lowest = lowest ?? 0n;
  }

  private emit(ev: InformerEvent<T>): void {
    for (const h of this.handlers) h(ev);
  }
}
