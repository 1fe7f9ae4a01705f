import { mulberry32, seededRng } from "./rng";

test("mulberry32 is deterministic per seed and stays in [0, 1)", () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const c = mulberry32(43);
  const xs = Array.from({ length: 1000 }, () => a.next());
  expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
  expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs.slice(0, 5));
  expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  // Roughly uniform: each tenth gets some share.
  const buckets = new Array<number>(10).fill(0);
  for (const x of xs) buckets[Math.floor(x * 10)]!++;
  expect(Math.min(...buckets)).toBeGreaterThan(50);
  expect(seededRng).toBe(mulberry32);
});
