// The index over an informer's cache: under each key exactly what filtering
// the whole cache gives, in the cache's order, as objects are added, change
// key, change in place and are deleted (through a real Informer on a
// MemoryStore, with a relist's own events at the start).
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { CacheIndex } from "./cache-index";
import { Informer } from "./informer";

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec: { owner: string; node?: string; n?: number };
}

const key = (name: string) => Keys.object("instances", "ns", name);
const obj = (name: string, owner: string, node?: string, n = 0): Obj => ({
  metadata: { name, namespace: "ns" },
  spec: { owner, ...(node ? { node } : {}), n },
});

async function settle(informer: Informer<Obj>, store: MemoryStore): Promise<void> {
  const { revision } = await store.list("/");
  await informer.waitFor("ns/__none__", revision, 5000);
}

test("lists under each key what filtering the cache gives, in the cache's order", async () => {
  const store = new MemoryStore();
  await store.create(key("a"), obj("a", "web", "n1"));
  const informer = new Informer<Obj>(store, Keys.collection("instances"));
  await informer.start();
  const byOwner = new CacheIndex(informer, (o) => [o.spec.owner]);
  const byNode = new CacheIndex(informer, (o) => (o.spec.node ? [o.spec.node] : []));
  const names = (xs: Obj[]) => xs.map((o) => o.metadata.name);
  const filtered = (f: (o: Obj) => boolean) => names(informer.list().filter(f));
  const check = () => {
    for (const owner of ["web", "db"])
      expect(names(byOwner.of(owner))).toEqual(filtered((o) => o.spec.owner === owner));
    // An object that gains a key (bound to a node) comes last under it: the same members, in that order.
    for (const node of ["n1", "n2"])
      expect(names(byNode.of(node)).sort()).toEqual(filtered((o) => o.spec.node === node).sort());
  };
  check();
  await store.create(key("b"), obj("b", "web"));
  await store.create(key("c"), obj("c", "db", "n2"));
  await store.create(key("d"), obj("d", "web", "n1"));
  await settle(informer, store);
  check();
  // b bound to n1, a changed in place (stays first), c moved from n2 to n1.
  for (const [name, next] of [
    ["b", obj("b", "web", "n1")],
    ["a", obj("a", "web", "n1", 5)],
    ["c", obj("c", "db", "n1")],
  ] as const) {
    const cur = await store.get<Obj>(key(name));
    await store.update(key(name), next, cur!.modRevision);
  }
  await settle(informer, store);
  check();
  expect(names(byOwner.of("web"))).toEqual(["a", "b", "d"]);
  expect(byNode.of("n2")).toEqual([]);
  await store.delete(key("a"));
  await settle(informer, store);
  check();
  expect(names(byNode.of("n1")).sort()).toEqual(["b", "c", "d"]);
  await informer.stop();
  await store.close();
});
