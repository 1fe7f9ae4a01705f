import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import {
  capabilityMask,
  capabilitySet,
  defaultNofile,
  readFileInRoot,
  resolveUser,
  rlimitNumber,
  USER_DB_MAX_BYTES,
} from "./security";

describe("capabilities", () => {
  it("defaults to Docker's 14 (mask 0xa80425fb)", () => {
    expect(capabilitySet()).toHaveLength(14);
    expect(BigInt(capabilityMask(capabilitySet())).toString(16)).toBe("a80425fb");
  });
  it("drops, adds and understands ALL and the CAP_ prefix", () => {
    expect(capabilitySet(["CAP_NET_ADMIN"], ["chown"])).toContain("NET_ADMIN");
    expect(capabilitySet(["CAP_NET_ADMIN"], ["chown"])).not.toContain("CHOWN");
    expect(capabilitySet([], ["ALL"])).toEqual([]);
    expect(capabilitySet(["KILL"], ["ALL"])).toEqual(["KILL"]);
    expect(capabilitySet(["ALL"]).length).toBeGreaterThan(38);
    expect(() => capabilitySet(["NOPE"])).toThrow('capabilities.add: unknown capability "NOPE"');
  });
});

describe("rlimits", () => {
  it("maps names and refuses bad values naming the field", () => {
    expect(rlimitNumber({ type: "RLIMIT_NOFILE", soft: 1, hard: 2 }, 0)).toBe(7);
    expect(() => rlimitNumber({ type: "RLIMIT_NOFILE", soft: 3, hard: 2 }, 1)).toThrow(
      "rlimits[1]: soft 3 is above hard 2",
    );
    expect(() => rlimitNumber({ type: "X", soft: 1, hard: 1 }, 2)).toThrow('rlimits[2].type: unknown rlimit "X"');
  });
});

describe("users from the rootfs", () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "grove-sec-"));
    fs.mkdirSync(path.join(root, "etc"));
    fs.writeFileSync(path.join(root, "etc/passwd"), "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n");
    fs.writeFileSync(path.join(root, "etc/group"), "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\n");
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it("resolves names, numbers, groups and memberships", () => {
    expect(resolveUser(root, undefined)).toEqual({ uid: 0, gid: 0, groups: [] });
    expect(resolveUser(root, "app")).toEqual({ uid: 1000, gid: 1000, groups: [10] });
    expect(resolveUser(root, "app:wheel", [5])).toEqual({ uid: 1000, gid: 10, groups: [5, 10] });
    expect(resolveUser(root, "4242")).toEqual({ uid: 4242, gid: 0, groups: [] });
    expect(resolveUser(root, "4242:77")).toEqual({ uid: 4242, gid: 77, groups: [] });
    expect(() => resolveUser(root, "ghost")).toThrow(/no user "ghost"/);
    expect(() => resolveUser(root, "app:ghosts")).toThrow(/no group "ghosts"/);
    expect(() => resolveUser(root, "a:b:c")).toThrow(/must be "name", "uid"/);
  });

  it("resolves symlinks inside the root only", () => {
    fs.symlinkSync("/etc/passwd", path.join(root, "abs-link"));
    fs.symlinkSync("../../../../etc/group", path.join(root, "etc/climb"));
    expect(readFileInRoot(root, "/abs-link")).toContain("app:x:1000");
    expect(readFileInRoot(root, "/etc/climb")).toContain("wheel");
    expect(readFileInRoot(root, "/nope")).toBeUndefined();
  });

  it("refuses a user database above the size cap, naming the file and the cap, and does not wait on a FIFO", () => {
    const big = fs.mkdtempSync(path.join(os.tmpdir(), "grove-sec-big-"));
    try {
      fs.mkdirSync(path.join(big, "etc"));
      fs.writeFileSync(path.join(big, "etc/passwd"), "nobody:x:65534:65534::/:/bin/false\n".padEnd(2000, "#"));
      expect(readFileInRoot(big, "/etc/passwd", 4096)).toContain("nobody");
      expect(() => readFileInRoot(big, "/etc/passwd", 1000)).toThrow(
        `${path.join(big, "etc/passwd")} is larger than the 1000-byte limit for user and group files`,
      );
      fs.writeFileSync(path.join(big, "etc/passwd"), "x".repeat(USER_DB_MAX_BYTES + 1));
      expect(() => resolveUser(big, "nobody")).toThrow(/larger than the 1048576-byte limit/);
      fs.rmSync(path.join(big, "etc/passwd"));
      execFileSync("mkfifo", [path.join(big, "etc/passwd")]);
      expect(readFileInRoot(big, "/etc/passwd")).toBeUndefined();
    } finally {
      fs.rmSync(big, { recursive: true, force: true });
    }
  });
});

describe("defaultNofile", () => {
  let dir: string;
  let n = 0;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-limits-"))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const limits = (soft: string, hard: string): string => {
    const file = path.join(dir, `limits${++n}`);
    fs.writeFileSync(
      file,
      "Limit                     Soft Limit           Hard Limit           Units     \n" +
        "Max processes             95555                95555                processes \n" +
        `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     \n`,
    );
    return file;
  };
  it("is Docker's 1024/524288 when this process may go that high", () => {
    expect(defaultNofile(limits("1048576", "1048576"))).toEqual({ type: "RLIMIT_NOFILE", soft: 1024, hard: 524288 });
  });
  it("lowers the hard limit (and the soft one under it) to this process's own", () => {
    expect(defaultNofile(limits("1024", "20000"))).toEqual({ type: "RLIMIT_NOFILE", soft: 1024, hard: 20000 });
    expect(defaultNofile(limits("256", "512"))).toEqual({ type: "RLIMIT_NOFILE", soft: 512, hard: 512 });
  });
  it("falls back to Docker's without a readable limits file", () => {
    expect(defaultNofile("/nonexistent/limits")).toEqual({ type: "RLIMIT_NOFILE", soft: 1024, hard: 524288 });
  });
});
