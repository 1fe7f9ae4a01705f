// The order of a new leader's first pass over the Apps (AppController.resyncAll).
//
// A new leader syncs every App once, one at a time, and each sync costs a
// few etcd round trips (its revision records), so on a loaded machine a pass
// over some sixty Apps took up to 1.8 s (test/bench/leader-failover.ts). In
// key order, an App created while no leader ran waited behind every settled
// App: the failover's "first committed placement" came that much later. The
// pass now starts with the Apps that have work waiting, then the rest; every
// App is still synced, and every write is still fenced (ordering only), up
// to APP_SYNC_CONCURRENCY Apps at a time.
//
// Work waiting, from the informers alone (no store read):
// - its spec changed since the last status a leader wrote (generation);
// - an index below spec.instances has no instance in charge of it, that is
//   none that is live (not ended, not Unknown) or ended and left so by its
//   restart policy: the App was created, scaled up or lost an instance while
//   no leader ran;
// - it has instances it must delete (scaled down, or of an earlier App of
//   the same name).
import { isFinished, shouldReplace, type App, type Instance } from "@grove/api";
import { objectKey } from "./informer";

/**
 * Apps synced at once (distinct Apps; one App is never synced twice at once).
 * A sync that has work waiting is a few sequential etcd round trips (the
 * instance, its revision record, the App's status), 0.2-0.5 s on a loaded
 * machine, and a failover finds several such Apps (those created while no
 * leader ran): in parallel, the last of them does not wait for the others.
 * Syncs of different Apps write different keys; the one write they can share,
 * a node's allocation (a resize in place), is guarded by the node's revision.
 */
export const APP_SYNC_CONCURRENCY = 4;

/** Whether an instance holds its index: it runs (or is on its way), or ended for good. */
function holdsIndex(inst: Instance): boolean {
  if (inst.status?.state === "Unknown") return false;
  return isFinished(inst) ? !shouldReplace(inst) : true;
}

/** Whether the App controller has something to do for `app` (see the header). */
export function hasWorkWaiting(app: App, own: readonly Instance[]): boolean {
  if ((app.status?.observedGeneration ?? 0) !== (app.metadata.generation ?? 1)) return true;
  const want = app.spec.instances;
  const held = new Set<number>();
  for (const inst of own) {
    if (inst.spec.appUid !== app.metadata.uid || inst.spec.index >= want) return true;
    if (holdsIndex(inst)) held.add(inst.spec.index);
  }
  return held.size < want;
}

/** The Apps' keys ("ns/name"): those with work waiting first, each group in the informer's order. */
export function firstPassOrder(apps: readonly App[], instances: readonly Instance[]): string[] {
  const byApp = new Map<string, Instance[]>();
  for (const inst of instances) {
    if (inst.spec.task !== undefined) continue; // a Task's attempt (task-controller.ts)
    const k = `${inst.metadata.namespace ?? "default"}/${inst.spec.app}`;
    const list = byApp.get(k);
    if (list) list.push(inst);
    else byApp.set(k, [inst]);
  }
  const waiting: string[] = [];
  const settled: string[] = [];
  for (const app of apps) {
    const k = objectKey(app);
    (hasWorkWaiting(app, byApp.get(k) ?? []) ? waiting : settled).push(k);
  }
  return [...waiting, ...settled];
}
