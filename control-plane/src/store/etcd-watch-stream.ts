// etcd3 carries every watcher of one client over a single gRPC stream and
// attaches them one at a time, each waiting for etcd's "created" answer. A
// stream that went through a cut connection can stay open but answer nothing
// afterwards (seen in ha-store-health.test.ts: after an iptables cut, unary
// calls worked again while no new watcher was ever confirmed, so informers
// stayed stale and an election waiting on a key's deletion never ended). The
// client's keepalive does not catch it: the connection itself is healthy.
//
// The remedy is to end that stream: etcd3 then tells every watcher it was
// disconnected and opens a new stream (watchers resume from their revision).
// etcd3 has no public call for it; its watch manager's error path does
// exactly this, so we call that, guarded by a shape check.
import type { Etcd3 } from "etcd3";

interface WatchManagerLike {
  state?: unknown;
  handleError?(err: Error): void;
  handleResponse?(res: unknown): void;
  handleCreatedResponse?(res: unknown): void;
}

/** etcd3's WatchManager state while its stream is open (State.Connected). */
const STREAM_CONNECTED = 2;

const lastReset = new WeakMap<object, number>();

/**
 * Ends `client`'s watch stream so etcd3 opens a new one. At most once per
 * `minIntervalMs` per client (every stuck watcher may ask). Returns whether
 * it reset the stream; false also when etcd3's internals are not as expected.
 */
export function resetWatchStream(client: Etcd3, reason: string, minIntervalMs: number): boolean {
  const manager = (client as unknown as { watchManager?: WatchManagerLike }).watchManager;
  if (!manager || typeof manager.handleError !== "function") return false;
  // Idle or connecting: etcd3 is already opening a new stream.
  if (manager.state !== STREAM_CONNECTED) return false;
  const now = performance.now();
  const last = lastReset.get(client);
  if (last !== undefined && now - last < minIntervalMs) return false;
  lastReset.set(client, now);
  manager.handleError(new Error(`watch stream reset: ${reason}`));
  return true;
}

/**
 * Whether `client`'s watch stream answers: a watcher on `key` must be
 * confirmed by etcd within `timeoutMs`. The watcher is cancelled either way.
 */
export async function watchStreamAnswers(client: Etcd3, key: string, timeoutMs: number): Promise<boolean> {
  const watcher = client.watch().key(key).watcher();
  watcher.on("error", () => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      watcher.once("connected", () => resolve(true));
      watcher.once("disconnected", () => resolve(false));
    });
  } finally {
    clearTimeout(timer);
    // Cancelling waits for etcd's answer (or the stream's end); do not wait on a stuck stream.
    void watcher.cancel().catch(() => undefined);
  }
}

/** What etcd3's watch manager throws for an answer that names no watcher it has. */
const STALE_ANSWER = [
  "Failed to find watcher for IWatchResponse",
  "Could not find watcher corresponding to create response",
  "Got a watch creation error, but found no pending watchers",
];
const hardened = new WeakSet<object>();

/**
 * etcd3's watch manager throws from its stream's `data` handler when an answer names a watcher it
 * no longer has: an uncaught exception that ends the process. It happens when a stream errs while
 * etcd is answering (seen once in ha-store-health.test.ts: grove-server died just after etcd
 * answered again following an iptables cut): the manager forgets every watcher's id, and answers
 * still on their way arrive afterwards. Such an answer is caught here instead: `onStale` is told,
 * and if a stream is open it is ended, so etcd3 tells every watcher it was disconnected and they
 * resume from their revisions on a new stream (what any stream error does; a confused mapping of
 * answers to watchers is never kept). Returns false when etcd3's internals are not as expected.
 */
export function hardenWatchManager(client: Etcd3, onStale: (message: string) => void): boolean {
  const manager = (client as unknown as { watchManager?: WatchManagerLike }).watchManager;
  if (
    !manager ||
    typeof manager.handleError !== "function" ||
    typeof manager.handleResponse !== "function" ||
    typeof manager.handleCreatedResponse !== "function"
  )
    return false;
  if (hardened.has(manager)) return true;
  hardened.add(manager);
  for (const name of ["handleResponse", "handleCreatedResponse"] as const) {
    const original = manager[name]!;
    manager[name] = function (this: WatchManagerLike, res: unknown): void {
      try {
        original.call(this, res);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (!STALE_ANSWER.some((m) => message.includes(m))) throw err;
        onStale(message);
        if (this.state === STREAM_CONNECTED) this.handleError!(new Error(`watch stream reset: ${message}`));
      }
    };
  }
  return true;
}
