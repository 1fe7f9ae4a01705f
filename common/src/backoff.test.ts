import fc from "fast-check";
import { Backoff, backoffDelay, retry, sleep } from "./backoff";

// Moved here with backoffDelay from control-plane/src/store/watch-resume.test.ts.
test("backoffDelay doubles from the base up to the cap", () => {
  expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, { initialMs: 100, maxMs: 1000 }))).toEqual([
    100, 200, 400, 800, 1000,
  ]);
  expect(backoffDelay(1000, { initialMs: 100, maxMs: 5000 })).toBe(5000);
});

test("delays double from the first delay up to the cap", () => {
  const policy = { initialMs: 100, maxMs: 1000 };
  expect([0, 1, 2, 3, 4, 10, 5000].map((a) => backoffDelay(a, policy))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  expect([0, 1, 2].map((a) => backoffDelay(a, { ...policy, factor: 1 }))).toEqual([100, 100, 100]);
  expect(backoffDelay(3, { initialMs: 0, maxMs: 0 })).toBe(0);
});

test("a bad policy is refused with the field named", () => {
  expect(() => new Backoff({ initialMs: 10, maxMs: 5 })).toThrow(/maxMs/);
  expect(() => new Backoff({ initialMs: 10, maxMs: 50, factor: 0.5 })).toThrow(/factor/);
  expect(() => new Backoff({ initialMs: 10, maxMs: 50, jitter: 2 })).toThrow(/jitter/);
});

test("jitter spreads around the exponential value and stays within [initialMs, maxMs]", () => {
  const policy = { initialMs: 250, maxMs: 5000, jitter: 0.2 };
  expect(backoffDelay(2, policy, () => 0)).toBe(800);
  expect(backoffDelay(2, policy, () => 0.5)).toBe(1000);
  expect(backoffDelay(2, policy, () => 0.999999)).toBe(1200);
  fc.assert(
    fc.property(fc.nat(100), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
      const d = backoffDelay(attempt, policy, () => r);
      const exact = Math.min(5000, 250 * 2 ** attempt);
      return d >= 250 && d <= 5000 && d >= Math.floor(exact * 0.8) && d <= Math.ceil(exact * 1.2);
    }),
  );
});

test("Backoff counts attempts and starts over after reset()", () => {
  const b = new Backoff({ initialMs: 10, maxMs: 40 });
  expect([b.next(), b.next(), b.next(), b.next()]).toEqual([10, 20, 40, 40]);
  expect(b.attempt).toBe(4);
  b.reset();
  expect(b.next()).toBe(10);
});

test("retry() retries until success, with backoff delays, and reports each retry", async () => {
  const retries: Array<[number, number]> = [];
  const result = await retry(
    async (attempt) => {
      if (attempt < 2) throw new Error(`try ${attempt}`);
      return "ok";
    },
    { initialMs: 1, maxMs: 4, onRetry: (_e, attempt, delay) => retries.push([attempt, delay]) },
  );
  expect(result).toBe("ok");
  expect(retries).toEqual([
    [0, 1],
    [1, 2],
  ]);
});

test("retry() rethrows the last error once retries are spent, and at once when shouldRetry refuses", async () => {
  let tries = 0;
  await expect(
    retry(
      async (a) => {
        tries++;
        throw new Error(`try ${a}`);
      },
      { initialMs: 1, maxMs: 1, retries: 2 },
    ),
  ).rejects.toThrow("try 2");
  expect(tries).toBe(3);
  tries = 0;
  await expect(
    retry(
      async () => {
        tries++;
        throw new Error("fatal");
      },
      { initialMs: 1, maxMs: 1, shouldRetry: (e) => (e as Error).message !== "fatal" },
    ),
  ).rejects.toThrow("fatal");
  expect(tries).toBe(1);
});

test("retry() starts no delay past its time budget on the monotonic clock", async () => {
  let t = 0;
  let tries = 0;
  await expect(
    retry(
      async () => {
        tries++;
        t += 30; // each try takes 30 ms of (injected) monotonic time
        throw new Error("slow");
      },
      { initialMs: 10, maxMs: 10, timeoutMs: 100, now: () => t },
    ),
  ).rejects.toThrow("slow");
  // tries end at 30, 60, 90; a 10 ms delay after 90 would end at 100 (allowed), after 120 not.
  expect(tries).toBe(4);
});

test("an abort ends sleep() and retry() at once with the signal's reason", async () => {
  const ac = new AbortController();
  const start = performance.now();
  const slept = sleep(10_000, ac.signal);
  setTimeout(() => ac.abort(new Error("stopping")), 20);
  await expect(slept).rejects.toThrow("stopping");
  expect(performance.now() - start).toBeLessThan(5_000);

  const ac2 = new AbortController();
  let tries = 0;
  const retried = retry(
    async () => {
      tries++;
      throw new Error("down");
    },
    { initialMs: 10_000, maxMs: 10_000, signal: ac2.signal },
  );
  setTimeout(() => ac2.abort(new Error("shut down")), 20);
  await expect(retried).rejects.toThrow("shut down");
  expect(tries).toBe(1);
  await expect(sleep(1, ac2.signal)).rejects.toThrow("shut down");
});
