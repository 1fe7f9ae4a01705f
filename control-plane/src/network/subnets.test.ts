import { addressesInside, allocateSubnet, contains, formatCidr, overlaps, parseCidr, parsePortRange } from "./subnets";

describe("cluster subnets", () => {
  it("parses CIDRs and names the field on bad input", () => {
    expect(formatCidr(parseCidr("10.244.0.0/16"))).toBe("10.244.0.0/16");
    expect(() => parseCidr("10.244.0.1/16", "--cluster-cidr")).toThrow(
      /--cluster-cidr: 10.244.0.1\/16 has host bits set/,
    );
    expect(() => parseCidr("10.300.0.0/16", "--cluster-cidr")).toThrow(/--cluster-cidr: .* is not an IPv4 CIDR/);
    expect(() => parseCidr("10.0.0.0/33")).toThrow(/not an IPv4 CIDR/);
  });

  it("allocates the first free subnet and skips overlapping ones", () => {
    const cluster = parseCidr("10.244.0.0/16");
    const a = allocateSubnet(cluster, 24, [])!;
    expect(formatCidr(a)).toBe("10.244.0.0/24");
    const b = allocateSubnet(cluster, 24, [a, parseCidr("10.244.1.128/25")])!;
    expect(formatCidr(b)).toBe("10.244.2.0/24");
    expect(contains(cluster, b)).toBe(true);
    expect(overlaps(a, b)).toBe(false);
  });

  it("finds node addresses that overlap the cluster CIDR", () => {
    expect(addressesInside(parseCidr("10.244.0.0/16"), ["10.244.3.7", "192.0.2.1", "fe80::1"])).toEqual(["10.244.3.7"]);
  });

  it("reports a full cluster CIDR", () => {
    const cluster = parseCidr("10.0.0.0/23");
    const taken = [parseCidr("10.0.0.0/24"), parseCidr("10.0.1.0/24")];
    expect(allocateSubnet(cluster, 24, taken)).toBeUndefined();
  });

  // The lowest free port of a range is scheduler/ports.ts's freeInRange now (its tests there).
  it("refuses a port range that runs downwards, naming the flag", () => {
    expect(parsePortRange("20000-20002")).toEqual({ first: 20000, last: 20002 });
    expect(() => parsePortRange("9-5", "--host-port-range")).toThrow(/--host-port-range/);
  });
});

describe("allocateSubnet at thousands of nodes", () => {
  it("finds the one free /24 among 5,000 taken, given in any order", () => {
    const cluster = parseCidr("10.0.0.0/8");
    // Taken in shuffled order, with one hole near the end.
    const taken = Array.from({ length: 5_001 }, (_, i) => ({ base: cluster.base + i * 256, prefix: 24 }))
      .filter((_, i) => i !== 4_990)
      .sort((a, b) => ((a.base * 7919) % 10007) - ((b.base * 7919) % 10007));
    expect(formatCidr(allocateSubnet(cluster, 24, taken)!)).toBe("10.19.126.0/24");
    expect(formatCidr(allocateSubnet(cluster, 24, [...taken, parseCidr("10.19.126.0/24")])!)).toBe("10.19.137.0/24");
  });
});
