import fc from "fast-check";
import type { RateLimiter } from "./rate-limiter";
import { WorkQueue } from "./work-queue";

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A limiter with a fixed retry delay that counts failures like the real one. */
function fixedLimiter(delayMs: number): RateLimiter & { whens: number } {
  const failures = new Map<string, number>();
  return {
    whens: 0,
    when(key) {
      this.whens++;
      failures.set(key, (failures.get(key) ?? 0) + 1);
      return delayMs;
    },
    forget: (key) => void failures.delete(key),
    numRequeues: (key) => failures.get(key) ?? 0,
  };
}

test("a key added while queued is synced once", async () => {
  const seen: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = new WorkQueue(async (k) => {
    seen.push(k);
    if (k === "first") await gate;
  });
  q.add("first"); // occupies the one worker
  q.add("a");
  q.add("a");
  q.add("b");
  release();
  await q.idle();
  expect(seen).toEqual(["first", "a", "b"]);
});

test("a key added while it is being synced runs again afterwards, never twice at once", async () => {
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  // The first sync is held open until both adds were made, so they land while
  // it runs whatever the machine's load (a 5 ms sleep let it finish first).
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const firstStarted = new Promise<void>((r) => (started = r));
  const q = new WorkQueue(
    async () => {
      runs++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      if (runs === 1) {
        started();
        await gate;
      }
      await tick();
      running--;
    },
    { concurrency: 4 },
  );
  q.add("k");
  await firstStarted;
  q.add("k");
  q.add("k");
  release();
  await q.idle();
  expect(runs).toBe(2);
  expect(maxRunning).toBe(1);
});

test("both constructor shapes take the sync function; default concurrency is 1", async () => {
  let running = 0;
  let maxRunning = 0;
  const sync = async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await sleep(2);
    running--;
  };
  const q = new WorkQueue({ name: "t", sync });
  for (const k of ["a", "b", "c"]) q.add(k);
  await q.idle();
  expect(maxRunning).toBe(1);
  const q2 = new WorkQueue(sync, { concurrency: 3 });
  for (const k of ["a", "b", "c"]) q2.add(k);
  await q2.idle();
  expect(maxRunning).toBe(3);
});

test("a failing sync is retried after the limiter's delay, and a success forgets its failures", async () => {
  const errors: Array<[string, number]> = [];
  const warned: object[] = [];
  let calls = 0;
  const q = new WorkQueue({
    name: "t",
    sync: async () => {
      if (++calls < 3) throw new Error("not yet");
    },
    baseDelayMs: 10,
    maxDelayMs: 100,
    onError: (key, _e, retryInMs) => errors.push([key, retryInMs]),
    logger: { warn: (fields) => void warned.push(fields) },
  });
  q.add("k");
  await tick();
  expect(q.numRequeues("k")).toBe(1);
  await q.idle();
  expect(calls).toBe(3);
  expect(errors).toEqual([
    ["k", 10],
    ["k", 20],
  ]);
  expect(warned).toEqual([
    expect.objectContaining({ key: "k", attempt: 1, retryInMs: 10 }),
    expect.objectContaining({ key: "k", attempt: 2, retryInMs: 20 }),
  ]);
  expect(q.numRequeues("k")).toBe(0);
});

test("add() cancels a pending retry: the key does not run again when the retry was due", async () => {
  let calls = 0;
  const q = new WorkQueue(
    async () => {
      if (++calls === 1) throw new Error("first try fails");
    },
    { rateLimiter: fixedLimiter(150) },
  );
  q.add("k");
  await tick();
  expect(calls).toBe(1);
  q.add("k"); // an event: runs now, so the retry is moot
  await tick();
  expect(calls).toBe(2);
  await sleep(300);
  expect(calls).toBe(2);
  await q.idle();
});

test("idle() waits for a pending retry", async () => {
  let calls = 0;
  const q = new WorkQueue(
    async () => {
      if (++calls === 1) throw new Error("first try fails");
    },
    { rateLimiter: fixedLimiter(50) },
  );
  q.add("k");
  await q.idle();
  expect(calls).toBe(2);
});

test("a key that fails while dirty runs again at once and gets no retry timer", async () => {
  const limiter = fixedLimiter(10_000);
  let calls = 0;
  const q = new WorkQueue(
    async () => {
      calls++;
      await sleep(5);
      if (calls === 1) throw new Error("fails while an add is pending");
    },
    { rateLimiter: limiter },
  );
  q.add("k");
  await tick();
  q.add("k");
  await q.idle(); // would wait 10 s for a retry timer
  expect(calls).toBe(2);
  expect(limiter.whens).toBe(1);
});

