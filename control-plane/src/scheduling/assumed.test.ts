// The scheduler's assumptions (assumed.ts): a committed write shows at once,
// to the overlay's readers and to the scheduling snapshot that follows it;
// the watch confirms it; a rolled-back or contradicted one frees what it booked.
import { newInstance, type App, type Instance } from "@grove/api";
import { objectKey, type InformerEvent, type InformerHandler } from "../controllers/informer";
import { Assumed } from "./assumed";
import { SnapshotCache } from "./snapshot-cache";

/** An informer's cache, events and revision, driven by the test. */
class FakeSource {
  readonly cache = new Map<string, Instance>();
  revision = "10";
  private readonly handlers: InformerHandler<Instance>[] = [];
  get(key: string): Instance | undefined {
    return this.cache.get(key);
  }
  list(): Instance[] {
    return [...this.cache.values()];
  }
  on(h: InformerHandler<Instance>): void {
    this.handlers.push(h);
  }
  /** A watch event: the object at `revision` (the informer advances first, as Informer does). */
  put(i: Instance, revision: string): void {
    this.revision = revision;
    const obj = { ...i, metadata: { ...i.metadata, resourceVersion: revision } };
    const old = this.cache.get(objectKey(i));
    this.cache.set(objectKey(i), obj);
    this.emit(old ? { type: "updated", object: obj, old } : { type: "added", object: obj });
  }
  delete(key: string, revision: string): void {
    this.revision = revision;
    const old = this.cache.get(key)!;
    this.cache.delete(key);
    this.emit({ type: "deleted", object: old });
  }
  private emit(ev: InformerEvent<Instance>): void {
    for (const h of this.handlers) h(ev);
  }
}

const app: App = {
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name: "web", namespace: "default", uid: "uid-web" },
  spec: { rootfs: "busybox", command: ["sleep", "1"], instances: 2, resources: { cpu: "500m", memory: "256Mi" } },
} as App;

const bound = (i: Instance, node: string): Instance => ({ ...i, spec: { ...i.spec, nodeName: node } });

function setup() {
  const source = new FakeSource();
  const web0 = newInstance(app, 0, 0, 0);
  const web1 = newInstance(app, 1, 0, 0);
  source.put(web0, "5");
  source.put(web1, "6");
  source.revision = "10";
  const assumed = new Assumed(source);
  const snapshot = new SnapshotCache(assumed);
  const cpuOn = (node: string) => snapshot.views().used.get(node)?.cpuMillis ?? 0;
  const pendingNames = () => snapshot.pending().map((i) => i.metadata.name);
  return { source, assumed, snapshot, web0, web1, cpuOn, pendingNames };
}

describe("Assumed: committed writes before the watch shows them", () => {
  test("an assumed binding shows at once, at its revision, in the overlay and the snapshot", () => {
    const { source, assumed, web0, cpuOn, pendingNames } = setup();
    expect(pendingNames()).toEqual(["web-0", "web-1"]);
    assumed.assume(bound(web0, "a"), "11");
    // The informer has not seen it; the overlay and the snapshot have.
    expect(source.get("default/web-0")?.spec.nodeName).toBeUndefined();
    expect(assumed.get("default/web-0")?.spec.nodeName).toBe("a");
    expect(assumed.get("default/web-0")?.metadata.resourceVersion).toBe("11");
    expect(assumed.list().find((i) => i.metadata.name === "web-0")?.spec.nodeName).toBe("a");
    expect(pendingNames()).toEqual(["web-1"]);
    expect(cpuOn("a")).toBe(500);
  });

  test("the watch confirms it: the informer's object replaces the assumption, the snapshot unchanged", () => {
    const { source, assumed, web0, cpuOn, pendingNames } = setup();
    assumed.assume(bound(web0, "a"), "11");
    source.put(bound(web0, "a"), "11");
    expect(assumed.size).toBe(0);
    expect(cpuOn("a")).toBe(500);
    expect(pendingNames()).toEqual(["web-1"]);
    // What came after (a status report, then a delete) follows as usual.
    source.put({ ...bound(web0, "a"), status: { state: "Running" } }, "12");
    expect(cpuOn("a")).toBe(500);
    source.delete("default/web-0", "13");
    expect(cpuOn("a")).toBe(0);
  });

  test("a rolled-back assumption frees the capacity and the instance is pending again", () => {
    const { assumed, web0, cpuOn, pendingNames } = setup();
    assumed.assume(bound(web0, "a"), "11");
    expect(cpuOn("a")).toBe(500);
    assumed.forget("default/web-0");
    expect(assumed.size).toBe(0);
    expect(cpuOn("a")).toBe(0);
    expect(pendingNames().sort()).toEqual(["web-0", "web-1"]);
    expect(assumed.get("default/web-0")?.spec.nodeName).toBeUndefined();
  });

  test("a watch past the assumption's revision without its event (a relist) leaves the informer's object", () => {
    const { source, assumed, web0, web1, cpuOn, pendingNames } = setup();
    assumed.assume(bound(web0, "a"), "11");
    // The informer relisted at 20 and web-0 was deleted meanwhile: only web-1's change arrives.
    source.cache.delete("default/web-0");
    source.put(bound(web1, "b"), "20");
    expect(assumed.size).toBe(0);
    expect(cpuOn("a")).toBe(0);
    expect(cpuOn("b")).toBe(500);
    expect(pendingNames()).toEqual([]);
  });

  test("one transaction's writes share a revision: the first one's event does not roll back the others", () => {
    const { source, assumed, web0, web1, cpuOn, pendingNames } = setup();
    assumed.assume(bound(web0, "a"), "11");
    assumed.assume(bound(web1, "a"), "11");
    source.put(bound(web0, "a"), "11"); // web-1's event at 11 is still to come
    expect(assumed.size).toBe(1);
    expect(cpuOn("a")).toBe(1000);
    expect(pendingNames()).toEqual([]);
    source.put(bound(web1, "a"), "11");
    expect(assumed.size).toBe(0);
    expect(cpuOn("a")).toBe(1000);
  });

  test("the deletion of an assumed instance removes it from the node it was assumed on", () => {
    const { source, assumed, web0, cpuOn } = setup();
    assumed.assume(bound(web0, "a"), "11");
    // A relist that never showed the binding, web-0 deleted (the informer's object is the unbound one).
    source.delete("default/web-0", "14");
    expect(assumed.size).toBe(0);
    expect(cpuOn("a")).toBe(0);
  });

  test("nothing is assumed that the informer already shows (the watch was first)", () => {
    const { source, assumed, web0, cpuOn } = setup();
    source.put(bound(web0, "a"), "11");
    source.put({ ...bound(web0, "a"), status: { state: "Running" } }, "12");
    assumed.assume(bound(web0, "a"), "11"); // the informer is past 11
    expect(assumed.size).toBe(0);
    expect(assumed.get("default/web-0")?.status?.state).toBe("Running");
    expect(cpuOn("a")).toBe(500);
  });

  test("an event older than the assumption does not undo it", () => {
    const { source, assumed, web0, cpuOn, pendingNames } = setup();
    assumed.assume(bound(web0, "a"), "11");
    // Only a relist of an older state can do this; the informer is at 10 still.
    source.put({ ...web0, status: { state: "Pending" } }, "10");
    expect(assumed.size).toBe(1);
    expect(cpuOn("a")).toBe(500);
    expect(pendingNames()).toEqual(["web-1"]);
  });
});
