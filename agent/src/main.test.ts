import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CommanderError } from "commander";
import { parseArgs } from "./main";
import { WELL_KNOWN_RESERVED_PORTS } from "./network";

const argv = (...args: string[]) => ["node", "grove-agent", ...args];

function parse(args: string[], env: NodeJS.ProcessEnv = {}) {
  const errors: string[] = [];
  try {
    return {
      config: parseArgs(argv(...args), { env, writeErr: (s) => errors.push(s), writeOut: () => undefined }),
      errors,
    };
  } catch (error) {
    if (error instanceof CommanderError) return { error, errors };
    throw error;
  }
}

describe("parseArgs", () => {
  it("fills in the documented defaults", () => {
    const { config } = parse(["--server", "cp.example:7443", "--token", "t0k"]);
    expect(config).toEqual({
      server: "cp.example:7443",
      token: "t0k",
      nodeName: os.hostname(),
      stateDir: "/var/lib/grove-agent",
      rootfsDir: "/var/lib/grove/rootfs",
      labels: {},
      addresses: [],
      cgroupParent: "grove",
      logLevel: "info",
      imagesDir: "/var/lib/grove-agent/images",
      ociDir: "/var/lib/grove/oci",
      imageLimits: {
        maxLayerBytes: 10 * 1024 ** 3,
        maxUncompressedBytes: 50 * 1024 ** 3,
        maxRatio: 100,
        maxEntries: 1_000_000,
        diskReserveBytes: 1024 ** 3,
      },
      network: "cni",
      cniPluginDirs: ["/usr/lib/cni", "/opt/cni/bin"],
      usernsRange: { base: 100_000_000, size: 65536, count: 1000 },
      hostPorts: {
        allowed: [{ first: 10000, last: 32767 }],
        allowPrivileged: false,
        reserved: new Map([...WELL_KNOWN_RESERVED_PORTS, [7443, "the control plane port this agent dials"]]),
      },
      nodePortsAllowed: [],
    });
  });

  it("takes the host port policy and the node ports instances may reach, naming a bad flag", () => {
    const { config } = parse([
      "--server",
      "cp:17481",
      "--token",
      "t",
      "--allowed-host-ports",
      "20000-20999,31000",
      "--allow-privileged-host-ports",
      "--reserved-host-ports",
      "20080",
      "--node-ports-allowed",
      "udp/53,tcp/53,tcp/8000-8100",
    ]);
    expect(config?.hostPorts.allowed).toEqual([
      { first: 20000, last: 20999 },
      { first: 31000, last: 31000 },
    ]);
    expect(config?.hostPorts.allowPrivileged).toBe(true);
    expect(config?.hostPorts.reserved.get(17481)).toBe("the control plane port this agent dials");
    expect(config?.hostPorts.reserved.get(20080)).toBe("reserved by the operator");
    expect(config?.hostPorts.reserved.get(7480)).toBe("grove-server's HTTP API");
    expect(config?.nodePortsAllowed).toEqual([
      { protocol: "udp", first: 53, last: 53 },
      { protocol: "tcp", first: 53, last: 53 },
      { protocol: "tcp", first: 8000, last: 8100 },
    ]);
    for (const [flag, value, message] of [
      ["--allowed-host-ports", "30000-20000", /--allowed-host-ports: "30000-20000" is not/],
      ["--reserved-host-ports", "22,ssh", /--reserved-host-ports: "ssh" is not a port/],
      ["--node-ports-allowed", "dns/53", /--node-ports-allowed: "dns\/53" is not tcp\/PORT/],
    ] as const) {
      const bad = parse(["--server", "cp:1", "--token", "t", flag, value]);
      expect(bad.error).toBeInstanceOf(CommanderError);
      expect(bad.errors.join("")).toMatch(message);
    }
  });

  it("takes --userns-range BASE:SIZExCOUNT and refuses a malformed or overflowing one", () => {
    const { config } = parse(["--server", "cp:1", "--token", "t", "--userns-range", "200000:1000x5"]);
    expect(config?.usernsRange).toEqual({ base: 200_000, size: 1000, count: 5 });
    const bad = parse(["--server", "cp:1", "--token", "t", "--userns-range", "200000"]);
    expect(bad.error).toBeInstanceOf(CommanderError);
    expect(bad.errors.join("")).toMatch(/--userns-range "200000" must be BASE:SIZExCOUNT/);
    const past = parse(["--server", "cp:1", "--token", "t", "--userns-range", "4294000000:65536x100"]);
    expect(past.errors.join("")).toMatch(/run past the last id/);
  });

  it("takes repeatable --runtime-handler NAME=PATH and refuses a bad one naming the flag", () => {
    const { config } = parse([
      "--server",
      "cp:1",
      "--token",
      "t",
      "--runtime-handler",
      "sh=/bin/sh",
      "--runtime-handler",
      "runsc=/bin/true",
    ]);
    expect(config?.runtimeHandlers).toEqual({ sh: "/bin/sh", runsc: "/bin/true" });
    const bad = parse(["--server", "cp:1", "--token", "t", "--runtime-handler", "x=/etc/passwd"]);
    expect(bad.error).toBeInstanceOf(CommanderError);
    expect(bad.errors.join("")).toMatch(/--runtime-handler x: \/etc\/passwd is not an executable file/);
  });

  it("takes the network mode, a conflist and plugin directories, and refuses an unknown mode", () => {
    const { config } = parse([
      "--server",
      "cp:1",
      "--token",
      "t",
      "--network",
      "none",
      "--cni-conflist",
      "/etc/grove/net.conflist",
      "--cni-plugin-dir",
      "/a:/b",
    ]);
    expect(config).toMatchObject({
      network: "none",
      cniConflist: "/etc/grove/net.conflist",
      cniPluginDirs: ["/a", "/b"],
    });
    const bad = parse(["--server", "cp:1", "--token", "t", "--network", "flannel"]);
    expect(bad.error).toBeInstanceOf(CommanderError);
    expect(bad.errors.join("")).toMatch(/--network.*expected cni or none/);
  });

  it("takes the image limits and --oci-dir, and refuses a malformed size naming the flag", () => {
    const { config } = parse([
      "--server",
      "cp:1",
      "--token",
      "t",
      "--oci-dir",
      "rel/oci",
      "--image-max-layer-size",
      "512M",
      "--image-max-uncompressed-size",
      "2G",
      "--image-max-ratio",
      "20",
      "--image-max-entries",
      "5000",
      "--image-disk-reserve",
      "0",
    ]);
    expect(config).toMatchObject({
      ociDir: path.resolve("rel/oci"),
      imageLimits: {
        maxLayerBytes: 512 * 1024 ** 2,
        maxUncompressedBytes: 2 * 1024 ** 3,
        maxRatio: 20,
        maxEntries: 5000,
        diskReserveBytes: 0,
      },
    });
    const bad = parse(["--server", "cp:1", "--token", "t", "--image-max-layer-size", "lots"]);
    expect(bad.error).toBeInstanceOf(CommanderError);
    expect(bad.errors.join("")).toMatch(/--image-max-layer-size.*expected a size such as 4096, 512M, 10G or 1T/);
    const zero = parse(["--server", "cp:1", "--token", "t", "--image-max-entries", "0"]);
    expect(zero.errors.join("")).toMatch(/--image-max-entries.*expected a positive integer/);
  });

  it("takes several control-plane addresses, comma-separated or repeated", () => {
    const { config } = parse(["--server", "a:7481,b:7481", "--server", "c:7491", "--server", "a:7481", "--token", "t"]);
    expect(config?.server).toBe("a:7481,b:7481,c:7491");
    // Every replica's port is the control plane's, not an instance's to publish.
    expect(config?.hostPorts.reserved.has(7491)).toBe(true);
    expect(parse(["--token", "t"], { GROVE_AGENT_SERVER: "a:1,b:2" }).config?.server).toBe("a:1,b:2");
    expect(parse(["--server", "a:1,b", "--token", "t"]).errors.join("")).toMatch(/expected HOST:PORT/);
    expect(parse(["--server", ",", "--token", "t"]).errors.join("")).toMatch(/expected HOST:PORT/);
  });

  it("takes the server and token from the environment", () => {
    const { config } = parse([], { GROVE_AGENT_SERVER: "10.0.0.1:7443", GROVE_AGENT_TOKEN: "from-env" });
    expect(config).toMatchObject({ server: "10.0.0.1:7443", token: "from-env" });
  });

  it("reads and trims --token-file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-main-"));
    try {
      fs.writeFileSync(path.join(dir, "token"), "file-token\n");
      const { config } = parse(["--server", "[::1]:7443", "--token-file", path.join(dir, "token")], {
        GROVE_AGENT_TOKEN: "ignored",
      });
      expect(config).toMatchObject({ server: "[::1]:7443", token: "file-token" });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("collects repeatable labels and addresses and resolves directories", () => {
    const { config } = parse([
      "--server=cp:1",
      "--token=t",
      "--label",
      "zone=eu-1a",
      "--label",
      "disk=ssd",
      "--label",
      "empty=",
      "--address",
      "10.0.0.5",
      "--address",
      "fd00::5",
      "--node-name",
      "n7",
      "--state-dir",
      "relative/state",
      "--cgroup-parent",
      "grove-test",
      "--log-level",
      "debug",
    ]);
    expect(config).toMatchObject({
      labels: { zone: "eu-1a", disk: "ssd", empty: "" },
      addresses: ["10.0.0.5", "fd00::5"],
      nodeName: "n7",
      stateDir: path.resolve("relative/state"),
      cgroupParent: "grove-test",
      logLevel: "debug",
    });
  });

  const usageErrors: Array<[string[], RegExp, NodeJS.ProcessEnv?]> = [
    [["--token", "t"], /--server <host:port> is required/],
    // The shared agent token is gone: a first start joins with a single-use token and the CA pin.
    [["--server", "https://cp:7443", "--join", "abc.def"], /--join needs --ca-hash/],
    [["--server", "cp", "--token", "t"], /expected HOST:PORT/],
    [["--token", "t"], /not HOST:PORT/, { GROVE_AGENT_SERVER: "no-port" }],
    [["--server", "cp:1", "--token", "t", "--token-file", "/x"], /not both/],
    [["--server", "cp:1", "--token-file", "/nonexistent/grove-token"], /cannot read --token-file/],
    [["--server", "cp:1", "--token", "t", "--label", "=v"], /expected key=value/],
    [["--server", "cp:1", "--token", "t", "--address", "eth0"], /expected an IP address/],
    [["--server", "cp:1", "--token", "t", "--log-level", "loud"], /expected one of/],
  ];
  it.each(usageErrors)("rejects %j", (args, message, env = {}) => {
    const { error, errors } = parse(args, env);
    expect(error).toBeInstanceOf(CommanderError);
    expect(errors.join("")).toMatch(message);
  });
});
