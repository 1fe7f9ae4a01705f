// The leader fence: a Store view for leader-only controllers (App
// controller, scheduler, node lifecycle). Every write it makes is one etcd
// transaction that also compares the leader's election key with the create
// revision it had when this replica was elected (its epoch). Once the lease
// behind that key has expired (the key is deleted, and a new leader's key has
// a later create revision), the compare fails and the write is rejected in
// etcd itself, whatever this process believes: a leader paused by SIGSTOP or
// cut off from etcd cannot write after another replica took over.
//
// The view also refuses writes locally, without asking etcd, once the fence
// says this replica stopped acting as leader (its monotonic deadline passed,
// see leader/election.ts). The etcd compare is what makes it safe; the local
// check only keeps a stale leader from trying.
//
// Controllers get this view and nothing else, so none of their writes can
// forget the fence. Reads and watches go straight to the inner store.
import { GroveError } from "@grove/api";
import type {
  KeyValue,
  ListPage,
  ListPageOptions,
  ListResult,
  Store,
  TxnCompare,
  TxnOp,
  TxnResult,
  Watch,
  WatchHandlers,
} from "./store";
import { alreadyExists, conflict, notFound } from "./etcd-errors";

/** What a fenced view compares: the election key a leader holds and when it was created. */
export interface LeaderFence {
  /** The etcd key of this replica's campaign (election/<name>/<lease id>). */
  readonly key: string;
  /** The key's create revision: the leader's epoch, larger for every later leader. */
  readonly epoch: string;
  /** False once this replica stopped acting as leader (deadline passed, lease lost, resigned). */
  holds(): boolean;
}

/**
 * A write refused because the writer is not (or no longer) the leader. Code
 * Conflict, so callers that requeue on conflicts do so; `isFencedOut` tells it apart.
 */
export class FencedOutError extends GroveError {
  readonly fencedOut = true;
  constructor(
    readonly epoch: string,
    what: string,
    readonly where: "local" | "etcd",
  ) {
    super(
      "Conflict",
      where === "local"
        ? `${what} refused: this replica stopped acting as leader (epoch ${epoch})`
        : `${what} rejected by etcd: the leader key of epoch ${epoch} is gone (another replica leads)`,
    );
  }
}

export function isFencedOut(err: unknown): err is FencedOutError {
  return err instanceof FencedOutError;
}

/** Counts of fenced writes, per process (for logs, tests and the bench). */
export const fenceCounters = { rejectedLocally: 0, rejectedByEtcd: 0 };

/** How often a delete without a revision re-reads the key when it changes under it. */
const DELETE_ATTEMPTS = 5;

export class FencedStore implements Store {
  constructor(
    private readonly inner: Store,
    readonly fence: LeaderFence,
    private readonly onRejected: (err: FencedOutError) => void = () => {},
  ) {}

  private get compare(): TxnCompare {
    return { key: this.fence.key, createRevision: this.fence.epoch };
  }

  private reject(what: string, where: "local" | "etcd"): FencedOutError {
    if (where === "local") fenceCounters.rejectedLocally++;
    else fenceCounters.rejectedByEtcd++;
    const err = new FencedOutError(this.fence.epoch, what, where);
    this.onRejected(err);
    return err;
  }

  /** Local check first: a replica that stopped leading does not even try. */
  private checkLocal(what: string): void {
    if (!this.fence.holds()) throw this.reject(what, "local");
  }

  /** After a failed transaction: was it the fence (then throw) or the caller's own compares? */
  private async checkEtcd(what: string): Promise<void> {
    const r = await this.inner.txn([this.compare], []);
    if (!r.succeeded) throw this.reject(what, "etcd");
  }

  get<T>(key: string): Promise<KeyValue<T> | undefined> {
    return this.inner.get<T>(key);
  }

  list<T>(prefix: string): Promise<ListResult<T>> {
    return this.inner.list<T>(prefix);
  }

  listPage<T>(prefix: string, opts?: ListPageOptions): Promise<ListPage<T>> {
    return this.inner.listPage<T>(prefix, opts);
  }

  watch<T>(prefix: string, fromRevision: string, handlers: WatchHandlers<T>): Promise<Watch> {
    return this.inner.watch<T>(prefix, fromRevision, handlers);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  /** A lease is no write: granting one needs no fence (a put under it does). */
  grantLease(ttlSeconds: number): Promise<string> {
    return this.inner.grantLease(ttlSeconds);
  }

  async create<T>(key: string, value: T): Promise<string> {
    const what = `create ${key}`;
    this.checkLocal(what);
    const r = await this.inner.txn([this.compare, { key, modRevision: "0" }], [{ type: "put", key, value }]);
    if (r.succeeded) return r.revision;
    await this.checkEtcd(what);
    throw alreadyExists(key);
  }

  async update<T>(key: string, value: T, expectedModRevision: string): Promise<string> {
    const what = `update ${key}`;
    this.checkLocal(what);
    const r = await this.inner.txn(
      [this.compare, { key, modRevision: expectedModRevision }],
      [{ type: "put", key, value }],
    );
    if (r.succeeded) return r.revision;
    await this.checkEtcd(what);
    throw await this.compareFailure(key, expectedModRevision);
  }

  async delete(key: string, expectedModRevision?: string): Promise<void> {
    const what = `delete ${key}`;
    for (let attempt = 1; ; attempt++) {
      this.checkLocal(what);
      // Without a revision: delete whatever is there now, still as one fenced compare-and-delete.
      const rev = expectedModRevision ?? (await this.inner.get(key))?.modRevision;
      if (rev === undefined) throw notFound(key);
      const r = await this.inner.txn([this.compare, { key, modRevision: rev }], [{ type: "delete", key }]);
      if (r.succeeded) return;
      await this.checkEtcd(what);
      if (expectedModRevision !== undefined || attempt >= DELETE_ATTEMPTS) {
        throw await this.compareFailure(key, rev);
      }
    }
  }

  async txn<T>(compares: TxnCompare[], ops: TxnOp<T>[]): Promise<TxnResult> {
    const what = `transaction on ${ops.map((o) => o.key).join(", ") || "no keys"}`;
    this.checkLocal(what);
    const r = await this.inner.txn<T>([this.compare, ...compares], ops);
    // A failed compare of the caller's own stays `succeeded: false`; the fence's throws.
    if (!r.succeeded) await this.checkEtcd(what);
    return r;
  }

  /** The fence held but the key's compare failed: NotFound or Conflict, as the inner store says it. */
  private async compareFailure(key: string, expected: string): Promise<GroveError> {
    const cur = await this.inner.get(key);
    return cur ? conflict(key, expected, cur.modRevision) : notFound(key);
  }

  /** The inner store stays open: it belongs to the server, the view only to one term of leadership. */
  async close(): Promise<void> {}
}

/** The fenced view a new leader hands its controllers; rejected writes are logged. */
export function fencedStoreFor(
  store: Store,
  fence: LeaderFence,
  log: { warn(obj: object, msg: string): void },
): FencedStore {
  return new FencedStore(store, fence, (err) =>
    log.warn({ epoch: err.epoch, where: err.where, err: err.message }, "fenced write rejected: not the leader"),
  );
}
