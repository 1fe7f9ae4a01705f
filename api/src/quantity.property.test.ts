// Property tests for the quantity parser: what formatCpu/formatBytes print
// parses back, and no input makes the parser return something that is not a
// whole, finite, non-negative number (it throws instead).
import fc from "fast-check";
import { formatBytes, formatCpu, parseBytes, parseCpuMillis } from "./quantity";

describe("quantities (properties)", () => {
  it("formatCpu output parses back to the same millicores", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), (m) => {
        expect(parseCpuMillis(formatCpu(m))).toBe(m);
      }),
    );
  });

  it("formatBytes output parses back exactly when it is exact, within its rounding otherwise", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 50 }), (n) => {
        const text = formatBytes(n);
        const back = parseBytes(text);
        if (!text.includes(".")) expect(back).toBe(n);
        // One decimal of a unit >= 1024: off by at most 5% of the value.
        else expect(Math.abs(back - n)).toBeLessThanOrEqual(n * 0.05);
      }),
    );
  });

  it("any string either parses to a whole non-negative finite number or throws an Error naming the input", () => {
    const quantityLike = fc.oneof(
      fc.string(),
      fc
        .tuple(
          fc.stringMatching(/^[0-9]{0,25}(\.[0-9]{0,6})?$/),
          fc.constantFrom("", "m", "Ki", "Mi", "Gi", "Ti", "k", "K", "M", "G", "T", "E", "mi", " "),
        )
        .map(([a, b]) => a + b),
    );
    fc.assert(
      fc.property(quantityLike, (q) => {
        for (const parse of [parseCpuMillis, parseBytes]) {
          let v: number;
          try {
            v = parse(q);
          } catch (err) {
            expect(err).toBeInstanceOf(Error);
            expect((err as Error).message).toContain(String(q));
            continue;
          }
          expect(Number.isFinite(v)).toBe(true);
          expect(Number.isInteger(v)).toBe(true);
          expect(v).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
