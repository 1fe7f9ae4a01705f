import { FakeRuntime } from "./fake";
import type { ContainerSpec } from "./types";

function spec(id: string): ContainerSpec {
  return {
    id,
    rootfs: "/srv/rootfs",
    command: ["/bin/app"],
    env: {},
    hostname: id,
    resources: { cpuMillis: 100, memoryBytes: 1 << 20, pids: 10 },
    logPath: `/var/log/${id}.log`,
  };
}

describe("FakeRuntime", () => {
  it("runs containers until a test ends them with an exit code", async () => {
    const rt = new FakeRuntime();
    const h = await rt.start(spec("a"));
    expect(rt.list().map((c) => c.id)).toEqual(["a"]);
    rt.exit("a", { exitCode: 3 });
    await expect(h.exited).resolves.toMatchObject({ exitCode: 3, signal: 0, oomKilled: false });
    await rt.remove("a");
    expect(rt.list()).toEqual([]);
  });

  it("simulates an OOM kill", async () => {
    const rt = new FakeRuntime();
    const h = await rt.start(spec("a"));
    rt.oom("a");
    await expect(h.exited).resolves.toMatchObject({ exitCode: 137, signal: 9, oomKilled: true });
  });

  it("validates specs and refuses duplicates and removing running containers", async () => {
    const rt = new FakeRuntime();
    await expect(rt.start({ ...spec("a"), command: [] })).rejects.toMatchObject({ code: "INVALID_SPEC" });
    await rt.start(spec("a"));
    await expect(rt.start(spec("a"))).rejects.toMatchObject({ code: "CONTAINER_EXISTS" });
    await expect(rt.remove("a")).rejects.toMatchObject({ code: "CONTAINER_RUNNING" });
    await expect(rt.kill("zzz", "SIGTERM")).rejects.toMatchObject({ code: "CONTAINER_NOT_FOUND" });
  });

  it("stop() sends SIGTERM, and SIGKILL after the grace period when SIGTERM is ignored", async () => {
    const rt = new FakeRuntime();
    await rt.start(spec("polite"));
    await expect(rt.stop("polite", 10)).resolves.toMatchObject({ exitCode: 143, signal: 15 });

    jest.useFakeTimers();
    try {
      await rt.start(spec("stubborn"));
      rt.ignoreSigterm("stubborn");
      const stopping = rt.stop("stubborn", 5);
      await jest.advanceTimersByTimeAsync(4999);
      expect(rt.get("stubborn")?.exit).toBeUndefined();
      await jest.advanceTimersByTimeAsync(1);
      await expect(stopping).resolves.toMatchObject({ exitCode: 137, signal: 9 });
      expect(rt.get("stubborn")?.signals).toEqual([15, 9]);
    } finally {
      jest.useRealTimers();
    }
  });

  it("injects start failures and records calls", async () => {
    const rt = new FakeRuntime({ staleIds: ["old"] });
    rt.failNextStart();
    await expect(rt.start(spec("a"))).rejects.toMatchObject({ code: "START_FAILED" });
    await rt.start(spec("a"));
    expect(await rt.cleanupStale()).toEqual(["old"]);
    expect(await rt.cleanupStale()).toEqual([]);
    expect(rt.calls.map((c) => c.op)).toEqual(["start", "start", "cleanupStale", "cleanupStale"]);
    expect(rt.list()[0]?.pid).toBe(1000);
  });
});

describe("FakeRuntime: what the reconciler's tests need", () => {
  it("holds a start open until released, and sees a call overlap another on the same container", async () => {
    const rt = new FakeRuntime({ yieldInCalls: true });
    const release = rt.holdStart("a");
    const starting = rt.start(spec("a"));
    await new Promise((r) => setImmediate(r));
    expect(rt.list()).toEqual([]);
    await expect(rt.remove("a")).resolves.toBeUndefined();
    expect(rt.overlap).toBe("remove a while another call on a was running");
    release();
    await expect(starting).resolves.toMatchObject({ id: "a" });
    expect(rt.started.map((s) => s.id)).toEqual(["a"]);
  });

  it("fails the next stop and update on request, and records the limits of an update", async () => {
    const rt = new FakeRuntime();
    await rt.start(spec("a"));
    rt.failNextStop(new Error("EBUSY"));
    await expect(rt.stop("a", 0)).rejects.toThrow("EBUSY");
    expect(rt.running()).toEqual(["a"]);
    rt.failNextUpdate(new Error("refused"));
    await expect(rt.update("a", { cpuMillis: 1, memoryBytes: 2, pids: 3 })).rejects.toThrow("refused");
    await rt.update("a", { cpuMillis: 4, memoryBytes: 5, pids: 6 });
    expect(rt.updates).toEqual([{ id: "a", resources: { cpuMillis: 4, memoryBytes: 5, pids: 6 } }]);
    expect(rt.get("a")?.spec.resources).toEqual({ cpuMillis: 4, memoryBytes: 5, pids: 6 });
    await expect(rt.stop("a", 0)).resolves.toMatchObject({ signal: 15 });
    expect(rt.running()).toEqual([]);
  });

  it("hands out recoverable containers once, running, and rejects exited when the exit is lost", async () => {
    const rt = new FakeRuntime({ clock: () => 1_700_000_000_000 });
    rt.recoverable = [{ id: "old", annotations: { k: "v" }, recordsLost: true }];
    const [found] = await rt.recover();
    expect(found).toMatchObject({ annotations: { k: "v" }, recordsLost: true });
    expect(found?.handle.startedAt.getTime()).toBe(1_700_000_000_000);
    expect(await rt.recover()).toEqual([]);
    expect(rt.running()).toEqual(["old"]);
    rt.loseExit("old", new Error("shim gone"));
    await expect(found?.handle.exited).rejects.toThrow("shim gone");
    await rt.remove("old");
    expect(rt.list()).toEqual([]);
  });
});
