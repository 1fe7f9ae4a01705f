// ContainerSpec.mounts: bind mounts of host files into a container, checked
// from inside containers started by the real runtime (grove-shim, addon, kernel).
import * as fs from "node:fs";
import * as path from "node:path";

import { NativeRuntime } from "@grove/agent";
import { RuntimeFixture } from "./harness/runtime-fixture";
import { RUN_TAG } from "./harness/run-id";

const PARENT = `grove-mnt-${RUN_TAG}`;

const fx = new RuntimeFixture({ cgroupParent: PARENT, name: "grove-mnt", idPrefix: "m" });
const { spec, run } = fx;
let tmp: string;
let rootfs: string;
let rt: NativeRuntime;

beforeAll(() => {
  ({ tmp, rootfs, rt } = fx.setUp());
});

afterAll(() => fx.tearDown());

describe("ContainerSpec.mounts", () => {
  it("bind-mounts a host file; the container reads it, and writes to it when it is not read-only", async () => {
    const src = path.join(tmp, "greeting");
    fs.writeFileSync(src, `hello from ${RUN_TAG}\n`);
    const { code, out } = await run("cat /etc/greeting && echo changed > /etc/greeting && echo wrote", {
      mounts: [{ source: src, destination: "/etc/greeting" }],
    });
    expect(out).toContain(`hello from ${RUN_TAG}`);
    expect(out).toContain("wrote");
    expect(code).toBe(0);
    // The write went to the host file; the destination created in the rootfs stays empty.
    expect(fs.readFileSync(src, "utf8")).toBe("changed\n");
    expect(fs.readFileSync(path.join(rootfs, "etc/greeting"), "utf8")).toBe("");
  });

  it("enforces readonly: a write fails, the host file is unchanged", async () => {
    const src = path.join(tmp, "hosts-ro");
    fs.writeFileSync(src, "10.1.2.3\tmounted-host\n");
    const { code, out } = await run(
      "cat /etc/hosts; if echo x >> /etc/hosts; then echo WRITE-OK; else echo WRITE-FAILED; fi; grep ' /etc/hosts ' /proc/self/mounts",
      { mounts: [{ source: src, destination: "/etc/hosts", readonly: true }] },
    );
    expect(code).toBe(0);
    expect(out).toContain("10.1.2.3\tmounted-host");
    expect(out).toContain("WRITE-FAILED");
    expect(out).not.toContain("WRITE-OK");
    expect(out).toMatch(/Read-only file system/);
    expect(out).toMatch(/ \/etc\/hosts \S+ ro[ ,]/);
    expect(fs.readFileSync(src, "utf8")).toBe("10.1.2.3\tmounted-host\n");
  });

  it("creates a missing destination (and mounts several files)", async () => {
    const a = path.join(tmp, "a.txt");
    const b = path.join(tmp, "b.txt");
    fs.writeFileSync(a, "AAA\n");
    fs.writeFileSync(b, "BBB\n");
    const { code, out } = await run("cat /tmp/a.txt /b.txt", {
      mounts: [
        { source: a, destination: "/tmp/a.txt", readonly: true },
        { source: b, destination: "/b.txt", readonly: true },
      ],
    });
    expect(code).toBe(0);
    expect(out).toBe("AAA\nBBB\n");
  });

  it("refuses a destination through a symlink leading out of the rootfs; nothing on the host changes", async () => {
    const evil = path.join(rootfs, "etc/evil");
    fs.symlinkSync("/etc", evil);
    const target = `/etc/grove-mnt-${RUN_TAG}`; // what an escape would create on the host
    const src = path.join(tmp, "payload");
    fs.writeFileSync(src, "payload\n");
    const hostsBefore = fs.readFileSync("/etc/hosts", "utf8");
    try {
      const s = spec("echo RAN", { mounts: [{ source: src, destination: `/etc/evil/grove-mnt-${RUN_TAG}` }] });
      await expect(rt.start(s)).rejects.toThrow(/mount destination leads out of the rootfs.*\/etc\/evil/);
      const s2 = spec("echo RAN", { mounts: [{ source: src, destination: "/etc/evil/hosts" }] });
      await expect(rt.start(s2)).rejects.toThrow(/mount destination leads out of the rootfs.*\/etc\/evil\/hosts/);
      // A destination that is itself a symlink is refused too.
      const s3 = spec("echo RAN", { mounts: [{ source: src, destination: "/etc/evil" }] });
      await expect(rt.start(s3)).rejects.toThrow(/mount destination is a symlink: \/etc\/evil/);
      expect(fs.existsSync(target)).toBe(false);
      expect(fs.readFileSync("/etc/hosts", "utf8")).toBe(hostsBefore);
      expect(rt.list()).toEqual([]);
      expect(fs.existsSync(s.logPath) ? fs.readFileSync(s.logPath, "utf8") : "").not.toContain("RAN");
    } finally {
      fs.rmSync(evil, { force: true });
      fs.rmSync(target, { force: true });
    }
  });

  it("validates mounts in TypeScript before anything starts", async () => {
    const src = path.join(tmp, "v");
    fs.writeFileSync(src, "v\n");
    await expect(rt.start(spec("true", { mounts: [{ source: "rel", destination: "/x" }] }))).rejects.toThrow(
      /mounts\[0\]\.source "rel" must be an absolute path/,
    );
    // A directory is fine (test/src/runtime-userns.test.ts mounts one); a device is not.
    await expect(rt.start(spec("true", { mounts: [{ source: "/dev/null", destination: "/x" }] }))).rejects.toThrow(
      /is not a regular file or directory/,
    );
    await expect(rt.start(spec("true", { mounts: [{ source: src, destination: "/etc/../x" }] }))).rejects.toThrow(
      /must not have "\." or "\.\." components/,
    );
  });
});
