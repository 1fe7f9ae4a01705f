// Node facts the agent registers with: capacity, allocatable, kernel and
// addresses. Everything is read from the OS at call time; the readers take
// their sources as parameters so tests can feed them fixed values.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { clampResources, subtractResources } from "@grove/common";
import type { NodeInfo } from "@grove/proto";

export interface HostResources {
  /** CPU in millicores (1000 = one core). */
  cpuMillis: number;
  memoryBytes: number;
  /** Most processes and threads the node can hold. */
  pids: number;
}

/** What the node keeps back for the OS and the agent itself. */
export interface HostReserve {
  cpuMillis: number;
  memoryBytes: number;
  pids: number;
}

export const DEFAULT_RESERVE: Readonly<HostReserve> = Object.freeze({
  cpuMillis: 100,
  memoryBytes: 256 * 1024 * 1024,
  pids: 0,
});

export interface HostFacts {
  capacity: HostResources;
  /** capacity minus the reserve, never below zero. */
  allocatable: HostResources;
  /** os.platform(), e.g. "linux". */
  os: string;
  /** os.release(), e.g. "6.1.0-18-amd64". */
  kernel: string;
  addresses: string[];
}

export interface ReadHostFactsOptions {
  reserve?: Partial<HostReserve>;
  /** When non-empty, these addresses replace the discovered ones. */
  addresses?: readonly string[];
  /** Where sysctls are read from; "/proc/sys" unless a test says otherwise. */
  procSysDir?: string;
  networkInterfaces?: NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

/** Reads capacity, allocatable, kernel and addresses of this node. */
export function readHostFacts(options: ReadHostFactsOptions = {}): HostFacts {
  const capacity: HostResources = {
    cpuMillis: os.availableParallelism() * 1000,
    memoryBytes: os.totalmem(),
    pids: readPidsLimit(options.procSysDir),
  };
  const reserve: HostReserve = { ...DEFAULT_RESERVE, ...options.reserve };
  const override = options.addresses ?? [];
  return {
    capacity,
    allocatable: allocatableOf(capacity, reserve),
    os: os.platform(),
    kernel: os.release(),
    addresses: override.length > 0 ? [...override] : discoverAddresses(options.networkInterfaces),
  };
}

export function allocatableOf(capacity: HostResources, reserve: HostReserve): HostResources {
  // A reserve larger than the machine leaves nothing, not a negative amount.
  const { cpuMillis, memoryBytes, pids } = clampResources(subtractResources(capacity, reserve));
  return { cpuMillis, memoryBytes, pids };
}

/**
 * The node-wide task limit: the smaller of kernel.pid_max and
 * kernel.threads-max (a thread takes a PID too, so both bound it). 0 when
 * neither can be read, which the control plane treats as unknown.
 */
export function readPidsLimit(procSysDir = "/proc/sys"): number {
  const limits = ["pid_max", "threads-max"]
    .map((name) => readPositiveInt(path.join(procSysDir, "kernel", name)))
    .filter((n): n is number => n !== undefined);
  return limits.length > 0 ? Math.min(...limits) : 0;
}

/** Interfaces the agent makes itself (the instances' CNI bridge): never node addresses. */
const OWN_INTERFACES = new Set(["grove0"]);

/** Non-internal IPv4 addresses, in interface order, without duplicates. */
export function discoverAddresses(
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces(),
): string[] {
  const found: string[] = [];
  for (const [name, infos] of Object.entries(interfaces)) {
    if (OWN_INTERFACES.has(name)) continue;
    for (const info of infos ?? []) {
      if (info.family === "IPv4" && !info.internal && !found.includes(info.address)) {
        found.push(info.address);
      }
    }
  }
  return found;
}

export interface NodeIdentity {
  name: string;
  labels: Record<string, string>;
  cgroupMode: string;
  agentVersion: string;
}

/** The Register.node message for these facts. */
export function toNodeInfo(facts: HostFacts, identity: NodeIdentity): NodeInfo {
  return {
    name: identity.name,
    capacity: { ...facts.capacity },
    allocatable: { ...facts.allocatable },
    labels: { ...identity.labels },
    addresses: [...facts.addresses],
    agentVersion: identity.agentVersion,
    os: facts.os,
    kernel: facts.kernel,
    cgroupMode: identity.cgroupMode,
  };
}

/** The version in @grove/agent's package.json (one level above src/ and dist/). */
export function agentVersion(): string {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
    if (typeof pkg === "object" && pkg !== null && "version" in pkg && typeof pkg.version === "string") {
      return pkg.version;
    }
  } catch {
    // fall through: a missing package.json only costs the version string
  }
  return "unknown";
}

function readPositiveInt(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, "utf8").trim(), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
