// User namespaces: container root is an unprivileged host uid. Each check runs
// a real container (grove-shim, the addon's core, the kernel) and compares
// what the container sees with what the host sees.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { NativeRuntime, type UserNamespace } from "@grove/agent";
import { RuntimeFixture } from "./harness/runtime-fixture";
import { RUN_TAG, runSlot } from "./harness/run-id";

const MiB = 1024 * 1024;
const REPO = path.resolve(__dirname, "../..");
const PARENT = `grove-userns-${RUN_TAG}`;
const NETNS = `grove-userns-${RUN_TAG}`;
/** A 65536-wide host range of its own for this jest process (ids < 2^32). */
const HOST_BASE = 300_000_000 + runSlot(50_000) * 65536;
const USERNS: UserNamespace = {
  uidMap: [{ containerId: 0, hostId: HOST_BASE, size: 65536 }],
  gidMap: [{ containerId: 0, hostId: HOST_BASE, size: 65536 }],
};

// A 0700 parent, like an agent state directory: only host root may search it.
const fx = new RuntimeFixture({
  cgroupParent: PARENT,
  name: "grove-userns",
  idPrefix: "u",
  tmpMode: 0o700,
  stateDir: true,
  defaults: { userNamespace: USERNS },
});
const { spec, run } = fx;
let tmp: string;
let rootfs: string;
let rt: NativeRuntime;

function hostStatus(pid: number, key: string): string | undefined {
  return new RegExp(`^${key}:\\s*(.*)$`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]?.trim();
}

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(() => {
  ({ tmp, rootfs, rt } = fx.setUp());
});

afterAll(async () => {
  await fx.tearDown();
  if (fs.existsSync(`/run/netns/${NETNS}`)) execFileSync("ip", ["netns", "delete", NETNS]);
}, 30_000);

