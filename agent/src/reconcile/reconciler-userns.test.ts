// User namespaces (the start's user-namespace step, adoption of ranges) through the reconciler.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { InstanceStatus } from "@grove/proto";
import { FakeRuntime } from "../runtime/fake";
import { Reconciler } from "./reconciler";
import { UsernsPool } from "./userns-pool";
import { callsOf, desired, spec, START_MS, settle as settleQueue } from "./test-helpers";

describe("Reconciler with user namespaces", () => {
  const BASE = 100_000_000;
  const SIZE = 65536;
  let runtime: FakeRuntime;
  let reports: InstanceStatus[];
  let stateDir: string;
  let pool: UsernsPool;
  let reconciler: Reconciler;

  const security = (userNamespace: { auto: boolean; hostUid: number; hostGid: number; size: number }) => ({
    user: "",
    capabilitiesAdd: [],
    capabilitiesDrop: [],
    seccomp: "",
    readOnlyRootFilesystem: false,
    userNamespace,
  });
  const auto = (uid: string) => spec(uid, { security: security({ auto: true, hostUid: 0, hostGid: 0, size: 0 }) });
  const make = () =>
    new Reconciler({
      runtime,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      onStatus: (s) => reports.push(s),
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
      userns: pool,
    });
  const settle = () => settleQueue(reconciler);
  const hostUidOf = (id: string) => runtime.started.find((s) => s.id === id)?.userNamespace?.uidMap[0]?.hostId;

  beforeEach(() => {
    runtime = new FakeRuntime({ yieldInCalls: true, clock: () => START_MS });
    reports = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-userns-"));
    pool = new UsernsPool({ base: BASE, size: SIZE, count: 2 });
    reconciler = make();
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it("gives each auto instance a range of its own, maps root to it and records it on the container", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(auto("u1"), auto("u2")));
    await settle();
    const u1 = runtime.started.find((s) => s.id === "u1");
    expect(u1?.userNamespace).toEqual({
      uidMap: [{ containerId: 0, hostId: hostUidOf("u1"), size: SIZE }],
      gidMap: [{ containerId: 0, hostId: hostUidOf("u1"), size: SIZE }],
    });
    expect(new Set([hostUidOf("u1"), hostUidOf("u2")])).toEqual(new Set([BASE, BASE + SIZE]));
    expect(JSON.parse(u1?.annotations?.["grove.userns"] ?? "{}")).toEqual({
      hostUid: hostUidOf("u1"),
      hostGid: hostUidOf("u1"),
      size: SIZE,
    });
    // The pool is full: a third fails to start, naming the flag.
    reconciler.setDesired(desired(auto("u1"), auto("u2"), auto("u3")));
    await settle();
    expect(reports.filter((r) => r.uid === "u3").pop()).toMatchObject({
      state: "FAILED",
      reason: "StartFailed",
      message: expect.stringContaining("no free user namespace range"),
    });
  });

  it("releases a range when its instance is deleted, and hands it out again", async () => {
    await reconciler.start();
    reconciler.setDesired(desired(auto("u1"), auto("u2")));
    await settle();
    const freed = hostUidOf("u1");
    reconciler.setDesired(desired(auto("u2")));
    await settle();
    expect(pool.used).toBe(1);
    reconciler.setDesired(desired(auto("u2"), auto("u3")));
    await settle();
    expect(hostUidOf("u3")).toBe(freed);
    expect(hostUidOf("u3")).not.toBe(hostUidOf("u2"));
  });

  it("after an agent restart finds the ranges of adopted containers again and allocates around them", async () => {
    const taken = { hostUid: BASE, hostGid: BASE, size: SIZE };
    runtime.recoverable = [
      {
        id: "a1",
        annotations: { "grove.instance": JSON.stringify(auto("a1")), "grove.userns": JSON.stringify(taken) },
      },
    ];
    await reconciler.start();
    expect(pool.rangeOwnedBy("a1")).toEqual(taken);
    reconciler.setDesired(desired(auto("a1"), auto("n1")));
    await settle();
    expect(callsOf(runtime).filter((c) => c.startsWith("start"))).toEqual(["start n1"]);
    expect(hostUidOf("n1")).toBe(BASE + SIZE);
  });

  it("passes an explicit range through, refuses one overlapping the pool, and auto without a pool", async () => {
    await reconciler.start();
    const explicit = spec("e1", {
      security: security({ auto: false, hostUid: 500_000_000, hostGid: 600_000_000, size: 1000 }),
    });
    const clash = spec("e2", {
      security: security({ auto: false, hostUid: BASE + 10, hostGid: 700_000_000, size: 10 }),
    });
    reconciler.setDesired(desired(explicit, clash));
    await settle();
    expect(runtime.started.find((s) => s.id === "e1")?.userNamespace).toEqual({
      uidMap: [{ containerId: 0, hostId: 500_000_000, size: 1000 }],
      gidMap: [{ containerId: 0, hostId: 600_000_000, size: 1000 }],
    });
    expect(reports.filter((r) => r.uid === "e2").pop()).toMatchObject({
      state: "FAILED",
      message: expect.stringContaining("overlap this node's --userns-range pool"),
    });
    expect(pool.used).toBe(0);

    reconciler.close();
    pool = undefined as unknown as UsernsPool;
    reconciler = new Reconciler({
      runtime,
      rootfsDir: "/r",
      stateDir,
      resyncIntervalMs: 0,
      onStatus: (s) => reports.push(s),
    });
    await reconciler.start();
    reconciler.setDesired(desired(auto("x1")));
    await settle();
    expect(reports.filter((r) => r.uid === "x1").pop()).toMatchObject({
      state: "FAILED",
      message: expect.stringContaining("needs the agent's --userns-range"),
    });
  });
});
