// The pure part of exec: option checks and the helper's configuration.
import { encodeConfig, execConfig, validateExecOptions, type ExecTarget } from "./exec";
import type { ContainerSpec } from "./types";

const spec: ContainerSpec = {
  id: "web-1",
  rootfs: "/var/lib/grove/rootfs/web-1",
  command: ["/bin/server"],
  env: { PATH: "/bin", FOO: "container", KEEP: "kept" },
  workingDir: "/srv",
  hostname: "web-1",
  resources: { cpuMillis: 500, memoryBytes: 1 << 26, pids: 64 },
  logPath: "/tmp/web-1.log",
};

const target: ExecTarget = {
  id: "web-1",
  pid: 4242,
  cgroupMode: "v1",
  cgroupRoot: "/sys/fs/cgroup",
  cgroupParent: "grove",
  spec,
  // The typed process settings: start-only keys (readonly_rootfs, uid_map, ...) cannot be given.
  security: {
    caps: "2818844155",
    seccomp: "default",
    uid: 1000,
    gid: 1000,
    groups: [2000],
    rlimits: [{ resource: 7, soft: 123, hard: 456 }],
  },
};

describe("validateExecOptions", () => {
  it("accepts a plain command and a full set of options", () => {
    expect(() => validateExecOptions({ command: ["sh"] })).not.toThrow();
    expect(() =>
      validateExecOptions({
        command: ["sh", "-c", "x"],
        env: { A: "b" },
        workingDir: "/",
        user: "app:app",
        tty: true,
        cols: 1,
        rows: 65535,
      }),
    ).not.toThrow();
  });

  it.each([
    [{ command: [] }, "exec command must be a non-empty array"],
    [{ command: [""] }, "exec command[0] must not be empty"],
    [{ command: ["a\0b"] }, "exec command[0] contains a NUL byte"],
    [{ command: ["sh"], env: { "A=B": "x" } }, 'exec env key "A=B" must be non-empty without "=" or NUL'],
    [{ command: ["sh"], env: { A: 1 } }, "exec env A must be a string"],
    [{ command: ["sh"], workingDir: "tmp" }, 'exec workingDir "tmp" must be an absolute path'],
    [{ command: ["sh"], user: "" }, 'exec user "" must be a non-empty string'],
    [{ command: ["sh"], tty: "yes" }, "exec tty must be a boolean"],
    [{ command: ["sh"], cols: 0 }, "exec cols must be an integer from 1 to 65535, got 0"],
    [{ command: ["sh"], rows: 1.5 }, "exec rows must be an integer from 1 to 65535, got 1.5"],
  ])("refuses %j", (opts, message) => {
    expect(() => validateExecOptions(opts as never)).toThrow(message);
  });
});

describe("execConfig", () => {
  it("takes the container's env, working dir and security, without the start-only keys", () => {
    const pairs = execConfig(target, { command: ["id", "-u"] });
    expect(pairs).toEqual([
      ["id", "web-1"],
      ["pid", "4242"],
      ["cgroup_mode", "v1"],
      ["cgroup_root", "/sys/fs/cgroup"],
      ["cgroup_parent", "grove"],
      ["cwd", "/srv"],
      ["tty", "0"],
      ["cols", "80"],
      ["rows", "24"],
      ["caps", "2818844155"],
      ["seccomp", "default"],
      ["uid", "1000"],
      ["gid", "1000"],
      ["group", "2000"],
      ["rlimit", "7:123:456"],
      ["arg", "id"],
      ["arg", "-u"],
      ["env", "PATH=/bin"],
      ["env", "FOO=container"],
      ["env", "KEEP=kept"],
    ]);
  });

  it("lets the options override env, working dir and the terminal", () => {
    const pairs = execConfig(target, {
      command: ["sh"],
      env: { FOO: "exec", NEW: "1" },
      workingDir: "/tmp",
      tty: true,
      cols: 132,
      rows: 43,
    });
    const get = (k: string): string[] => pairs.filter((p) => p[0] === k).map((p) => p[1]);
    expect(get("cwd")).toEqual(["/tmp"]);
    expect(get("tty")).toEqual(["1"]);
    expect(get("cols")).toEqual(["132"]);
    expect(get("rows")).toEqual(["43"]);
    expect(get("env")).toEqual(["PATH=/bin", "FOO=exec", "KEEP=kept", "NEW=1"]);
    expect(execConfig({ ...target, spec: { ...spec, workingDir: undefined } }, { command: ["sh"] })).toContainEqual([
      "cwd",
      "/",
    ]);
  });

  it("encodes NUL-terminated keys and values", () => {
    expect(
      encodeConfig([
        ["arg", "a b"],
        ["env", "X="],
      ]).toString(),
    ).toBe("arg\0a b\0env\0X=\0");
  });
});
