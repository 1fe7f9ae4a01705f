import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { RuntimeError } from "./errors";
import type { ContainerSpec } from "./types";
import { signalNumber, validateSpec } from "./validate";

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    id: "web-1",
    rootfs: "/srv/rootfs",
    command: ["/bin/sh", "-c", "sleep 1"],
    env: { PATH: "/bin" },
    hostname: "web-1",
    resources: { cpuMillis: 250, memoryBytes: 64 * 1024 * 1024, pids: 32 },
    logPath: "/var/log/web-1.log",
    ...over,
  };
}

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RuntimeError);
    return (err as RuntimeError).code;
  }
  return undefined;
}

const lax = { checkFilesystem: false };

describe("validateSpec", () => {
  it("accepts a well-formed spec", () => {
    expect(codeOf(() => validateSpec(spec(), lax))).toBeUndefined();
  });

  it.each([
    ["empty id", { id: "" }],
    ["id with a slash", { id: "a/b" }],
    ["id ..", { id: ".." }],
    ["id too long", { id: "x".repeat(65) }],
    ["relative rootfs", { rootfs: "srv/rootfs" }],
    ["host root as rootfs", { rootfs: "/" }],
    ["empty command", { command: [] }],
    ["empty argv0", { command: [""] }],
    ["NUL in an argument", { command: ["/bin/sh", "a\0b"] }],
    ["env key with =", { env: { "A=B": "c" } }],
    ["relative workingDir", { workingDir: "tmp" }],
    ["bad hostname", { hostname: "has space" }],
    ["zero memory", { resources: { cpuMillis: 100, memoryBytes: 0, pids: 10 } }],
    ["fractional cpu", { resources: { cpuMillis: 1.5, memoryBytes: 1 << 20, pids: 10 } }],
    ["relative logPath", { logPath: "web.log" }],
    ["relative netnsPath", { netnsPath: "run/netns/x" }],
    ["NUL in netnsPath", { netnsPath: "/run/netns/a\0b" }],
    ["hostCgroupNamespace not a boolean", { hostCgroupNamespace: "yes" as unknown as boolean }],
  ] as [string, Partial<ContainerSpec>][])("rejects %s with INVALID_SPEC", (_name, over) => {
    expect(codeOf(() => validateSpec(spec(over), lax))).toBe("INVALID_SPEC");
  });

  it("checks that rootfs is an existing directory when asked", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-validate-"));
    try {
      const file = path.join(dir, "file");
      fs.writeFileSync(file, "");
      const strict = { checkFilesystem: true };
      expect(codeOf(() => validateSpec(spec({ rootfs: dir }), strict))).toBeUndefined();
      expect(codeOf(() => validateSpec(spec({ rootfs: path.join(dir, "missing") }), strict))).toBe("INVALID_SPEC");
      expect(codeOf(() => validateSpec(spec({ rootfs: file }), strict))).toBe("INVALID_SPEC");
      expect(() => validateSpec(spec({ rootfs: file }), strict)).toThrow(/is not a directory/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("validateSpec mounts", () => {
  const m = (over: Record<string, unknown> = {}) => ({ source: "/srv/hosts", destination: "/etc/hosts", ...over });

  it("accepts up to 16 well-formed mounts", () => {
    const mounts = Array.from({ length: 16 }, (_, i) => m({ destination: `/etc/f${i}`, readonly: i % 2 === 0 }));
    expect(codeOf(() => validateSpec(spec({ mounts }), lax))).toBeUndefined();
  });

  it.each([
    ["not an array", "x", /mounts must be an array/],
    ["17 mounts", Array.from({ length: 17 }, () => m()), /17 mounts, at most 16/],
    ["a non-object", [null], /mounts\[0\] must be an object/],
    ["a relative source", [m({ source: "srv/hosts" })], /mounts\[0\]\.source "srv\/hosts" must be an absolute path/],
    ["a NUL in the source", [m({ source: "/srv/a\0b" })], /NUL/],
    ["a relative destination", [m(), m({ destination: "etc/hosts" })], /mounts\[1\]\.destination .* absolute/],
    ["destination /", [m({ destination: "/" })], /must not be \//],
    ["a .. component", [m({ destination: "/etc/../hosts" })], /"\.\." components/],
    ["a trailing ..", [m({ destination: "/etc/.." })], /"\.\." components/],
    ["a . component", [m({ destination: "/etc/./hosts" })], /"\.\." components/],
    ["a NUL in the destination", [m({ destination: "/etc/a\0b" })], /NUL/],
    ["a non-boolean readonly", [m({ readonly: "yes" })], /readonly must be a boolean/],
  ] as [string, unknown, RegExp][])("rejects %s", (_name, mounts, message) => {
    const s = spec({ mounts: mounts as ContainerSpec["mounts"] });
    expect(codeOf(() => validateSpec(s, lax))).toBe("INVALID_SPEC");
    expect(() => validateSpec(s, lax)).toThrow(message);
  });

  it("checks that each source is an existing regular file or directory when asked", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-validate-"));
    try {
      const file = path.join(dir, "hosts");
      fs.writeFileSync(file, "");
      const strict = { checkFilesystem: true };
      const withSource = (source: string) => spec({ rootfs: dir, mounts: [m({ source })] });
      expect(codeOf(() => validateSpec(withSource(file), strict))).toBeUndefined();
      expect(() => validateSpec(withSource(path.join(dir, "missing")), strict)).toThrow(/does not exist/);
      expect(codeOf(() => validateSpec(withSource(dir), strict))).toBeUndefined();
      expect(() => validateSpec(withSource("/dev/null"), strict)).toThrow(/is not a regular file or directory/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("validateSpec userNamespace", () => {
  const range = (containerId: number, hostId: number, size: number) => ({ containerId, hostId, size });
  const ok = { uidMap: [range(0, 100000000, 65536)], gidMap: [range(0, 100000000, 65536)] };

  it("accepts maps of container root to a host range, several lines too", () => {
    expect(codeOf(() => validateSpec(spec({ userNamespace: ok }), lax))).toBeUndefined();
    const two = { ...ok, uidMap: [range(0, 100000000, 1000), range(1000, 200000000, 1000)] };
    expect(codeOf(() => validateSpec(spec({ userNamespace: two }), lax))).toBeUndefined();
  });

  it.each([
    ["a missing gidMap", { uidMap: ok.uidMap }, /userNamespace.gidMap must be an array of 1 to 5 mappings/],
    ["an empty uidMap", { ...ok, uidMap: [] }, /userNamespace.uidMap must be an array of 1 to 5 mappings/],
    ["six lines", { ...ok, uidMap: [0, 1, 2, 3, 4, 5].map((i) => range(i, 1000 + i, 1)) }, /1 to 5 mappings/],
    ["no container root", { ...ok, uidMap: [range(1, 100000000, 10)] }, /uidMap must map container id 0/],
    ["a negative hostId", { ...ok, gidMap: [range(0, -1, 10)] }, /gidMap\[0\].hostId must be an integer/],
    ["a zero size", { ...ok, uidMap: [range(0, 100000000, 0)] }, /uidMap\[0\].size must be a positive integer/],
    ["a range past 2^32-1", { ...ok, uidMap: [range(0, 2 ** 32 - 10, 65536)] }, /uidMap\[0\] runs past id/],
    [
      "overlapping host ranges",
      { ...ok, uidMap: [range(0, 100000000, 100), range(100, 100000050, 100)] },
      /uidMap\[1\] overlaps another host range/,
    ],
    [
      "overlapping container ranges",
      { ...ok, gidMap: [range(0, 100000000, 100), range(50, 300000000, 100)] },
      /gidMap\[1\] overlaps another container range/,
    ],
  ] as [string, unknown, RegExp][])("rejects %s", (_name, userNamespace, message) => {
    const s = spec({ userNamespace: userNamespace as ContainerSpec["userNamespace"] });
    expect(codeOf(() => validateSpec(s, lax))).toBe("INVALID_SPEC");
    expect(() => validateSpec(s, lax)).toThrow(message);
  });
});

describe("signalNumber", () => {
  it("maps names and passes numbers", () => {
    expect(signalNumber("SIGTERM")).toBe(15);
    expect(signalNumber("SIGKILL")).toBe(9);
    expect(signalNumber(10)).toBe(10);
  });
  it("rejects unknown signals", () => {
    expect(codeOf(() => signalNumber("SIGNOPE" as NodeJS.Signals))).toBe("INVALID_SPEC");
    expect(codeOf(() => signalNumber(99))).toBe("INVALID_SPEC");
  });
});
