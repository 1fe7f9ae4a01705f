// The host ports of a deleted or overwritten instance stay held on its node
// (Node.status.heldHostPorts) until its agent reports it gone: a new instance
// that wants the same port on that node waits, instead of having its traffic
// answered by the old container while its DNAT rule is still in place.
import { newInstance, nodeHeldHostPorts, type App, type Instance, type Node } from "@grove/api";
import type { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import type { Repository } from "../resources/repository";
import type { NodeRegistration } from "../nodes/registration";
import { controlLoop, silentLogger as logger, type ControlLoop } from "./control-loop.fixture";
import type { Informer } from "./informer";
import type { SchedulerController } from "./scheduler-controller";
import { AgentGateway } from "../grpc/agent-gateway";
import { goneWithPorts, uidsWithPorts } from "../grpc/agent-session";

const GiB = 2 ** 30;
const PORT = 18080;

const node: Node = {
  apiVersion: "grove/v1",
  kind: "Node",
  metadata: { name: "a" },
  spec: {},
  status: {
    allocatable: { cpuMillis: 4000, memoryBytes: 8 * GiB, pids: 100000 },
    conditions: [{ type: "Ready", status: "True" }],
  },
};
const app = (name: string): App => ({
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name, namespace: "default", uid: `uid-${name}` },
  spec: {
    rootfs: "busybox",
    command: ["httpd"],
    instances: 1,
    resources: { cpu: "100m", memory: "64Mi" },
    ports: [{ name: "http", containerPort: 8080, hostPort: PORT }],
  },
});

