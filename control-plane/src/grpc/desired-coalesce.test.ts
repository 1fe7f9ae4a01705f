// The gateway sends a node its desired set once per turn of the event loop,
// not once per instance event: a scheduling pass that binds many instances to
// one node arrives as many events of one watch response, and each used to
// build, fingerprint and send the whole (growing) set again. And an agent's
// status report (which changes nothing a node is sent) builds no set at all.
import pino from "pino";
import type { Instance } from "@grove/api";
import { Informer } from "../controllers/informer";
import type { NodeRegistration } from "../nodes/registration";
import { MemoryStore } from "../store/memory-store";
import { Keys } from "../store/store";
import { AgentGateway } from "./agent-gateway";
import { desiredInputsChanged } from "./agent-messages";
import { boundInstance } from "./bound-instance.fixture";

const inst = boundInstance;

async function setup() {
  const store = new MemoryStore();
  const instances = new Informer<Instance>(store, Keys.collection("instances"));
  await instances.start();
  const built: string[] = [];
  const registration = {
    instancesOf: (node: string) => {
      built.push(node);
      return instances.list().filter((i) => i.spec.nodeName === node);
    },
  } as unknown as NodeRegistration;
  const gateway = new AgentGateway(registration, instances, "token", pino({ level: "silent" }));
  const sent: Array<{ node: string; uids: string[] }> = [];
  const session = (node: string) => ({
    node,
    lastSent: "",
    hadPorts: new Set<string>(),
    stream: {
      write: (m: { desired: { instances?: Array<{ uid: string }> } }) =>
        sent.push({ node, uids: (m.desired.instances ?? []).map((i) => i.uid) }),
    },
  });
  const sessions = (gateway as unknown as { sessions: Map<string, unknown> }).sessions;
  sessions.set("n1", session("n1"));
  sessions.set("n2", session("n2"));
  const put = (items: Instance[]) =>
    store.txn(
      [],
      items.map((i) => ({ type: "put" as const, key: Keys.object("instances", "default", i.metadata.name), value: i })),
    );
  const settled = async (n: number) => {
    for (let i = 0; i < 100 && instances.list().length < n; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  };
  return { store, instances, gateway, sent, built, put, settled };
}

test("a pass binding 40 instances to a node sends that node one set of 40, not 40 growing sets", async () => {
  const t = await setup();
  const bound = Array.from({ length: 40 }, (_, k) => inst(`web-${k}`, k < 30 ? "n1" : "n2"));
  await t.put(bound);
  await t.settled(40);
  expect(t.sent.map((s) => [s.node, s.uids.length]).sort()).toEqual([
    ["n1", 30],
    ["n2", 10],
  ]);
  // Later changes are sent too (the flush is per turn, not once).
  await t.put([inst("web-40", "n1")]);
  await t.settled(41);
  expect(t.sent.length).toBe(3);
  expect(t.sent[2]).toMatchObject({ node: "n1" });
  expect(t.sent[2]!.uids).toHaveLength(31);
  await t.gateway.close().catch(() => undefined);
  await t.instances.stop();
});

test("nothing is sent after the gateway closed", async () => {
  const t = await setup();
  await t.put([inst("web-0", "n1")]);
  await t.gateway.close().catch(() => undefined);
  await t.settled(1);
  expect(t.sent).toEqual([]);
  await t.instances.stop();
});

test("an agent's status report builds no desired set; a change of spec or an end does", async () => {
  const t = await setup();
  // As the scheduler binds it: its status names the node already.
  const i = { ...inst("web-0", "n1"), status: { state: "Pending" as const, reason: "Scheduled", nodeName: "n1" } };
  await t.put([i]);
  await t.settled(1);
  expect(t.built).toEqual(["n1"]);
  const running = { ...i, status: { state: "Running" as const, reason: "Running", nodeName: "n1", pid: 7 } };
  await t.put([running]);
  for (let k = 0; k < 100 && t.instances.get("default/web-0")?.status?.state !== "Running"; k++)
    await new Promise((r) => setTimeout(r, 10));
  await t.settled(1);
  expect(t.built).toEqual(["n1"]);
  expect(t.sent).toHaveLength(1);
  const exited = { ...running, status: { ...running.status, state: "Exited" as const, reason: "Exited" } };
  await t.put([exited]);
  for (let k = 0; k < 100 && t.instances.get("default/web-0")?.status?.state !== "Exited"; k++)
    await new Promise((r) => setTimeout(r, 10));
  await t.settled(1);
  expect(t.built).toEqual(["n1", "n1"]);
  expect(t.sent.map((s) => s.uids.length)).toEqual([1, 0]);
  await t.gateway.close().catch(() => undefined);
  await t.instances.stop();
});

describe("desiredInputsChanged", () => {
  const i = inst("web-0", "n1");
  it("is false for a report: state, pid, ip, readiness", () => {
    expect(
      desiredInputsChanged(
        { ...i, status: { state: "Starting", nodeName: "n1" } },
        { ...i, status: { state: "Running", nodeName: "n1", pid: 3, ip: "10.0.0.2", ready: true } },
      ),
    ).toBe(false);
  });
  it("is true for an end, a spec change, another node in the status, another uid", () => {
    const running = { ...i, status: { state: "Running" as const, nodeName: "n1" } };
    expect(desiredInputsChanged(running, { ...i, status: { state: "Failed", nodeName: "n1" } })).toBe(true);
    expect(
      desiredInputsChanged(running, {
        ...running,
        spec: { ...i.spec, resources: { ...i.spec.resources, cpuMillis: 200 } },
      }),
    ).toBe(true);
    expect(desiredInputsChanged(running, { ...running, status: { ...running.status, nodeName: "n2" } })).toBe(true);
    expect(desiredInputsChanged(running, { ...running, metadata: { ...i.metadata, uid: "other" } })).toBe(true);
  });
});
