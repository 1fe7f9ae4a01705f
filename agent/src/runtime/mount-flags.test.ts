// Which mount a host path is on, and its nosuid/nodev/noexec, from a mountinfo text.
import { flagsOfMountAt, sourceMountFlags } from "./mount-flags";

const line = (id: number, parent: number, point: string, options: string) =>
  `${id} ${parent} 0:${id} / ${point} ${options} - tmpfs t-${id} rw`;
const MOUNTINFO = [
  line(27, 1, "/", "rw,relatime"),
  line(22, 27, "/proc", "rw,nosuid,nodev,noexec,relatime"),
  line(30, 27, "/data", "rw,nosuid,nodev"),
  line(31, 30, "/data/my\\040vol", "ro,noexec"),
  // Stacked on /stack: the later mount's parent is the one below it.
  line(40, 27, "/stack", "rw"),
  line(41, 40, "/stack", "rw,nosuid"),
  // /h/y was mounted first, then /h over its parent directory: /h hides it.
  line(50, 27, "/h/y", "rw,noexec"),
  line(51, 27, "/h", "rw,nodev"),
  "",
].join("\n");

describe("flagsOfMountAt", () => {
  it.each([
    ["/", []],
    ["/etc/hosts", []],
    ["/proc/1/status", ["nosuid", "nodev", "noexec"]],
    ["/data", ["nosuid", "nodev"]],
    ["/data/a/b", ["nosuid", "nodev"]],
    ["/data2/a", []],
    ["/data/my vol/f", ["noexec"]],
    ["/data/my vol", ["noexec"]],
    ["/stack/f", ["nosuid"]],
    ["/h/y/z", ["nodev"]],
  ] as const)("%s is on a mount with %j", (p, flags) => {
    expect(flagsOfMountAt(p, MOUNTINFO)).toEqual(flags);
  });

  it("is empty when no root mount is listed", () => {
    expect(flagsOfMountAt("/proc/1", line(22, 27, "/proc", "nosuid"))).toEqual([]);
  });
});

describe("sourceMountFlags", () => {
  // What a real mount gives is checked in test/src/runtime-oci-mounts2.test.ts (a tmpfs of its own).
  it("a source that does not resolve has none (the start fails on it, naming it)", () => {
    expect(sourceMountFlags("/nonexistent/grove-mount-flags")).toEqual([]);
  });
});
