import { performance } from "node:perf_hooks";
import type { Event } from "@grove/api";
import { pino } from "pino";
import { MemoryStore } from "../store/memory-store";
import { EventRecorder, eventsPrefix, type EventInput } from "./recorder";

function crash(instance: string, message = "exit code 1"): EventInput {
  return {
    involvedObject: { kind: "App", namespace: "default", name: "web", instance },
    type: "Warning",
    reason: "Restarted",
    message,
    source: { component: "grove-server" },
  };
}

async function events(store: MemoryStore): Promise<Event[]> {
  return (await store.list<Event>(eventsPrefix())).items.map((kv) => kv.value);
}

describe("EventRecorder", () => {
  let store: MemoryStore;
  let recorder: EventRecorder | undefined;
  beforeEach(() => {
    store = new MemoryStore();
  });
  afterEach(async () => {
    recorder?.stop();
    await store.close();
  });

  it("aggregates a crash loop into one Event whose count rises, with a bounded number of writes", async () => {
    recorder = new EventRecorder(store, { perKeyIntervalMs: 200 });
    for (let i = 1; i <= 1000; i++) recorder.recordEvent(crash("web-0", `exit code ${i}`));
    await recorder.flush();
    let all = await events(store);
    expect(all).toHaveLength(1);
    expect(all[0]!.count).toBe(1000);
    expect(all[0]!.message).toBe("exit code 1000");
    // The first occurrence is written at once, the other 999 merged into one more write.
    expect(recorder.writes).toBeLessThanOrEqual(2);

    const first = all[0]!.firstTimestamp;
    recorder.recordEvent(crash("web-0", "exit code 2"));
    await recorder.flush();
    all = await events(store);
    expect(all).toHaveLength(1);
    expect(all[0]!.count).toBe(1001);
    expect(all[0]!.firstTimestamp).toBe(first);
    expect(Date.parse(all[0]!.lastTimestamp)).toBeGreaterThanOrEqual(Date.parse(first));
  });

  it("writes one Event at most once per perKeyIntervalMs", async () => {
    recorder = new EventRecorder(store, { perKeyIntervalMs: 500 });
    const puts: number[] = [];
    const w = await store.watch(eventsPrefix(), String(Number(store.revision) + 1), {
      onEvent: () => puts.push(performance.now()),
    });
    for (let i = 0; i < 4; i++) {
      recorder.recordEvent(crash("web-0"));
      await recorder.flush();
    }
    await w.close();
    expect(puts).toHaveLength(4);
    for (let i = 1; i < puts.length; i++) expect(puts[i]! - puts[i - 1]!).toBeGreaterThanOrEqual(450);
    expect((await events(store))[0]!.count).toBe(4);
  });

  it("bounds the write rate over all Events and writes them in the order they happened", async () => {
    recorder = new EventRecorder(store, { writesPerSecond: 10, burst: 5 });
    const order: string[] = [];
    const w = await store.watch<Event>(eventsPrefix(), String(Number(store.revision) + 1), {
      onEvent: (ev) => ev.type === "put" && order.push(ev.value.involvedObject.instance!),
    });
    const started = performance.now();
    const names = Array.from({ length: 20 }, (_, i) => `web-${i}`);
    for (const n of names) recorder.recordEvent(crash(n));
    await new Promise((r) => setTimeout(r, 300));
    // The burst, then 10 per second: about 5 + 3 by now (a little slack for a slow machine's timers).
    expect(order.length).toBeGreaterThanOrEqual(5);
    expect(order.length).toBeLessThanOrEqual(9);
    await recorder.flush();
    const took = performance.now() - started;
    await w.close();
    expect(order).toEqual(names);
    // 15 writes beyond the burst at 10 per second.
    expect(took).toBeGreaterThanOrEqual(1400);
  });

  it("drops new Events beyond maxPending rather than growing without bound", async () => {
    recorder = new EventRecorder(store, { writesPerSecond: 1, burst: 1, maxPending: 10 });
    for (let i = 0; i < 50; i++) recorder.recordEvent(crash(`web-${i}`));
    expect(recorder.pendingCount).toBeLessThanOrEqual(10);
    // Repeats of a waiting Event still count.
    recorder.recordEvent(crash("web-5"));
    expect(recorder.pendingCount).toBeLessThanOrEqual(10);
  });

  it("counts every dropped Event (hook and total) and logs the burst's count once there is room", async () => {
    const lines: Array<{ msg: string; dropped?: number }> = [];
    const logger = pino({ level: "warn" }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const reasons: string[] = [];
    recorder = new EventRecorder(store, {
      writesPerSecond: 1000,
      burst: 1000,
      maxPending: 10,
      logger,
      onDrop: (r) => reasons.push(r),
    });
    for (let i = 0; i < 50; i++) recorder.recordEvent(crash(`web-${i}`));
    // 10 wait (the first may already be on its way to the store, making room for one more).
    const dropped = recorder.dropped.queue_full;
    expect(dropped).toBeGreaterThanOrEqual(39);
    expect(reasons).toEqual(Array(dropped).fill("queue_full"));
    await recorder.flush();
    // Every Event is either stored or counted.
    expect((await events(store)).length + dropped).toBe(50);
    const summary = lines.find((l) => l.msg === "events were dropped while too many waited");
    expect(summary?.dropped).toBe(dropped);
    // One warning when the burst began, one with its count: not one per drop.
    expect(lines.filter((l) => l.msg.includes("dropp"))).toHaveLength(2);
  });

  it("counts an Event whose write failed as dropped", async () => {
    const reasons: string[] = [];
    recorder = new EventRecorder(store, { onDrop: (r) => reasons.push(r) });
    await store.close();
    recorder.recordEvent(crash("web-0"));
    await recorder.flush();
    expect(recorder.dropped.write_failed).toBe(1);
    expect(reasons).toEqual(["write_failed"]);
  });

  it("attaches every Event to a lease of the TTL: it is gone once the lease expires", async () => {
    recorder = new EventRecorder(store, { ttlSeconds: 1 });
    recorder.recordEvent(crash("web-0"));
    await recorder.flush();
    expect(await events(store)).toHaveLength(1);
    const gone = performance.now();
    while ((await events(store)).length > 0) {
      if (performance.now() - gone > 5000) throw new Error("the event did not expire");
      await new Promise((r) => setTimeout(r, 50));
    }
    // TTL 1 s plus the lease-sharing window (a tenth of it), rounded up to whole seconds.
    expect(performance.now() - gone).toBeGreaterThanOrEqual(900);
  });

  it("keeps Events of different reasons or instances apart", async () => {
    recorder = new EventRecorder(store);
    recorder.recordEvent(crash("web-0"));
    recorder.recordEvent(crash("web-1"));
    recorder.recordEvent({ ...crash("web-0"), reason: "Started", type: "Normal" });
    await recorder.flush();
    const all = await events(store);
    expect(all.map((e) => `${e.involvedObject.instance}/${e.reason}/${e.count}`).sort()).toEqual([
      "web-0/Restarted/1",
      "web-0/Started/1",
      "web-1/Restarted/1",
    ]);
  });
});