describe("user namespace per container", () => {
  it("maps container root to the unprivileged host range: uid_map, id -u, the init's host uid, files it creates", async () => {
    const shared = path.join(tmp, "shared");
    fs.mkdirSync(shared);
    // Owned by the mapped root, as a volume for this container would be.
    fs.chownSync(shared, HOST_BASE, HOST_BASE);
    const s = spec(
      "cat /proc/self/uid_map /proc/self/gid_map; echo uid=$(id -u) gid=$(id -g); ls -ln /bin/busybox; " +
        "touch /shared/made-by-root && echo touched; exec sleep 600",
      { mounts: [{ source: shared, destination: "/shared" }] },
    );
    const h = await rt.start(s);
    await waitFor("the container's file and output", () => fs.readFileSync(s.logPath, "utf8").includes("touched"));
    const out = fs.readFileSync(s.logPath, "utf8");
    const lines = out.split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    expect(lines[0]).toBe(`0 ${HOST_BASE} 65536`);
    expect(lines[1]).toBe(`0 ${HOST_BASE} 65536`);
    expect(out).toContain("uid=0 gid=0");
    // The rootfs is idmapped: its root-owned files are container root's.
    expect(out).toMatch(/^-r?w?x\S* +\d+ 0 +0 .*\/bin\/busybox/m);
    // On the host the init is the unprivileged mapped uid, the file too.
    expect(hostStatus(h.pid, "Uid")).toBe(`${HOST_BASE}\t${HOST_BASE}\t${HOST_BASE}\t${HOST_BASE}`);
    expect(hostStatus(h.pid, "Gid")).toBe(`${HOST_BASE}\t${HOST_BASE}\t${HOST_BASE}\t${HOST_BASE}`);
    const st = fs.statSync(path.join(shared, "made-by-root"));
    expect([st.uid, st.gid]).toEqual([HOST_BASE, HOST_BASE]);
    // The rootfs on disk is unchanged (no chown): still host root's.
    expect(fs.statSync(path.join(rootfs, "bin/busybox")).uid).toBe(0);
    // The init's namespaces: its own user namespace, which exec can join.
    expect(fs.readlinkSync(`/proc/${h.pid}/ns/user`)).not.toBe(fs.readlinkSync("/proc/self/ns/user"));
    await rt.stop(s.id, 0);
    await rt.remove(s.id);
  });

  it("container root cannot do what needs host root (same script without a user namespace can)", async () => {
    const hostFile = path.join(tmp, "host-owned");
    fs.writeFileSync(hostFile, "host\n", { mode: 0o644 });
    const script =
      "echo x >> /host-owned 2>/dev/null && echo write=ok || echo write=denied; " +
      "mknod /tmp/blk b 8 0 2>/dev/null && echo mknod=ok || echo mknod=denied; " +
      "chown 1234 /host-owned 2>/dev/null && echo chown=ok || echo chown=denied; " +
      "cat /proc/self/status | grep CapEff";
    const mounts = [{ source: hostFile, destination: "/host-owned" }];
    const inUserns = await run(script, { mounts });
    expect(inUserns.code).toBe(0);
    expect(inUserns.out).toContain("write=denied");
    expect(inUserns.out).toContain("mknod=denied");
    expect(inUserns.out).toContain("chown=denied");
    // It holds the same capabilities, but only over its own namespace.
    expect(inUserns.out).toMatch(/CapEff:\s*00000000a80425fb/);
    expect(fs.readFileSync(hostFile, "utf8")).toBe("host\n");

    const plain = await run(script, { mounts, userNamespace: undefined });
    expect(plain.out).toContain("write=ok");
    expect(plain.out).toContain("mknod=ok");
    expect(plain.out).toContain("chown=ok");
    expect(fs.statSync(hostFile).uid).toBe(1234);
    expect(fs.readFileSync(hostFile, "utf8")).toBe("host\nx\n");
  });

  it("combines with a non-root user and a read-only root: the user maps into the range too", async () => {
    const s = spec("id -u; touch /x 2>/dev/null || echo ro; exec sleep 600", {
      user: "65534:65534",
      readonlyRootfs: true,
    });
    const h = await rt.start(s);
    await waitFor("the output", () => fs.readFileSync(s.logPath, "utf8").includes("ro"));
    expect(fs.readFileSync(s.logPath, "utf8")).toBe("65534\nro\n");
    expect(hostStatus(h.pid, "Uid")?.split("\t")[0]).toBe(String(HOST_BASE + 65534));
    expect(hostStatus(h.pid, "CapEff")).toBe("0000000000000000");
    await rt.stop(s.id, 0);
    await rt.remove(s.id);
  });

  it("keeps the cgroup limits: the pids limit stops a fork loop", async () => {
    const s = spec("i=0; while [ $i -lt 20 ]; do sleep 60 & i=$((i+1)); done; echo forked=$i", {
      resources: { cpuMillis: 500, memoryBytes: 64 * MiB, pids: 8 },
    });
    const h = await rt.start(s);
    const dir = path.join("/sys/fs/cgroup", rt.cgroupMode === "v2" ? "" : "pids", PARENT, s.id);
    const exit = await h.exited;
    const out = fs.readFileSync(s.logPath, "utf8");
    expect(out).toContain("can't fork");
    expect(out).not.toContain("forked=");
    expect(exit.exitCode).not.toBe(0);
    // The kernel refused the forks beyond the limit.
    expect(Number(/^max (\d+)/m.exec(fs.readFileSync(path.join(dir, "pids.events"), "utf8"))?.[1])).toBeGreaterThan(0);
    await rt.remove(s.id);
  });

  it("joins a network namespace the host created (the parent joins it for clone) and still gets a read-only /sys", async () => {
    execFileSync("ip", ["netns", "add", NETNS]);
    const { code, out } = await run(
      "readlink /proc/self/ns/net; ls /sys/class/net; echo > /sys/kernel/x 2>/dev/null || echo sys=ro; id -u",
      { netnsPath: `/run/netns/${NETNS}` },
    );
    expect(code).toBe(0);
    const inode = fs.statSync(`/run/netns/${NETNS}`).ino;
    expect(out).toContain(`net:[${inode}]`);
    expect(out).toContain("sys=ro");
    expect(out.trim().split("\n").pop()).toBe("0");
    // The test process stayed in its own network namespace.
    expect(fs.readlinkSync("/proc/self/ns/net")).not.toBe(`net:[${inode}]`);
  });

  it("refuses maps without container root, overlapping ranges or too many lines, naming the field", async () => {
    await expect(
      rt.start(
        spec("true", { userNamespace: { ...USERNS, uidMap: [{ containerId: 1, hostId: HOST_BASE, size: 10 }] } }),
      ),
    ).rejects.toThrow(/userNamespace.uidMap must map container id 0/);
    await expect(
      rt.start(
        spec("true", {
          userNamespace: {
            ...USERNS,
            gidMap: [
              { containerId: 0, hostId: HOST_BASE, size: 10 },
              { containerId: 100, hostId: HOST_BASE + 5, size: 10 },
            ],
          },
        }),
      ),
    ).rejects.toThrow(/userNamespace.gidMap\[1\] overlaps another host range/);
  });
});

