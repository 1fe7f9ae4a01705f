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
