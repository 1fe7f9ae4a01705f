// grove-agent's command line: parseArgs turns argv into an AgentConfig (or a
// usage error naming the flag); main.ts runs the agent with it.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { agentVersion } from "./host";
import {
  addImageLimitOptions,
  DEFAULT_OCI_DIR,
  imageLimitsFrom,
  type ImageLimitFlags,
  type ImageLimits,
} from "./images/limits";
import {
  DEFAULT_ALLOWED_HOST_PORTS,
  DEFAULT_PLUGIN_DIRS,
  agentHostPortPolicy,
  parseNodePorts,
  parsePortList,
  parsePortRanges,
  type AgentHostPortPolicy,
  type NodePortRule,
} from "./network";
import { DEFAULT_USERNS_RANGE, parseUsernsRange, type UsernsPoolOptions } from "./reconcile/userns-pool";
import { parseRuntimeHandler } from "./runtime/runtime-handlers";

export interface AgentConfig {
  /** The image store (default <stateDir>/images). */
  imagesDir: string;
  /** JSON file with registry settings and pull secrets (agent/src/images/config.ts). */
  imageConfig?: string;
  /** The only directory oci: image references may name. */
  ociDir: string;
  /** Layer size, ratio, entry and disk-reserve limits of image pulls (agent/src/images/limits.ts). */
  imageLimits: ImageLimits;
  /**
   * host:port of the control plane's gRPC listener, or several (one per
   * grove-server replica) comma-separated: the agent moves to the next when
   * its replica goes away (serverAddresses()). For the first start it may be
   * https://HOST:PORT of grove-server's API, to join through.
   */
  server: string;
  /** Unused since agents authenticate with node certificates; accepted so old command lines still parse. */
  token?: string;
  /** A single-use join token (grove token create) and the CA pin, for the first start. */
  join?: string;
  caHash?: string;
  nodeName: string;
  stateDir: string;
  rootfsDir: string;
  labels: Record<string, string>;
  /** Replace the discovered node addresses when non-empty. */
  addresses: string[];
  cgroupParent: string;
  logLevel: string;
  /** Stop every container on SIGTERM/SIGINT (the old behaviour); by default they outlive the agent. */
  stopContainersOnExit?: boolean;
  /** "cni": every instance gets an IP on the node's subnet; "none": an empty network namespace. */
  network: "cni" | "none";
  cniConflist?: string;
  cniPluginDirs: string[];
  /** Host id pool for instances with security.userNamespace: true ("BASE:SIZExCOUNT"). */
  usernsRange: UsernsPoolOptions;
  /** Which host ports this node publishes. */
  hostPorts: AgentHostPortPolicy;
  /** What instances may open on the node's own addresses. */
  nodePortsAllowed: NodePortRule[];
  /** Accept the next desired set even when it comes from another cluster (once; see DesiredStateGuard). */
  joinNewCluster?: boolean;
  /**
   * runtimeClass name -> OCI runtime executable (--runtime-handler NAME=PATH),
   * on top of the ones found on the host (defaultRuntimeHandlers).
   */
  runtimeHandlers?: Record<string, string>;
}

/** How long shutdown waits for containers to stop before giving up on them. */
export const SHUTDOWN_TIMEOUT_MS = 90_000;

/**
 * How long a shutdown that keeps containers waits for the syncs already
 * running (a stop and its releases, a start) before exiting anyway.
 */
export const DRAIN_TIMEOUT_MS = 15_000;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export interface ParseArgsOptions {
  env?: NodeJS.ProcessEnv;
  /** Where usage errors and help go (stderr/stdout by default). */
  writeOut?: (text: string) => void;
  writeErr?: (text: string) => void;
}

/**
 * Parses grove-agent's command line (argv as in process.argv). Throws a
 * CommanderError on a usage error or --help/--version.
 */