test("addAfter() adds later, an earlier delay replaces a later one, add() leaves it, idle() does not wait for it", async () => {
  const seen: number[] = [];
  const start = performance.now();
  const q = new WorkQueue(async () => void seen.push(performance.now() - start));
  q.addAfter("k", 1_000);
  q.addAfter("k", 60); // replaces the 1 s delay
  q.add("k");
  await q.idle();
  expect(seen).toHaveLength(1);
  // The delayed add fires after about 60 ms; a loaded machine may take longer.
  for (const deadline = performance.now() + 5_000; seen.length < 2 && performance.now() < deadline;) await sleep(10);
  expect(seen).toHaveLength(2);
  expect(seen[1]).toBeGreaterThanOrEqual(55);
  await sleep(1_000);
  expect(seen).toHaveLength(2);
});

test("addRateLimited() and forget() drive the limiter like a failure and a success", async () => {
  let calls = 0;
  const q = new WorkQueue(async () => void calls++, { baseDelayMs: 20, maxDelayMs: 1_000 });
  q.addRateLimited("k");
  q.addRateLimited("k");
  expect(q.numRequeues("k")).toBe(2);
  q.forget("k");
  expect(q.numRequeues("k")).toBe(0);
  await q.idle();
  expect(calls).toBe(1);
});

test("shutdown() cancels retries and delays, empties the queue and lets the running sync finish", async () => {
  const seen: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = new WorkQueue(
    async (k) => {
      seen.push(k);
      if (k === "slow") await gate;
      if (k === "bad") throw new Error("retry me");
    },
    { concurrency: 2, rateLimiter: fixedLimiter(20) },
  );
  q.add("bad");
  q.add("slow");
  q.addAfter("later", 20);
  q.add("queued");
  await tick();
  q.shutdown();
  q.add("ignored");
  const idle = q.idle();
  release();
  await idle;
  await sleep(60);
  // "queued" ran in the tick, once "bad" had failed and freed a worker; the
  // retry of "bad", the delayed "later" and the add after shutdown never ran.
  expect([...seen].sort()).toEqual(["bad", "queued", "slow"]);
});

test("property: keys never run twice at once, concurrency holds, and every add is followed by a sync of its key", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.record({ key: fc.constantFrom("a", "b", "c", "d", "e"), fail: fc.boolean(), wait: fc.boolean() }), {
        minLength: 1,
        maxLength: 30,
      }),
      async (concurrency, ops) => {
        const running = new Set<string>();
        let maxRunning = 0;
        let overlap = false;
        const failNext = new Set<string>();
        const lastAdd = new Map<string, number>();
        const lastStart = new Map<string, number>();
        let clock = 0;
        const q = new WorkQueue(
          async (k) => {
            if (running.has(k)) overlap = true;
            running.add(k);
            lastStart.set(k, ++clock);
            maxRunning = Math.max(maxRunning, running.size);
            await tick();
            running.delete(k);
            if (failNext.delete(k)) throw new Error("fail once");
          },
          { concurrency, rateLimiter: fixedLimiter(1) },
        );
        for (const op of ops) {
          if (op.fail) failNext.add(op.key);
          lastAdd.set(op.key, ++clock);
          q.add(op.key);
          if (op.wait) await tick();
        }
        await q.idle();
        expect(overlap).toBe(false);
        expect(maxRunning).toBeLessThanOrEqual(concurrency);
        for (const [k, added] of lastAdd) expect(lastStart.get(k)).toBeGreaterThan(added);
        expect(failNext.size).toBe(0);
      },
    ),
    { numRuns: 60 },
  );
});

test("addAfter(): a later deadline does not postpone an earlier one (a restart backoff, then a rollout's deadline)", async () => {
  const seen: number[] = [];
  const start = performance.now();
  const q = new WorkQueue(async () => void seen.push(performance.now() - start));
  q.addAfter("k", 50); // e.g. the crash-loop backoff
  q.addAfter("k", 60_000); // e.g. the progress deadline asked for in the same sync
  for (const deadline = performance.now() + 5_000; seen.length < 1 && performance.now() < deadline;) await sleep(10);
  expect(seen).toHaveLength(1);
  expect(seen[0]).toBeGreaterThanOrEqual(45);
  q.shutdown();
});
