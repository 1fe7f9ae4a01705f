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
