import { BucketRateLimiter, ItemExponentialRateLimiter, MaxOfRateLimiter, controllerRateLimiter } from "./rate-limiter";

test("per-key exponential: each key has its own doubling delay, forget() starts it over", () => {
  const l = new ItemExponentialRateLimiter(5, 40);
  expect([l.when("a"), l.when("a"), l.when("a"), l.when("a"), l.when("a")]).toEqual([5, 10, 20, 40, 40]);
  expect(l.when("b")).toBe(5);
  expect(l.numRequeues("a")).toBe(5);
  l.forget("a");
  expect(l.numRequeues("a")).toBe(0);
  expect(l.when("a")).toBe(5);
});

test("bucket: `burst` retries at once, then one per 1/qps seconds of monotonic time", () => {
  let t = 0;
  const l = new BucketRateLimiter(10, 3, () => t);
  expect([l.when("a"), l.when("b"), l.when("c")]).toEqual([0, 0, 0]);
  expect(l.when("d")).toBe(100);
  expect(l.when("e")).toBe(200);
  t = 1_000; // 10 tokens refilled pay the 2 owed; the rest is capped at the burst
  expect([l.when("f"), l.when("g"), l.when("h")]).toEqual([0, 0, 0]);
  expect(l.when("i")).toBe(100);
});

test("max-of takes the longest delay and forgets in every limiter", () => {
  const t = 0;
  const l = new MaxOfRateLimiter(new ItemExponentialRateLimiter(1, 1000), new BucketRateLimiter(1, 1, () => t));
  expect(l.when("a")).toBe(1); // bucket 0, item 1
  expect(l.when("a")).toBe(1000); // bucket empty: 1 s; item 2
  expect(l.numRequeues("a")).toBe(2);
  l.forget("a");
  expect(l.numRequeues("a")).toBe(0);
});

test("the controller default doubles from 200 ms to 30 s per key", () => {
  const l = controllerRateLimiter();
  const delays = Array.from({ length: 10 }, () => l.when("k"));
  expect(delays).toEqual([200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
});
