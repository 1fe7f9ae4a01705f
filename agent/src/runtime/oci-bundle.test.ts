import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { RuntimeError } from "./errors";
import { sourceMountFlags } from "./mount-flags";
import { ociConfig, ociSeccomp } from "./oci-bundle";
import { parseRuntimeHandler, shimHandler } from "./runtime-handlers";
import type { ContainerSpec } from "./types";

let rootfs: string;

beforeAll(() => {
  rootfs = fs.mkdtempSync(path.join(os.tmpdir(), "grove-oci-bundle-"));
  fs.mkdirSync(path.join(rootfs, "etc"));
  fs.writeFileSync(path.join(rootfs, "etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
  fs.writeFileSync(path.join(rootfs, "etc/group"), "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
});

afterAll(() => fs.rmSync(rootfs, { recursive: true, force: true }));

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    id: "web-1",
    rootfs,
    command: ["/bin/sh", "-c", "sleep 1"],
    env: { PATH: "/bin" },
    hostname: "web-1",
    resources: { cpuMillis: 250, memoryBytes: 64 * 1024 * 1024, pids: 32 },
    logPath: "/var/log/web-1.log",
    ...over,
  };
}

const AT = { mode: "v2", root: "/nonexistent-cgroupfs", parent: "grove" } as const;

/** The syscall names a resolved profile allows (action SCMP_ACT_ALLOW without argument rules). */
function allowed(seccomp: Record<string, unknown>): Set<string> {
  const rules = seccomp.syscalls as { names: string[]; action: string; args?: unknown[] }[];
  return new Set(rules.filter((r) => r.action === "SCMP_ACT_ALLOW" && r.args === undefined).flatMap((r) => r.names));
}

describe("ociConfig", () => {
  it("writes the instance's process, root, cgroup and namespaces as the native path has them", () => {
    const c = ociConfig(
      spec({
        user: "app",
        netnsPath: "/run/netns/inst",
        readonlyRootfs: true,
        mounts: [
          { source: "/srv", destination: "/srv", recursive: true },
          { source: "/etc/hosts", destination: "/etc/hosts", readonly: true },
        ],
        capabilities: { add: ["NET_ADMIN"], drop: ["MKNOD"] },
      }),
      AT,
    ) as {
      process: {
        user: unknown;
        capabilities: Record<string, string[]>;
        rlimits: { type: string }[];
        noNewPrivileges: boolean;
      };
      root: unknown;
      mounts: { destination: string; options: string[] }[];
      linux: {
        cgroupsPath: string;
        namespaces: unknown[];
        resources: Record<string, unknown>;
        rootfsPropagation?: string;
      };
      annotations: Record<string, string>;
    };
    expect(c.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [2000] });
    expect(c.root).toEqual({ path: rootfs, readonly: true });
    expect(c.process.noNewPrivileges).toBe(true);
    const caps = c.process.capabilities;
    expect(caps.bounding).toContain("CAP_NET_ADMIN");
    expect(caps.bounding).not.toContain("CAP_MKNOD");
    expect(caps.bounding).toHaveLength(14);
    expect([caps.effective, caps.permitted, caps.inheritable, caps.ambient]).toEqual([
      caps.bounding,
      caps.bounding,
      undefined,
      undefined,
    ]);
    expect(c.process.rlimits.map((r) => r.type)).toEqual(["RLIMIT_NOFILE"]);
    // Not recursive unless the spec says so (the native path's bind), private as the native path's mounts.
    expect(c.mounts.slice(-2)).toMatchObject([
      { destination: "/srv", options: ["rbind", "rprivate", "rw"] },
      // and a read-only one names its source mount's nosuid/nodev/noexec (mount-flags.test.ts).
      { destination: "/etc/hosts", options: ["bind", "rprivate", "ro", ...sourceMountFlags("/etc/hosts")] },
    ]);
    expect(c.linux.rootfsPropagation).toBe("rprivate");
    expect(c.linux.cgroupsPath).toBe("/grove/web-1");
    expect(c.linux.namespaces).toEqual([
      { type: "pid" },
      { type: "ipc" },
      { type: "uts" },
      { type: "mount" },
      { type: "network", path: "/run/netns/inst" },
      { type: "cgroup" },
    ]);
    expect(c.linux.resources).toMatchObject({
      memory: { limit: 64 * 1024 * 1024 },
      cpu: { quota: 25_000, period: 100_000, shares: 256 },
      pids: { limit: 32 },
      devices: [{ allow: false, access: "rwm" }],
    });
    // grove-shim reaps the init itself: grove-runtime keeps no monitor of its own.
    expect(c.annotations["org.grove.runtime.reaper"]).toBe("caller");
  });

  it("reads the mount table once for all read-only volumes, and not at all without one", () => {
    let reads = 0;
    const table = (): string => {
      reads++;
      return fs.readFileSync("/proc/self/mountinfo", "utf8");
    };
    const ro = (source: string, destination: string) => ({ source, destination, readonly: true });
    const c = ociConfig(spec({ mounts: [ro("/etc/hosts", "/a"), ro("/etc", "/b"), ro("/tmp", "/c")] }), AT, table);
    expect(reads).toBe(1);
    const options = (c.mounts as { destination: string; options: string[] }[]).find((m) => m.destination === "/c");
    expect(options?.options).toEqual(["bind", "rprivate", "ro", ...sourceMountFlags("/tmp")]);
    reads = 0;
    ociConfig(spec({ mounts: [{ source: "/srv", destination: "/srv" }] }), AT, table);
    expect(reads).toBe(0);
  });

  it("resolves Grove's seccomp profile for the container's capabilities; none when unconfined", () => {
    const plain = allowed(ociSeccomp(["CAP_CHOWN"]));
    const admin = allowed(ociSeccomp(["CAP_SYS_ADMIN"]));
    expect(plain.has("read")).toBe(true);
    expect(plain.has("mount")).toBe(false);
    expect(admin.has("mount")).toBe(true);
    expect((ociConfig(spec({ seccomp: "unconfined" }), AT).linux as Record<string, unknown>).seccomp).toBeUndefined();
    const dflt = (ociConfig(spec(), AT).linux as Record<string, unknown>).seccomp as Record<string, unknown>;
    expect(dflt).toMatchObject({ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1 });
    // chroot comes with CAP_SYS_CHROOT, one of Docker's defaults.
    expect(allowed(dflt).has("chroot")).toBe(true);
  });
});

