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
