// Property test for the user-namespace pool against a plain model: under any
// sequence of allocate, claim and release, no two owners ever hold ranges
// that share an id, every range lies in the pool, allocate is stable for an
// owner, and the pool is full exactly when the model says so.
import fc from "fast-check";
import { UsernsPool, type UsernsRange } from "./userns-pool";

type Op =
  | { kind: "allocate"; owner: number }
  | { kind: "release"; owner: number }
  | { kind: "claim"; owner: number; slot: number; skew: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("allocate" as const), owner: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ kind: fc.constant("release" as const), owner: fc.integer({ min: 0, max: 9 }) }),
  fc.record({
    kind: fc.constant("claim" as const),
    owner: fc.integer({ min: 0, max: 9 }),
    slot: fc.integer({ min: -1, max: 6 }),
    skew: fc.constantFrom(0, 0, 0, 1, 100),
  }),
);

describe("UsernsPool (property)", () => {
  it("never hands one id to two owners and stays within the pool", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const options = { base: 100_000, size: 1000, count: 5 };
        const pool = new UsernsPool(options);
        const held = new Map<string, UsernsRange>();
        for (const o of ops) {
          const owner = `i-${o.owner}`;
          if (o.kind === "allocate") {
            const before = held.get(owner);
            if (!before && held.size === options.count) {
              expect(() => pool.allocate(owner)).toThrow(/no free user namespace range/);
              continue;
            }
            const r = pool.allocate(owner);
            if (before) expect(r).toEqual(before);
            held.set(owner, r);
          } else if (o.kind === "release") {
            pool.release(owner);
            held.delete(owner);
          } else {
            const id = options.base + o.slot * options.size + o.skew;
            const range = { hostUid: id, hostGid: id, size: options.size };
            const holder = [...held].find(([, r]) => r.hostUid === id)?.[0];
            const valid = o.skew === 0 && o.slot >= 0 && o.slot < options.count;
            const ok = pool.claim(owner, range);
            expect(ok).toBe(valid && (holder === undefined || holder === owner));
            if (ok) held.set(owner, range);
          }
          // Invariants after every step.
          expect(pool.used).toBe(held.size);
          const ranges = [...held.values()];
          for (const r of ranges) {
            expect(r.hostUid).toBeGreaterThanOrEqual(options.base);
            expect(r.hostUid + r.size).toBeLessThanOrEqual(options.base + options.size * options.count);
          }
          for (let i = 0; i < ranges.length; i++)
            for (let j = i + 1; j < ranges.length; j++) {
              const [a, b] = [ranges[i]!, ranges[j]!];
              expect(a.hostUid + a.size <= b.hostUid || b.hostUid + b.size <= a.hostUid).toBe(true);
            }
          for (const [owner2, r] of held) expect(pool.rangeOwnedBy(owner2)).toEqual(r);
        }
      }),
      { numRuns: 500 },
    );
  });
});
