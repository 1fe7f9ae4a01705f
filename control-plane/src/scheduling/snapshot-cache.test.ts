// The incremental scheduling snapshot must say what the list-based one
// (scheduler/snapshot.ts) says of the same cache, after any sequence of
// informer events: instances created, bound, resized, finished, released,
// deleted, and re-created under the same name.
import { isFinished, newInstance, type App, type Instance } from "@grove/api";
import type { InformerEvent, InformerHandler } from "../controllers/informer";
import { objectKey } from "../controllers/informer";
import { allocations, boundInstances, usedHostPorts } from "../scheduler/snapshot";
import { SnapshotCache } from "./snapshot-cache";

/** An informer's cache and its events, driven by the test. */
class FakeSource {
  readonly cache = new Map<string, Instance>();
  private readonly handlers: InformerHandler<Instance>[] = [];
  list(): Instance[] {
    return [...this.cache.values()];
  }
  on(h: InformerHandler<Instance>): void {
    this.handlers.push(h);
  }
  put(i: Instance): void {
    const old = this.cache.get(objectKey(i));
    this.cache.set(objectKey(i), i);
    this.emit(old ? { type: "updated", object: i, old } : { type: "added", object: i });
  }
  delete(i: Instance): void {
    this.cache.delete(objectKey(i));
    this.emit({ type: "deleted", object: i });
  }
  private emit(ev: InformerEvent<Instance>): void {
    for (const h of this.handlers) h(ev);
  }
}

function app(name: string): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: { rootfs: "busybox", command: ["sleep", "1"], instances: 8 },
  } as App;
}

/** A small seeded generator (mulberry32): the same sequence every run, printed seed on failure. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sorted<T>(m: Map<string, T>, norm: (v: T) => unknown = (v) => v): Array<[string, unknown]> {
  return [...m.entries()].map(([k, v]): [string, unknown] => [k, norm(v)]).sort(([a], [b]) => a.localeCompare(b));
}

function expectSame(cache: SnapshotCache, source: FakeSource, step: string): void {
  const all = source.list();
  const pending = all
    .filter((i) => !i.spec.nodeName && !isFinished(i))
    .sort((a, b) => (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? ""));
  const { used, ports, bound } = cache.views();
  const byId = (x: { instances: Array<{ id: string }>; appCounts: Map<string, number> }) => ({
    instances: [...x.instances].sort((a, b) => a.id.localeCompare(b.id)),
    appCounts: sorted(x.appCounts),
  });
  const actual = {
    pending: cache.pending().map(objectKey),
    used: sorted(used),
    ports: sorted(ports, (s) => [...s].sort()),
    bound: sorted(bound, byId),
  };
  const expected = {
    pending: pending.map(objectKey),
    used: sorted(allocations(all)),
    ports: sorted(usedHostPorts(all), (s) => [...s].sort()),
    bound: sorted(boundInstances(all), byId),
  };
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    expect({ step, ...actual }).toEqual({ step, ...expected });
  }
}

describe("SnapshotCache", () => {
  it.each([1, 2, 3, 4, 5])("agrees with the list-based snapshot after random events (seed %i)", (seed) => {
    const r = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const source = new FakeSource();
    const apps = [app("web"), app("db")];
    const nodes = ["n1", "n2", "n3"];
    // Some instances exist before the cache is made (the informer's list).
    for (let k = 0; k < 4; k++) source.put(newInstance(pick(apps), k, 0, 0));
    const cache = new SnapshotCache(source);
    expectSame(cache, source, "initial");
    let clock = 0;
    for (let step = 0; step < 400; step++) {
      const existing = source.list();
      const i = existing.length > 0 ? pick(existing) : undefined;
      const op = r();
      let what: string;
      if (!i || op < 0.2) {
        const created = newInstance(pick(apps), Math.floor(r() * 8), 0, 0);
        created.metadata.creationTimestamp = new Date(1_700_000_000_000 + (clock++ % 7) * 1000).toISOString();
        source.put(created);
        what = `create ${objectKey(created)}`;
      } else if (op < 0.45 && !i.spec.nodeName) {
        const port = r() < 0.5 ? [{ name: "http", containerPort: 80, hostPort: 20000 + Math.floor(r() * 4) }] : [];
        source.put({ ...i, spec: { ...i.spec, nodeName: pick(nodes), ports: port } });
        what = `bind ${objectKey(i)}`;
      } else if (op < 0.6) {
        source.put({ ...i, spec: { ...i.spec, resources: { ...i.spec.resources, cpuMillis: Math.floor(r() * 900) } } });
        what = `resize ${objectKey(i)}`;
      } else if (op < 0.75) {
        source.put({ ...i, status: { state: "Exited", finishedAt: "2026-01-01T00:00:00Z" } });
        what = `finish ${objectKey(i)}`;
      } else if (op < 0.85 && i.status?.state === "Exited") {
        source.put({ ...i, status: { ...i.status, releasedAt: "2026-01-01T00:00:03Z" } });
        what = `release ${objectKey(i)}`;
      } else {
        source.delete(i);
        what = `delete ${objectKey(i)}`;
      }
      expectSame(cache, source, `step ${step}: ${what}`);
    }
  });
});
