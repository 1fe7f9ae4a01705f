import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  DEFAULT_RESERVE,
  agentVersion,
  allocatableOf,
  discoverAddresses,
  readHostFacts,
  readPidsLimit,
  toNodeInfo,
} from "./host";

function procSys(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-procsys-"));
  fs.mkdirSync(path.join(dir, "kernel"));
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, "kernel", name), content);
  return dir;
}

const iface = (address: string, family: "IPv4" | "IPv6", internal: boolean): os.NetworkInterfaceInfo =>
  ({
    address,
    family,
    internal,
    netmask: "",
    mac: "00:00:00:00:00:00",
    cidr: null,
    ...(family === "IPv6" ? { scopeid: 0 } : {}),
  }) as os.NetworkInterfaceInfo;

describe("host facts", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it("takes the smaller of pid_max and threads-max as the pids capacity", () => {
    dirs.push(procSys({ pid_max: "4194304\n", "threads-max": "126000\n" }));
    expect(readPidsLimit(dirs.at(-1))).toBe(126000);
    dirs.push(procSys({ pid_max: "32768\n" }));
    expect(readPidsLimit(dirs.at(-1))).toBe(32768);
    dirs.push(procSys({ pid_max: "garbage" }));
    expect(readPidsLimit(dirs.at(-1))).toBe(0);
  });

  it("lists non-internal IPv4 addresses once each", () => {
    expect(
      discoverAddresses({
        lo: [iface("127.0.0.1", "IPv4", true), iface("::1", "IPv6", true)],
        eth0: [iface("10.0.0.5", "IPv4", false), iface("fe80::1", "IPv6", false)],
        eth1: [iface("192.168.1.7", "IPv4", false), iface("10.0.0.5", "IPv4", false)],
        grove0: [iface("10.244.0.1", "IPv4", false)], // the instances' bridge is not a node address
      }),
    ).toEqual(["10.0.0.5", "192.168.1.7"]);
  });

  it("subtracts the reserve and never goes below zero", () => {
    expect(
      allocatableOf({ cpuMillis: 4000, memoryBytes: 8 * 2 ** 30, pids: 1000 }, { ...DEFAULT_RESERVE, pids: 100 }),
    ).toEqual({
      cpuMillis: 3900,
      memoryBytes: 8 * 2 ** 30 - 256 * 1024 * 1024,
      pids: 900,
    });
    expect(allocatableOf({ cpuMillis: 50, memoryBytes: 1, pids: 0 }, DEFAULT_RESERVE)).toEqual({
      cpuMillis: 0,
      memoryBytes: 0,
      pids: 0,
    });
  });

  it("reads capacity from the OS and lets addresses and the reserve be overridden", () => {
    dirs.push(procSys({ pid_max: "5000", "threads-max": "9000" }));
    const facts = readHostFacts({
      procSysDir: dirs.at(-1),
      reserve: { cpuMillis: 500 },
      addresses: ["203.0.113.9"],
      networkInterfaces: { eth0: [iface("10.0.0.5", "IPv4", false)] },
    });
    expect(facts.capacity).toEqual({
      cpuMillis: os.availableParallelism() * 1000,
      memoryBytes: os.totalmem(),
      pids: 5000,
    });
    expect(facts.allocatable).toEqual({
      cpuMillis: Math.max(0, os.availableParallelism() * 1000 - 500),
      memoryBytes: os.totalmem() - DEFAULT_RESERVE.memoryBytes,
      pids: 5000,
    });
    expect(facts.addresses).toEqual(["203.0.113.9"]);
    expect(facts.kernel).toBe(os.release());

    const discovered = readHostFacts({
      procSysDir: dirs.at(-1),
      networkInterfaces: { eth0: [iface("10.0.0.5", "IPv4", false)] },
    });
    expect(discovered.addresses).toEqual(["10.0.0.5"]);
  });

  it("builds the Register node message", () => {
    const facts = readHostFacts({ addresses: ["10.0.0.5"] });
    const info = toNodeInfo(facts, { name: "n1", labels: { zone: "a" }, cgroupMode: "v2", agentVersion: "0.1.0" });
    expect(info).toEqual({
      name: "n1",
      capacity: facts.capacity,
      allocatable: facts.allocatable,
      labels: { zone: "a" },
      addresses: ["10.0.0.5"],
      agentVersion: "0.1.0",
      os: "linux",
      kernel: os.release(),
      cgroupMode: "v2",
    });
  });

  it("knows the agent's version", () => {
    expect(agentVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