describe("runtime handlers", () => {
  it("picks the handler of spec.runtimeClass; none for native or unset; names an unknown class", () => {
    const handlers = { runc: "/usr/sbin/runc" };
    expect(shimHandler(handlers, spec(), "/run/grove/g/web-1", false)).toBeNull();
    expect(shimHandler(handlers, spec({ runtimeClass: "native" }), "/run/grove/g/web-1", false)).toBeNull();
    expect(shimHandler(handlers, spec({ runtimeClass: "runc" }), "/run/grove/g/web-1", false)).toEqual({
      runtime: "/usr/sbin/runc",
      bundle: "/run/grove/g/web-1/bundle",
      root: "/run/grove/g/web-1/runtime",
    });
    let err: unknown;
    try {
      shimHandler(handlers, spec({ runtimeClass: "gvisor" }), "/d", false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RuntimeError);
    expect(err).toMatchObject({
      code: "UNKNOWN_RUNTIME_CLASS",
      message: "runtimeClass gvisor has no handler here (known: native, runc)",
    });
    // Object.prototype's names are not handlers.
    expect(() => shimHandler(handlers, spec({ runtimeClass: "constructor" }), "/d", false)).toThrow(/no handler/);
    expect(() =>
      shimHandler(handlers, spec({ runtimeClass: "runc", userNamespace: { uidMap: [], gidMap: [] } }), "/d", false),
    ).toThrow(/userNamespace is only supported on the native path/);
  });

  it("parses --runtime-handler NAME=PATH, naming the flag in each refusal", () => {
    expect(parseRuntimeHandler("sh=/bin/sh")).toEqual(["sh", "/bin/sh"]);
    expect(() => parseRuntimeHandler("Bad_Name=/bin/sh")).toThrow(/--runtime-handler .*NAME=PATH/);
    expect(() => parseRuntimeHandler("runc")).toThrow(/--runtime-handler .*NAME=PATH/);
    expect(() => parseRuntimeHandler("native=/bin/sh")).toThrow(/cannot be remapped/);
    expect(() => parseRuntimeHandler("x=bin/sh")).toThrow(/not an absolute path/);
    expect(() => parseRuntimeHandler("x=/etc/passwd")).toThrow(
      /--runtime-handler x: \/etc\/passwd is not an executable file/,
    );
  });
});
