import { DEFAULT_USERNS_RANGE, UsernsPool, parseUsernsRange } from "./userns-pool";

describe("parseUsernsRange", () => {
  it("reads BASE:SIZExCOUNT", () => {
    expect(parseUsernsRange(DEFAULT_USERNS_RANGE)).toEqual({ base: 100_000_000, size: 65536, count: 1000 });
    expect(parseUsernsRange("200000:1000x5")).toEqual({ base: 200_000, size: 1000, count: 5 });
  });

  it.each([
    ["100000", /must be BASE:SIZExCOUNT/],
    ["0:65536x10", /BASE must be at least 1/],
    ["1:0x10", /SIZE and COUNT must be at least 1/],
    ["4294000000:65536x100", /run past the last id/],
  ])("refuses %s", (text, message) => {
    expect(() => parseUsernsRange(text)).toThrow(message);
  });
});

describe("UsernsPool", () => {
  const opts = { base: 1_000_000, size: 65536, count: 3 };

  it("gives distinct owners distinct slots and the same owner the same slot", () => {
    const pool = new UsernsPool(opts);
    const a = pool.allocate("a");
    const b = pool.allocate("b");
    expect(a).toEqual({ hostUid: 1_000_000, hostGid: 1_000_000, size: 65536 });
    expect(b).toEqual({ hostUid: 1_065_536, hostGid: 1_065_536, size: 65536 });
    expect(pool.allocate("a")).toEqual(a);
    expect(pool.used).toBe(2);
  });

  it("throws when full; release frees the slot for the next owner", () => {
    const pool = new UsernsPool(opts);
    const ranges = ["a", "b", "c"].map((o) => pool.allocate(o));
    expect(new Set(ranges.map((r) => r.hostUid)).size).toBe(3);
    expect(() => pool.allocate("d")).toThrow(/all 3 slots of --userns-range are in use/);
    pool.release("b");
    pool.release("nobody");
    expect(pool.allocate("d")).toEqual(ranges[1]);
    expect(pool.rangeOwnedBy("b")).toBeUndefined();
  });

  it("claims ranges found after a restart, refusing foreign or taken ones", () => {
    const pool = new UsernsPool(opts);
    const second = { hostUid: 1_065_536, hostGid: 1_065_536, size: 65536 };
    expect(pool.claim("x", second)).toBe(true);
    expect(pool.claim("x", second)).toBe(true);
    expect(pool.claim("y", second)).toBe(false);
    expect(pool.claim("y", { hostUid: 1_000_001, hostGid: 1_000_001, size: 65536 })).toBe(false); // not a slot start
    expect(pool.claim("y", { hostUid: 5_000_000, hostGid: 5_000_000, size: 65536 })).toBe(false); // outside
    expect(pool.claim("y", { hostUid: 1_000_000, hostGid: 2_000_000, size: 65536 })).toBe(false); // uid != gid
    // The next allocations go around the claimed slot.
    expect(pool.allocate("a").hostUid).toBe(1_000_000);
    expect(pool.allocate("b").hostUid).toBe(1_131_072);
  });

  it("tells whether an explicit range shares ids with the pool", () => {
    const pool = new UsernsPool(opts);
    expect(pool.overlaps({ hostUid: 999_000, hostGid: 999_000, size: 1000 })).toBe(false);
    expect(pool.overlaps({ hostUid: 999_000, hostGid: 999_000, size: 1001 })).toBe(true);
    expect(pool.overlaps({ hostUid: 5, hostGid: 1_196_607, size: 1 })).toBe(true);
    expect(pool.overlaps({ hostUid: 1_196_608, hostGid: 1_196_608, size: 65536 })).toBe(false);
  });
});
