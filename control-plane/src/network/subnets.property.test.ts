// Property tests for subnet allocation: what allocateSubnet hands out lies in
// the cluster CIDR, is aligned to its size and overlaps nothing taken; and it
// says "full" only when every aligned candidate really is taken.
import fc from "fast-check";
import { allocateSubnet, cidrSize, contains, formatCidr, overlaps, parseCidr, type Cidr } from "./subnets";

// A small cluster (a /20 .. /26) so the brute-force check stays cheap.
const scenario = fc
  .record({
    clusterPrefix: fc.integer({ min: 20, max: 26 }),
    extra: fc.integer({ min: 0, max: 4 }),
    takenSpecs: fc.array(fc.record({ offset: fc.nat(), prefix: fc.integer({ min: 16, max: 30 }) }), { maxLength: 40 }),
  })
  .map(({ clusterPrefix, extra, takenSpecs }) => {
    const cluster: Cidr = { base: (10 << 24) >>> 0, prefix: clusterPrefix };
    const subnetPrefix = Math.min(30, clusterPrefix + extra);
    // Taken networks anywhere near the cluster, aligned to their own size.
    const taken = takenSpecs.map(({ offset, prefix }) => {
      const size = 2 ** (32 - prefix);
      const base = cluster.base - 2 ** 12 + ((offset * size) % 2 ** 14);
      return { base: base - (base % size), prefix };
    });
    return { cluster, subnetPrefix, taken };
  });

describe("subnet allocation (properties)", () => {
  it("hands out an aligned subnet inside the cluster that overlaps nothing taken, or says full only when full", () => {
    fc.assert(
      fc.property(scenario, ({ cluster, subnetPrefix, taken }) => {
        const got = allocateSubnet(cluster, subnetPrefix, taken);
        const step = 2 ** (32 - subnetPrefix);
        if (got) {
          expect(got.prefix).toBe(subnetPrefix);
          expect(got.base % step).toBe(0);
          expect(contains(cluster, got)).toBe(true);
          for (const t of taken) expect([formatCidr(t), overlaps(t, got)]).toEqual([formatCidr(t), false]);
          // The first free one: every earlier candidate is taken.
          for (let b = cluster.base; b < got.base; b += step)
            expect(taken.some((t) => overlaps(t, { base: b, prefix: subnetPrefix }))).toBe(true);
        } else {
          for (let b = cluster.base; b < cluster.base + cidrSize(cluster); b += step)
            expect(taken.some((t) => overlaps(t, { base: b, prefix: subnetPrefix }))).toBe(true);
        }
      }),
    );
  });

  it("parseCidr(formatCidr(c)) is c for every network address", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 32 }), fc.nat({ max: 2 ** 32 - 1 }), (prefix, raw) => {
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const c = { base: (raw & mask) >>> 0, prefix };
        expect(parseCidr(formatCidr(c))).toEqual(c);
        if ((raw & ~mask) !== 0) expect(() => parseCidr(formatCidr({ base: raw, prefix }))).toThrow(/host bits set/);
      }),
    );
  });
});
