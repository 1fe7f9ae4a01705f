// The TypeScript side of the runtime boundary against the C side: the key
// names of WIRE_KEYS are exactly the GROVE_KEY_* of shim_protocol.h, and the
// encoders write every field of their configuration.
import * as fs from "node:fs";
import * as path from "node:path";

import { encodeExecConfig, encodeShimConfig, requestLine, WIRE_KEYS, type ShimConfig } from "./shim-protocol";

const HEADER = path.resolve(__dirname, "../../native/src/shim_protocol.h");

function headerKeys(): Map<string, string> {
  const text = fs.readFileSync(HEADER, "utf8");
  return new Map([...text.matchAll(/^#define GROVE_KEY_(\w+) "([^"]+)"/gm)].map((m) => [m[1]!, m[2]!]));
}

const config: ShimConfig = {
  id: "web-1",
  rootfs: "/r",
  cwd: "/srv",
  hostname: "web-1",
  logPath: "/l",
  logMaxBytes: 1024,
  dir: "/run/grove/web-1",
  cgroup: { mode: "v2", root: "/sys/fs/cgroup", parent: "grove" },
  netnsPath: "/run/netns/n",
  mounts: [{ source: "/a", destination: "/b", readonly: true, recursive: true }],
  readonlyRootfs: true,
  hostCgroupNamespace: true,
  userNamespace: {
    uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }],
    gidMap: [{ containerId: 0, hostId: 100000, size: 65536 }],
    idmapRootfs: true,
  },
  hold: true,
  handler: { runtime: "/usr/sbin/runc", bundle: "/run/grove/web-1/bundle", root: "/run/grove/web-1/runtime" },
  process: {
    caps: "1234",
    seccomp: "unconfined",
    uid: 1,
    gid: 2,
    groups: [3, 4],
    rlimits: [{ resource: 7, soft: 10, hard: 20 }],
    args: ["sh", "-c"],
    env: ["A=1"],
  },
};

describe("the shim protocol", () => {
  it("names the same keys as agent/native/src/shim_protocol.h", () => {
    const c = headerKeys();
    // Each C constant is its key upper-cased (GROVE_KEY_LOG_MAX "log_max").
    for (const [name, key] of c) expect([name, key.toUpperCase()]).toEqual([name, name]);
    expect([...c.values()].sort()).toEqual([...new Set(Object.values(WIRE_KEYS))].sort());
  });

  it("encodes every field of a shim configuration, a mount as its three keys in order", () => {
    const pairs = encodeShimConfig(config);
    const keys = new Set(pairs.map(([k]) => k));
    const execOnly: string[] = [WIRE_KEYS.pid, WIRE_KEYS.tty, WIRE_KEYS.cols, WIRE_KEYS.rows];
    // Written by the static grove-runtime (oci.c) only.
    execOnly.push(WIRE_KEYS.oomScoreAdj, WIRE_KEYS.umask, WIRE_KEYS.noNewPrivs, WIRE_KEYS.sysctl);
    execOnly.push(
      WIRE_KEYS.mountType,
      WIRE_KEYS.mountData,
      WIRE_KEYS.mountOwn,
      WIRE_KEYS.mountField,
      WIRE_KEYS.hooks,
      WIRE_KEYS.device,
      WIRE_KEYS.cgroupName,
    );
    execOnly.push(WIRE_KEYS.maskedPath, WIRE_KEYS.readonlyPath, WIRE_KEYS.utsNs, WIRE_KEYS.ipcNs);
    execOnly.push(WIRE_KEYS.mountPropagation, WIRE_KEYS.rootfsPropagation);
    execOnly.push(WIRE_KEYS.pidNs, WIRE_KEYS.mntNs, WIRE_KEYS.cgroupNs);
    execOnly.push(WIRE_KEYS.userNs, WIRE_KEYS.timeNs, WIRE_KEYS.timeOffset, WIRE_KEYS.seccompFlags);
    execOnly.push(WIRE_KEYS.procAttr, WIRE_KEYS.cgroupV1Join, WIRE_KEYS.cgroupPrefix, WIRE_KEYS.consoleSocket);
    expect([...keys].sort()).toEqual(
      Object.values(WIRE_KEYS)
        .filter((k) => !execOnly.includes(k as never))
        .sort(),
    );
    const m = pairs.findIndex(([k]) => k === "mount_src");
    expect(pairs.slice(m, m + 3)).toEqual([
      ["mount_src", "/a"],
      ["mount_dst", "/b"],
      ["mount_ro", "1"],
    ]);
    expect(pairs[m + 3]).toEqual(["mount_flags", "16384"]); // a recursive bind: MS_REC
    expect(pairs).toContainEqual(["cgroupns", "host"]);
    expect(pairs).toContainEqual(["rlimit", "7:10:20"]);
    expect(pairs).toContainEqual(["uid_map", "0:100000:65536"]);
  });

  it("leaves out unset optional fields and false flags", () => {
    const pairs = encodeShimConfig({
      ...config,
      netnsPath: null,
      userNamespace: null,
      mounts: [],
      hold: false,
      readonlyRootfs: false,
      hostCgroupNamespace: false,
    });
    const keys = pairs.map(([k]) => k);
    for (const k of [
      "netns",
      "uid_map",
      "gid_map",
      "userns_idmap",
      "mount_src",
      "hold",
      "readonly_rootfs",
      "cgroupns",
    ]) {
      expect(keys).not.toContain(k);
    }
  });

  it("encodes an exec configuration with the same process keys", () => {
    const pairs = encodeExecConfig({
      id: "web-1",
      pid: 42,
      cgroup: config.cgroup,
      cwd: "/",
      tty: false,
      cols: 80,
      rows: 24,
      process: config.process,
    });
    const shimProcess = encodeShimConfig(config).filter(([k]) =>
      ["caps", "seccomp", "uid", "gid", "group", "rlimit", "arg", "env"].includes(k),
    );
    expect(pairs.slice(-shimProcess.length)).toEqual(shimProcess);
    expect(pairs.slice(0, 2)).toEqual([
      ["id", "web-1"],
      ["pid", "42"],
    ]);
    expect(pairs).toContainEqual(["tty", "0"]);
  });

  it("writes request lines", () => {
    expect(requestLine({ op: "signal", signal: 15 })).toBe("signal 15");
    expect(requestLine({ op: "wait" })).toBe("wait");
  });
});
