import fc from "fast-check";
import {
  addResources,
  clampResources,
  formatBytes,
  formatCpu,
  formatLimits,
  sameLimits,
  subtractResources,
  zeroResources,
  type ResourceAmounts,
} from "./resources";

const amounts: fc.Arbitrary<ResourceAmounts> = fc.record(
  { cpuMillis: fc.nat(1e6), memoryBytes: fc.nat(2 ** 40), pids: fc.nat(1e5), diskBytes: fc.nat(2 ** 40) },
  { requiredKeys: ["cpuMillis", "memoryBytes", "pids"] },
);

test("adding then subtracting the same amount gives the original back (disk present on either side stays)", () => {
  fc.assert(
    fc.property(amounts, amounts, (a, b) => {
      const back = subtractResources(addResources(a, b), b);
      expect(sameLimits(back, a)).toBe(true);
      if (a.diskBytes !== undefined || b.diskBytes !== undefined) expect(back.diskBytes).toBe(a.diskBytes ?? 0);
      else expect(back).not.toHaveProperty("diskBytes");
    }),
  );
});

test("zero is neutral; subtraction may go negative and clamp raises it to zero", () => {
  const r = { cpuMillis: 500, memoryBytes: 64, pids: 10 };
  expect(addResources(zeroResources(), r)).toEqual(r);
  const less = subtractResources(r, { cpuMillis: 600, memoryBytes: 32, pids: 10, diskBytes: 5 });
  expect(less).toEqual({ cpuMillis: -100, memoryBytes: 32, pids: 0, diskBytes: -5 });
  expect(clampResources(less)).toEqual({ cpuMillis: 0, memoryBytes: 32, pids: 0, diskBytes: 0 });
});

test("sameLimits compares what the agent enforces, not disk", () => {
  const r = { cpuMillis: 500, memoryBytes: 64, pids: 10 };
  expect(sameLimits(r, { ...r, diskBytes: 1 })).toBe(true);
  expect(sameLimits(r, { ...r, pids: 11 })).toBe(false);
});

test("formatting", () => {
  expect(formatBytes(64 * 2 ** 20)).toBe("64Mi");
  expect(formatBytes(25006368768)).toBe("23.3Gi");
  expect(formatBytes(512)).toBe("512");
  expect([formatCpu(250), formatCpu(2000)]).toEqual(["250m", "2"]);
  expect(formatLimits({ cpuMillis: 500, memoryBytes: 128 * 2 ** 20, pids: 64 })).toBe(
    "cpu 500m, memory 128Mi, pids 64",
  );
});