describe("user namespace on an overlayfs rootfs (an image instance's own mount)", () => {
  it("shifts the ownership into the upper directory (no idmapped overlay mounts here); the layer stays as it is", async () => {
    const ov = path.join(tmp, "overlay");
    const [upper, work, merged] = ["upper", "work", "merged"].map((d) => path.join(ov, d));
    for (const d of [upper!, work!, merged!]) fs.mkdirSync(d, { recursive: true });
    execFileSync("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${rootfs},upperdir=${upper},workdir=${work}`,
      merged!,
    ]);
    try {
      const { code, out } = await run("id -u; ls -ln /bin/busybox; echo hi > /tmp/w && cat /tmp/w", {
        rootfs: merged!,
      });
      expect(code).toBe(0);
      expect(out).toMatch(/^0\n/);
      expect(out).toMatch(/^-\S+ +\d+ 0 +0 .*\/bin\/busybox/m);
      expect(out).toContain("hi");
      // On the host: the merged tree belongs to the mapped root, copied up; the layer is untouched.
      expect(fs.statSync(path.join(merged!, "bin/busybox")).uid).toBe(HOST_BASE);
      expect(fs.statSync(path.join(upper!, "bin/busybox")).uid).toBe(HOST_BASE);
      expect(fs.statSync(path.join(rootfs, "bin/busybox")).uid).toBe(0);
      expect(fs.statSync(path.join(upper!, "tmp/w")).uid).toBe(HOST_BASE);
      // A second start finds it shifted already.
      expect((await run("id -u", { rootfs: merged! })).out.trim()).toBe("0");
    } finally {
      execFileSync("umount", [merged!]);
    }
  });
});

describe("grove-runtime: linux.namespaces user with uidMappings and gidMappings", () => {
  const impls: [string, string[]][] = [
    ["C", [path.join(REPO, "agent", "bin", "grove-runtime")]],
    ["TypeScript", [process.execPath, path.join(REPO, "agent", "bin", "grove-runtime-node.js")]],
  ];

  it.each(impls)("%s: runs the bundle in the mapping, its rootfs as the bundle's owner prepared it", (name, cli) => {
    const bundle = path.join(tmp, `bundle-${name}`);
    fs.mkdirSync(bundle);
    // runtime-spec: the rootfs is prepared for the mapping by whoever made the bundle.
    execFileSync("cp", ["-a", rootfs, path.join(bundle, "rootfs")]);
    execFileSync("chown", ["-R", `${HOST_BASE}:${HOST_BASE}`, path.join(bundle, "rootfs")]);
    execFileSync("runc", ["spec"], { cwd: bundle });
    const config = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as {
      process: { terminal: boolean; args: string[] };
      root: { readonly: boolean };
      linux: Record<string, unknown> & { namespaces: { type: string }[] };
    };
    config.process.terminal = false;
    config.root.readonly = false;
    config.process.args = ["/bin/sh", "-c", "cat /proc/self/uid_map; id -u; touch /made && ls -ln /made"];
    config.linux.namespaces.push({ type: "user" });
    config.linux.uidMappings = [{ containerID: 0, hostID: HOST_BASE, size: 65536 }];
    config.linux.gidMappings = [{ containerID: 0, hostID: HOST_BASE, size: 65536 }];
    fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(config));
    const root = path.join(tmp, `oci-state-${name}`);
    const r = spawnSync(
      cli[0]!,
      [...cli.slice(1), "--root", root, "--cgroup-parent", PARENT, "run", "--bundle", bundle, `oci-${name}`],
      {
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout.split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    expect(lines[0]).toBe(`0 ${HOST_BASE} 65536`);
    expect(lines[1]).toBe("0");
    expect(lines[2]).toMatch(/ 0 +0 .*\/made$/);
    expect(fs.statSync(path.join(bundle, "rootfs", "made")).uid).toBe(HOST_BASE);
  });
});
