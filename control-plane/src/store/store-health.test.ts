// StoreHealth with a probe the test answers: two failures in a row mark the
// store down, one does not; the first success marks it up again; a failed
// call probes at once.
import { StoreHealth } from "./store-health";

/** A probe whose answers the test gives, one per call. */
function scriptedProbe() {
  const pending: Array<{ resolve(): void; reject(err: Error): void }> = [];
  let calls = 0;
  return {
    probe: () =>
      new Promise<void>((resolve, reject) => {
        calls++;
        pending.push({ resolve, reject });
      }),
    get calls() {
      return calls;
    },
    async answer(ok: boolean): Promise<void> {
      await waitFor(() => pending.length > 0, "a probe");
      const p = pending.shift()!;
      if (ok) p.resolve();
      else p.reject(new Error("deadline exceeded"));
      await new Promise((r) => setImmediate(r));
    },
  };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test("one failed probe is not down; two in a row are; the first success is up again", async () => {
  const p = scriptedProbe();
  const changes: boolean[] = [];
  const h = new StoreHealth({ probe: p.probe, intervalMs: 5, downIntervalMs: 5, onChange: (up) => changes.push(up) });
  h.start();
  try {
    await p.answer(false);
    expect(h.up).toBe(true);
    await p.answer(true);
    await p.answer(false);
    expect(h.up).toBe(true); // the success in between reset the count
    await p.answer(false);
    expect(h.up).toBe(false);
    expect(h.state).toMatchObject({ up: false, reason: "deadline exceeded" });
    expect(h.downForMs).toBeGreaterThanOrEqual(0);
    await p.answer(false);
    expect(h.up).toBe(false);
    await p.answer(true);
    expect(h.up).toBe(true);
    expect(changes).toEqual([false, true]);
  } finally {
    h.stop();
  }
});

test("a failed call probes at once and, with the probe failing too, marks the store down", async () => {
  const p = scriptedProbe();
  const h = new StoreHealth({ probe: p.probe, intervalMs: 60_000, downIntervalMs: 60_000 });
  h.start();
  try {
    expect(p.calls).toBe(0); // the next periodic probe is a minute away
    h.callFailed(new Error("14 UNAVAILABLE"));
    expect(p.calls).toBe(1);
    h.callFailed(new Error("14 UNAVAILABLE")); // a probe already runs: no second one
    expect(p.calls).toBe(1);
    await p.answer(false);
    expect(h.up).toBe(false);
    h.callSucceeded();
    expect(h.up).toBe(true);
  } finally {
    h.stop();
  }
});

test("calls failing in or right after a pause of this process only ask for a probe; the probe decides", async () => {
  const p = scriptedProbe();
  const h = new StoreHealth({
    probe: p.probe,
    intervalMs: 60_000,
    downIntervalMs: 60_000,
    pauseMs: 300,
    pauseGraceMs: 1000,
  });
  h.start();
  try {
    await new Promise((r) => setTimeout(r, 150)); // the pause monitor has ticked
    // The event loop blocked for 600 ms: deadlines and keepalive timeouts ran out meanwhile.
    const until = performance.now() + 600;
    while (performance.now() < until) {
      /* a synchronous step */
    }
    h.callFailed(new Error("4 DEADLINE_EXCEEDED: Deadline exceeded after 11.720s"));
    h.callFailed(new Error("14 UNAVAILABLE: Connection dropped"));
    expect(h.up).toBe(true);
    expect(p.calls).toBe(1);
    await p.answer(true);
    expect(h.up).toBe(true);
    // Past the grace, two failed calls in a row are etcd's again.
    await new Promise((r) => setTimeout(r, 1100));
    h.callFailed(new Error("14 UNAVAILABLE"));
    h.callFailed(new Error("14 UNAVAILABLE"));
    expect(h.up).toBe(false);
    await p.answer(false);
  } finally {
    h.stop();
  }
});

test("calls sent before etcd came back only ask for a probe: their deadlines ran out over the outage that ended", async () => {
  const p = scriptedProbe();
  const h = new StoreHealth({ probe: p.probe, intervalMs: 60_000, downIntervalMs: 60_000 });
  h.start();
  try {
    h.callFailed(new Error("4 DEADLINE_EXCEEDED"));
    await p.answer(false);
    expect(h.up).toBe(false);
    const sentDuringOutage = performance.now();
    await new Promise((r) => setTimeout(r, 5));
    h.callSucceeded(); // etcd answers again
    expect(h.up).toBe(true);
    // Two calls sent during the outage fail only now (ha-store-health.test.ts saw this mark it down again).
    h.callFailed(new Error("4 DEADLINE_EXCEEDED: Deadline exceeded after 5.003s"), sentDuringOutage);
    h.callFailed(new Error("4 DEADLINE_EXCEEDED: Deadline exceeded after 5.004s"), sentDuringOutage);
    expect(h.up).toBe(true);
    expect(p.calls).toBe(2); // they asked for a probe, which decides
    await p.answer(true);
    expect(h.up).toBe(true);
    // Calls sent after it came back count as before: two failures in a row are down.
    const sentAfter = performance.now();
    h.callFailed(new Error("14 UNAVAILABLE"), sentAfter);
    h.callFailed(new Error("14 UNAVAILABLE"), sentAfter);
    expect(h.up).toBe(false);
    await p.answer(false);
  } finally {
    h.stop();
  }
});