export function parseArgs(argv: readonly string[], options: ParseArgsOptions = {}): AgentConfig {
  const env = options.env ?? process.env;
  const program: Command = new Command("grove-agent")
    .description("Grove node agent: runs the instances the control plane places on this node")
    .version(agentVersion())
    .exitOverride()
    .configureOutput({
      writeOut: options.writeOut ?? ((s) => process.stdout.write(s)),
      writeErr: options.writeErr ?? ((s) => process.stderr.write(s)),
    })
    .option(
      "--server <host:port,...>",
      "control plane gRPC address; several replicas comma-separated or the flag repeated; https://HOST:PORT of the API to join through (env GROVE_AGENT_SERVER)",
      collectServers,
      [] as string[],
    )
    .option("--join <token>", "single-use join token for the first start (grove token create; env GROVE_AGENT_JOIN)")
    .option("--ca-hash <sha256:hex>", "the cluster CA's public key hash, printed by grove token create")
    .option("--token <token>", "ignored: agents authenticate with their node certificate (env GROVE_AGENT_TOKEN)")
    .option("--token-file <path>", "file holding the join token")
    .option("--node-name <name>", "name this node registers under", os.hostname())
    .option("--state-dir <dir>", "agent state: container logs and runtime state", "/var/lib/grove-agent")
    .option("--rootfs-dir <dir>", "directory holding the root filesystems instances name", "/var/lib/grove/rootfs")
    .option("--label <key=value>", "node label (repeatable)", collectLabel, {} as Record<string, string>)
    .option(
      "--address <ip>",
      "node address to advertise instead of the discovered ones (repeatable)",
      collectAddress,
      [] as string[],
    )
    .option("--cgroup-parent <name>", "parent cgroup of every container", "grove")
    .option(
      "--runtime-handler <name=path>",
      "an OCI runtime Apps may name in spec.runtimeClass (repeatable), e.g. runsc=/usr/local/bin/runsc; " +
        "runc, crun and grove-runtime are found by themselves (docs/runtime.md)",
      collectRuntimeHandler,
      {} as Record<string, string>,
    )
    .option(
      "--stop-containers-on-exit",
      "stop every container when the agent is asked to exit (default: they keep running and are adopted on the next start)",
    )
    .option(
      "--join-new-cluster",
      "accept the next desired set even from another cluster than the one this node applied sets of " +
        "(its store was replaced on purpose); by default such sets are refused and containers keep running",
    )
    .option("--log-level <level>", `one of ${LOG_LEVELS.join(", ")}`, parseLogLevel, "info")
    .option("--images-dir <dir>", "the image store (default <state-dir>/images)")
    .option("--image-config <file>", "registry settings (mirrors, insecure, auth) and pull secrets, JSON")
    .option(
      "--network <mode>",
      "instance networking: cni (own IP, ports, egress rules) or none",
      parseNetworkMode,
      "cni",
    )
    .option("--cni-conflist <file>", "CNI network list (cniVersion 1.0.0) instead of the default one")
    .option("--cni-plugin-dir <dir>", "CNI plugin directories, ':'-separated", DEFAULT_PLUGIN_DIRS.join(":"))
    .option(
      "--userns-range <BASE:SIZExCOUNT>",
      "host uid/gid pool for instances with security.userNamespace: true (COUNT ranges of SIZE ids from BASE)",
      DEFAULT_USERNS_RANGE,
    )
    .option(
      "--allowed-host-ports <ranges>",
      "host ports (1024 and up) instances may publish here, e.g. 10000-32767,40000",
      DEFAULT_ALLOWED_HOST_PORTS,
    )
    .option("--allow-privileged-host-ports", "let instances publish host ports below 1024 (not reserved ones)")
    .option(
      "--reserved-host-ports <ports>",
      "more ports no instance may publish here (comma-separated), beyond Grove's, etcd's, sshd's and the control plane's",
      "",
    )
    .option(
      "--node-ports-allowed <rules>",
      "what instances may open on this node's own addresses, e.g. udp/53,tcp/53 (default: nothing)",
      "",
    );
  addImageLimitOptions(program);
  program.parse([...argv]);

  const opts = program.opts<
    ImageLimitFlags & {
      imagesDir?: string;
      imageConfig?: string;
      server: string[];
      token?: string;
      tokenFile?: string;
      join?: string;
      caHash?: string;
      nodeName: string;
      stateDir: string;
      rootfsDir: string;
      label: Record<string, string>;
      address: string[];
      cgroupParent: string;
      runtimeHandler: Record<string, string>;
      logLevel: string;
      stopContainersOnExit?: boolean;
      joinNewCluster?: boolean;
      network: "cni" | "none";
      cniConflist?: string;
      cniPluginDir: string;
      usernsRange: string;
      allowedHostPorts: string;
      allowPrivilegedHostPorts?: boolean;
      reservedHostPorts: string;
      nodePortsAllowed: string;
    }
  >();

  let servers = opts.server;
  if (servers.length === 0 && env.GROVE_AGENT_SERVER) servers = parseServersOrFail(program, env.GROVE_AGENT_SERVER);
  if (servers.length === 0) program.error("error: --server <host:port> is required (or set GROVE_AGENT_SERVER)");
  const server = servers.join(",");
  if (opts.token !== undefined && opts.tokenFile !== undefined)
    program.error("error: give --token or --token-file, not both");
  let token = opts.token ?? env.GROVE_AGENT_TOKEN;
  if (opts.tokenFile !== undefined) {
    try {
      token = fs.readFileSync(opts.tokenFile, "utf8").trim();
    } catch (error) {
      program.error(`error: cannot read --token-file: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const joinToken = opts.join ?? env.GROVE_AGENT_JOIN;
  if (joinToken !== undefined && opts.caHash === undefined)
    program.error("error: --join needs --ca-hash sha256:... (printed by grove token create)");
  if (!opts.nodeName) program.error("error: --node-name must not be empty");
  let usernsRange: UsernsPoolOptions;
  try {
    usernsRange = parseUsernsRange(opts.usernsRange);
  } catch (error) {
    program.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  }
  let hostPorts: AgentHostPortPolicy;
  let nodePortsAllowed: NodePortRule[];
  try {
    hostPorts = agentHostPortPolicy({
      allowed: parsePortRanges(opts.allowedHostPorts, "--allowed-host-ports"),
      allowPrivileged: opts.allowPrivilegedHostPorts === true,
      // Every replica's port, not only the first's.
      reserved: [...parsePortList(opts.reservedHostPorts, "--reserved-host-ports"), ...servers.slice(1).map(portOf)],
      controlPlanePort: portOf(servers[0]!),
    });
    nodePortsAllowed = parseNodePorts(opts.nodePortsAllowed, "--node-ports-allowed");
  } catch (error) {
    program.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  }

  return {
    server,
    ...(token !== undefined ? { token } : {}),
    ...(joinToken !== undefined ? { join: joinToken } : {}),
    ...(opts.caHash !== undefined ? { caHash: opts.caHash } : {}),
    nodeName: opts.nodeName,
    stateDir: path.resolve(opts.stateDir),
    rootfsDir: path.resolve(opts.rootfsDir),
    labels: opts.label,
    addresses: opts.address,
    cgroupParent: opts.cgroupParent,
    ...(Object.keys(opts.runtimeHandler).length > 0 ? { runtimeHandlers: opts.runtimeHandler } : {}),
    ...(opts.stopContainersOnExit === true ? { stopContainersOnExit: true } : {}),
    ...(opts.joinNewCluster === true ? { joinNewCluster: true } : {}),
    logLevel: opts.logLevel,
    imagesDir: path.resolve(opts.imagesDir ?? path.join(opts.stateDir, "images")),
    ...(opts.imageConfig !== undefined ? { imageConfig: path.resolve(opts.imageConfig) } : {}),
    ociDir: path.resolve(opts.ociDir ?? DEFAULT_OCI_DIR),
    imageLimits: imageLimitsFrom(opts),
    network: opts.network,
    ...(opts.cniConflist !== undefined ? { cniConflist: path.resolve(opts.cniConflist) } : {}),
    cniPluginDirs: opts.cniPluginDir.split(":").filter((d) => d !== ""),
    usernsRange,
    hostPorts,
    nodePortsAllowed,
  };
}

const SERVER_PATTERN = /^(?:https:\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/;

function parseServer(value: string): string {
  const match = SERVER_PATTERN.exec(value);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) throw new InvalidArgumentError("expected HOST:PORT");
  return value;
}

/** The control-plane addresses of AgentConfig.server, in the order given. */
export function serverAddresses(server: string): string[] {
  return server.split(",").filter((s) => s !== "");
}

function portOf(server: string): number {
  return Number(/:(\d+)$/.exec(server)?.[1]);
}

/** --server A,B or --server A --server B: each a HOST:PORT, duplicates dropped. */
function collectServers(value: string, previous: string[]): string[] {
  const parts = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (parts.length === 0) throw new InvalidArgumentError("expected HOST:PORT[,HOST:PORT...]");
  const out = [...previous];
  for (const part of parts) {
    parseServer(part);
    if (!out.includes(part)) out.push(part);
  }
  return out;
}

/** The env default bypasses commander's parser, so validate it here too. */
function parseServersOrFail(program: Command, value: string): string[] {
  try {
    return collectServers(value, []);
  } catch {
    return program.error(`error: server address ${JSON.stringify(value)} is not HOST:PORT[,HOST:PORT...]`);
  }
}

function collectLabel(value: string, labels: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError("expected key=value");
  return { ...labels, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function collectRuntimeHandler(value: string, handlers: Record<string, string>): Record<string, string> {
  try {
    const [name, file] = parseRuntimeHandler(value);
    return { ...handlers, [name]: file };
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

function collectAddress(value: string, addresses: string[]): string[] {
  if (net.isIP(value) === 0) throw new InvalidArgumentError("expected an IP address");
  return [...addresses, value];
}

function parseNetworkMode(value: string): "cni" | "none" {
  if (value !== "cni" && value !== "none") throw new InvalidArgumentError("expected cni or none");
  return value;
}

function parseLogLevel(value: string): string {
  if (!LOG_LEVELS.includes(value)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(", ")}`);
  return value;
}