describe("host ports of deleted and overwritten instances", () => {
  let loop: ControlLoop;
  let store: MemoryStore;
  let repo: Repository;
  let nodes: Informer<Node>;
  let instances: Informer<Instance>;
  let scheduler: SchedulerController;
  let registration: NodeRegistration;

  beforeEach(async () => {
    loop = await controlLoop((s) => s.create(Keys.object("nodes", undefined, "a"), node));
    ({ store, repo, nodes, instances, scheduler, registration } = loop);
  });
  afterEach(() => loop.stop());

  /** `web-0` bound to node a with the port and Running: its agent started it. */
  async function running(): Promise<Instance> {
    const inst = newInstance(app("web"), 0, 0, 0);
    inst.spec = { ...inst.spec, nodeName: "a" };
    inst.status = { state: "Running", nodeName: "a" };
    return repo.create(inst);
  }

  /**
   * Runs a pass once the informers show what the store holds, through the
   * scheduler's own queue: passes the informers' events start are never run
   * beside it (two passes at once would race on the same instances, which the
   * single-flight queue rules out in grove-server too).
   */
  async function pass(): Promise<void> {
    await waitUntil(async () => {
      const want = (await store.list<Instance>(Keys.collection("instances"))).items.map((kv) => kv.modRevision);
      const nodeRev = (await store.get(Keys.object("nodes", undefined, "a")))?.modRevision;
      const have = instances.list().map((i) => i.metadata.resourceVersion);
      return (
        JSON.stringify(have.sort()) === JSON.stringify(want.sort()) &&
        nodes.get("a")?.metadata.resourceVersion === nodeRev
      );
    });
    scheduler.trigger();
    await scheduler.idle();
  }

  async function other(name: string): Promise<Instance> {
    return repo.get("Instance", "default", name);
  }

  it("a deleted instance's port is held on its node until its agent reports it gone", async () => {
    const old = await running();
    await repo.delete("Instance", "default", old.metadata.name);
    const stored = await repo.get("Node", undefined, "a");
    expect(stored.status?.heldHostPorts).toEqual([
      { uid: old.metadata.uid, instance: "default/web-0", ports: [PORT], since: expect.any(String) },
    ]);

    // Another App wants the same port on the only node: it waits.
    await repo.create(newInstance(app("next"), 0, 0, 0));
    await pass();
    let next = await other("next-0");
    expect(next.spec.nodeName).toBeUndefined();
    expect(next.status?.message).toMatch(/ports: 18080 in use on 1 of 1 nodes/);

    // Its agent reports the old container gone: the port is free, the new one is placed.
    await registration.releaseHeldPorts("a", (uid) => uid === old.metadata.uid, "test");
    expect(nodeHeldHostPorts(await repo.get("Node", undefined, "a"))).toEqual([]);
    await pass();
    next = await other("next-0");
    expect(next.spec.nodeName).toBe("a");
  });

  it("an instance overwritten under its name (a restart, Recreate) holds its port for its successor too", async () => {
    const old = await running();
    const successor = newInstance(app("web"), 0, 1, 0);
    successor.metadata.resourceVersion = old.metadata.resourceVersion;
    const written = await repo.replace(successor);
    expect(written.metadata.uid).not.toBe(old.metadata.uid);
    expect(nodeHeldHostPorts(await repo.get("Node", undefined, "a"))).toEqual([PORT]);
    await pass();
    expect((await other("web-0")).spec.nodeName).toBeUndefined();
    // The agent registers again without the old uid: released as well.
    await registration.releaseHeldPorts("a", (uid) => uid !== written.metadata.uid, "registered without it");
    await pass();
    expect((await other("web-0")).spec.nodeName).toBe("a");
  });

  it("holds nothing for an instance that holds no ports (released, unbound) or whose node is gone", async () => {
    scheduler.stop(); // `pending` stays unbound
    const released = await running();
    await repo.updateStatus("Instance", released, (i) => {
      (i as Instance).status = { state: "Exited", nodeName: "a", releasedAt: new Date().toISOString() };
    });
    await repo.delete("Instance", "default", released.metadata.name);
    const pending = await repo.create(newInstance(app("pending"), 0, 0, 0));
    await repo.delete("Instance", "default", pending.metadata.name);
    expect((await repo.get("Node", undefined, "a")).status?.heldHostPorts).toBeUndefined();

    const orphan = await running();
    await repo.delete("Node", undefined, "a");
    await repo.delete("Instance", "default", orphan.metadata.name);
    expect(await store.get(Keys.object("nodes", undefined, "a"))).toBeUndefined();
  });

  it("a delete that races a write to the node still holds the port (read again, one transaction)", async () => {
    scheduler.stop(); // no allocation writes of its own
    const old = await running();
    // Every node write below bumps its revision between the hold's read and its transaction.
    const realTxn = store.txn.bind(store);
    let bumps = 2;
    store.txn = async (compares, ops) => {
      if (bumps-- > 0 && ops.some((o) => o.type === "delete")) {
        const kv = (await store.get<Node>(Keys.object("nodes", undefined, "a")))!;
        await store.update(
          kv.key,
          { ...kv.value, metadata: { ...kv.value.metadata, labels: { n: `${bumps}` } } },
          kv.modRevision,
        );
      }
      return realTxn(compares, ops);
    };
    await repo.delete("Instance", "default", old.metadata.name);
    const stored = await repo.get("Node", undefined, "a");
    expect(nodeHeldHostPorts(stored)).toEqual([PORT]);
    // Both node writes happened and neither was lost.
    expect(bumps).toBeLessThan(1);
    expect(stored.metadata.labels).toEqual({ n: "0" });
  });

  it("an agent's report on an instance gone from the API says so (the gateway then drops its hold)", async () => {
    const old = await running();
    const ref = { uid: old.metadata.uid!, namespace: "default", name: old.metadata.name };
    await waitUntil(async () => instances.get("default/web-0") !== undefined);
    expect(await registration.recordStatus("a", ref, () => undefined)).toBe(false);
    await repo.delete("Instance", "default", old.metadata.name);
    expect(await registration.recordStatus("a", ref, () => undefined, true)).toBe(true);
  });

  it("the gateway's view: which events take an instance with host ports out of the API, which sets carry them", async () => {
    const old = await running();
    const released: Instance = { ...old, status: { state: "Exited", releasedAt: "2026-01-01T00:00:00Z" } };
    const successor: Instance = {
      ...old,
      metadata: { ...old.metadata, uid: "u-next" },
      spec: { ...old.spec, nodeName: undefined },
    };
    expect(goneWithPorts({ type: "deleted", object: old })).toEqual({ node: "a", uid: old.metadata.uid });
    expect(goneWithPorts({ type: "updated", object: successor, old })).toEqual({ node: "a", uid: old.metadata.uid });
    expect(goneWithPorts({ type: "updated", object: { ...old, status: { state: "Exited" } }, old })).toBeUndefined();
    expect(goneWithPorts({ type: "deleted", object: released })).toBeUndefined();
    expect(goneWithPorts({ type: "added" })).toBeUndefined();
    expect(
      uidsWithPorts({ instances: [{ uid: "p", ports: [{ hostPort: PORT }] }, { uid: "q", ports: [] }, { uid: "r" }] }),
    ).toEqual(["p"]);
  });

  it("the gateway drops at once the hold of a gone instance its agent never had; one it had waits for the agent", async () => {
    const gateway = new AgentGateway(registration, instances, "token", logger);
    const sessions = (gateway as unknown as { sessions: Map<string, unknown> }).sessions;
    const connect = () => {
      const session = {
        node: "a",
        lost: false,
        lastSent: "",
        hadPorts: new Set<string>(),
        stream: { write: () => true },
      };
      sessions.set("a", session);
      return session;
    };
    const held = async () => nodeHeldHostPorts(await repo.get("Node", undefined, "a"));
    try {
      // Its agent was sent it (the gateway's own desired set): the container may still answer on
      // the port, so the hold stays until the agent reports it released.
      const session = connect();
      const had = await running();
      await waitUntil(async () => session.hadPorts.has(had.metadata.uid!));
      await repo.delete("Instance", "default", "web-0");
      await waitUntil(async () => instances.get("default/web-0") === undefined);
      await new Promise((r) => setTimeout(r, 50));
      expect(await held()).toEqual([PORT]);
      await registration.releaseHeldPorts("a", (uid) => uid === had.metadata.uid, "test");

      // Bound while the node had no stream here, deleted before a set carried it: nothing holds the port.
      sessions.delete("a");
      const never = await running();
      await waitUntil(async () => instances.get("default/web-0")?.metadata.uid === never.metadata.uid);
      connect();
      await repo.delete("Instance", "default", "web-0");
      await waitUntil(async () => (await held()).length === 0);
    } finally {
      await gateway.close().catch(() => undefined);
    }
  });
});

async function waitUntil(cond: () => Promise<boolean>, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`the informers did not catch up with the store within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
