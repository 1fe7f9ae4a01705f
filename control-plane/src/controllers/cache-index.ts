// An index over an informer's cache (client-go's Indexer): the objects under
// each index key, kept current from the informer's own events. The App and
// Task controllers used to filter the whole instances cache at every sync,
// and on every node event: at 10 instances a node and thousands of Apps,
// each sync visited every instance of the cluster. An index makes it the
// instances of one owner (or node).
import type { Instance } from "@grove/api";
import { objectKey, type Informer, type Meta } from "./informer";

export class CacheIndex<T extends Meta> {
  private readonly byKey = new Map<string, Map<string, T>>();

  /** `keysOf` names the index keys of an object (none: not indexed). */
  constructor(
    informer: Informer<T>,
    private readonly keysOf: (obj: T) => readonly string[],
  ) {
    for (const o of informer.list()) this.add(o);
    informer.on((ev) => {
      if (ev.type === "added") this.add(ev.object);
      else if (ev.type === "deleted") this.remove(ev.object, this.keysOf(ev.object));
      else {
        // Replaced in place under the keys it keeps, so each key lists its
        // objects in the cache's own order (the order list() filtered gave).
        const now = this.keysOf(ev.object);
        this.remove(
          ev.old,
          this.keysOf(ev.old).filter((k) => !now.includes(k)),
        );
        this.add(ev.object);
      }
    });
  }

  /**
   * The objects under `key` now (a copy: callers may write while they
   * iterate), in the cache's order for objects that had the key since they
   * were added (an owner's); one that gained it later (bound to a node) is
   * listed after those it joined.
   */
  of(key: string): T[] {
    const m = this.byKey.get(key);
    return m ? [...m.values()] : [];
  }

  private add(obj: T): void {
    for (const k of this.keysOf(obj)) {
      let m = this.byKey.get(k);
      if (!m) this.byKey.set(k, (m = new Map()));
      m.set(objectKey(obj), obj);
    }
  }

  private remove(obj: T, keys: readonly string[]): void {
    for (const k of keys) {
      const m = this.byKey.get(k);
      if (!m) continue;
      m.delete(objectKey(obj));
      if (m.size === 0) this.byKey.delete(k);
    }
  }
}

/** "namespace/app" of an App's instance, "namespace/task" of a Task's attempt (their owners' keys). */
export function ownerKey(i: Instance): string {
  return `${i.metadata.namespace ?? "default"}/${i.spec.task ?? i.spec.app}`;
}

/** The instances of each App, by "namespace/app" (a Task's attempts are not an App's). */
export function instancesByApp(instances: Informer<Instance>): CacheIndex<Instance> {
  return new CacheIndex(instances, (i) => (i.spec.task === undefined ? [ownerKey(i)] : []));
}

/** The attempts of each Task, by "namespace/task". */
export function attemptsByTask(instances: Informer<Instance>): CacheIndex<Instance> {
  return new CacheIndex(instances, (i) => (i.spec.task !== undefined ? [ownerKey(i)] : []));
}

/** The instances bound to each node (spec.nodeName). */
export function instancesOnNode(instances: Informer<Instance>): CacheIndex<Instance> {
  return new CacheIndex(instances, (i) => (i.spec.nodeName ? [i.spec.nodeName] : []));
}
