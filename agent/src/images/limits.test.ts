import { forbiddenKind } from "./address-guard";
import { DEFAULT_IMAGE_LIMITS, parseSize, RATIO_FLOOR_BYTES, uncompressedLimitOf } from "./limits";
import { cleanText, MAX_REASON_BYTES } from "./registry";

describe("parseSize", () => {
  it.each([
    ["4096", 4096],
    ["512M", 512 * 1024 ** 2],
    ["10G", 10 * 1024 ** 3],
    ["1.5g", 1.5 * 1024 ** 3],
    ["2TiB", 2 * 1024 ** 4],
    ["0", 0],
  ])("%s", (text, bytes) => expect(parseSize(text)).toBe(bytes));
  it.each(["", "lots", "-1", "5X", "1e9"])("refuses %j", (text) => expect(() => parseSize(text)).toThrow(/size/));
});

describe("uncompressedLimitOf", () => {
  const limits = { ...DEFAULT_IMAGE_LIMITS, maxRatio: 100, maxUncompressedBytes: 50 * 1024 ** 3 };
  it("applies the ratio to a layer's compressed size, never below the floor", () => {
    expect(uncompressedLimitOf(limits, 1024 ** 2)).toEqual({ bytes: 100 * 1024 ** 2, flag: "--image-max-ratio 100" });
    expect(uncompressedLimitOf(limits, 40).bytes).toBe(RATIO_FLOOR_BYTES);
  });
  it("caps it at the uncompressed maximum", () => {
    expect(uncompressedLimitOf(limits, 8 * 1024 ** 3)).toEqual({
      bytes: 50 * 1024 ** 3,
      flag: "--image-max-uncompressed-size",
    });
  });
});

describe("forbiddenKind", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["10.0.0.5", undefined],
    ["192.168.1.1", undefined],
    ["2001:db8::1", undefined],
    ["registry.example", undefined],
  ])("%s is %s", (ip, kind) => expect(forbiddenKind(ip)).toBe(kind));
});

describe("cleanText", () => {
  it("turns control characters into spaces", () => {
    expect(cleanText("a\x1b[31mred\r\nnext\x00\x7f\u009b\u202eevil")).toBe("a [31mred next evil");
  });
  it("cuts at MAX_REASON_BYTES on a character boundary and says how much was cut", () => {
    const out = cleanText("é".repeat(1000));
    const kept = out.slice(0, out.indexOf("…"));
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(MAX_REASON_BYTES);
    expect(kept).toBe("é".repeat(MAX_REASON_BYTES / 2));
    expect(out).toMatch(/… \(1488 more bytes cut\)$/);
  });
});
