// The Store seen through metrics and traces: every call is timed into
// grove_etcd_request_duration_seconds, made a child span of whatever span is
// active (an API request, a controller's sync, a scheduler pass; a call
// outside any span starts no trace), and every write made inside a span
// leaves its trace context for the stage that reacts to the written key
// (remembered as the write is sent; a failed write's entry just expires)
// (@grove/common's traceLinks). Relists of watches are counted.
import { SpanKind, traceLinks, withSpan } from "@grove/common";
import type { ListPageOptions, Store, TxnCompare, TxnOp, WatchHandlers } from "../store/store";
import type { ControlPlaneMetrics } from "./metrics";

/** "/grove/instances/ns/name" -> "instances" (a bounded label). */
export function collectionOf(key: string): string {
  return key.replace(/^\/grove\//, "").split("/")[0] || "root";
}

export function instrumentStore(inner: Store, metrics: ControlPlaneMetrics): Store {
  const call = <T>(operation: string, key: string, fn: () => Promise<T>, written: readonly string[] = []): Promise<T> =>
    withSpan(
      `store ${operation}`,
      (span) => {
        // Before the write: its watch event can reach a controller before the write's answer reaches us.
        if (span) for (const k of written) traceLinks.remember(k);
        return metrics.timeStore(operation, fn);
      },
      {
        childOnly: true,
        kind: SpanKind.CLIENT,
        attributes: { "db.system": "etcd", "db.operation": operation, "grove.key": key },
      },
    );
  return {
    get: (key) => call("get", key, () => inner.get(key)),
    list: (prefix) => call("list", prefix, () => inner.list(prefix)),
    listPage: (prefix, opts?: ListPageOptions) => call("list", prefix, () => inner.listPage(prefix, opts)),
    create: (key, value) => call("create", key, () => inner.create(key, value), [key]),
    update: (key, value, rev) => call("update", key, () => inner.update(key, value, rev), [key]),
    delete: (key, rev) => call("delete", key, () => inner.delete(key, rev), [key]),
    txn: <T>(compares: TxnCompare[], ops: TxnOp<T>[]) =>
      call(
        "txn",
        ops.length === 1 ? ops[0]!.key : `${ops.length} operations`,
        async () => {
          const r = await inner.txn(compares, ops);
          // A transaction whose compares failed wrote nothing: nothing to hand on.
          if (!r.succeeded) throw Object.assign(new Error("compare failed"), { code: "Conflict", result: r });
          return r;
        },
        ops.map((o) => o.key),
      ).catch((err: { code?: string; result?: Awaited<ReturnType<Store["txn"]>> }) => {
        if (err.result) return err.result;
        throw err;
      }),
    watch: <T>(prefix: string, from: string, handlers: WatchHandlers<T>) => {
      const collection = collectionOf(prefix);
      const onRelist = handlers.onRelist;
      return inner.watch<T>(prefix, from, {
        ...handlers,
        ...(onRelist
          ? {
              onRelist: (items, revision) => {
                metrics.watchRelists.inc({ collection });
                onRelist(items, revision);
              },
            }
          : {}),
      });
    },
    grantLease: (ttl) => call("lease", "", () => inner.grantLease(ttl)),
    ping: () => call("ping", "", () => inner.ping()),
    close: () => inner.close(),
  };
}
