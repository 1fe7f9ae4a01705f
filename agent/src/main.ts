// grove-agent: registers this node with the control plane and runs the
// instances it is sent. bin/grove-agent.js calls main(process.argv).
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { pino, type Logger } from "pino";
import { channelCredentials, nodeCredentials } from "./join";
import { ControlPlaneConnection } from "./grpc/client";
import { DesiredStateGuard } from "./grpc/desired-state-guard";
import { agentVersion, readHostFacts, toNodeInfo } from "./host";
import { Reconciler } from "./reconcile/reconciler";
import { ImageService, loadImageConfig, TemplateRoots } from "./images";
import { imageCommand } from "./images/cli";
import {
  addImageLimitOptions,
  DEFAULT_OCI_DIR,
  imageLimitsFrom,
  type ImageLimitFlags,
  type ImageLimits,
} from "./images/limits";
import { NativeRuntime } from "./runtime";
import {
  DEFAULT_ALLOWED_HOST_PORTS,
  DEFAULT_PLUGIN_DIRS,
  NetworkManager,
  agentHostPortPolicy,
  parseNodePorts,
  parsePortList,
  parsePortRanges,
  type AgentHostPortPolicy,
  type NodePortRule,
} from "./network";
import { SubStreamServer } from "./streams/sub-streams";
import { DEFAULT_USERNS_RANGE, UsernsPool, parseUsernsRange, type UsernsPoolOptions } from "./reconcile/userns-pool";

export interface AgentConfig {
  /** The image store (default <stateDir>/images). */
  imagesDir: string;
  /** JSON file with registry settings and pull secrets (agent/src/images/config.ts). */
  imageConfig?: string;
  /** The only directory oci: image references may name. */
  ociDir: string;
  /** Layer size, ratio, entry and disk-reserve limits of image pulls (agent/src/images/limits.ts). */
  imageLimits: ImageLimits;
  /** host:port of the control plane's gRPC listener, or https://HOST:PORT of its API (to join). */
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
}

/** How long shutdown waits for containers to stop before giving up on them. */
export const SHUTDOWN_TIMEOUT_MS = 90_000;

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
      "--server <url>",
      "https://HOST:PORT of grove-server's API to join through, or HOST:PORT of its gRPC endpoint (env GROVE_AGENT_SERVER)",
      parseServer,
      env.GROVE_AGENT_SERVER,
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
      server?: string;
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

  if (!opts.server) program.error("error: --server <host:port> is required (or set GROVE_AGENT_SERVER)");
  const server = parseServerOrFail(program, opts.server);
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
      reserved: parsePortList(opts.reservedHostPorts, "--reserved-host-ports"),
      controlPlanePort: Number(/:(\d+)$/.exec(server)?.[1]),
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

/** The agent's entry point; sets process.exitCode rather than throwing. */
export async function main(argv: readonly string[]): Promise<void> {
  if (argv[2] === "image") {
    process.exitCode = await imageCommand(argv.slice(3));
    return;
  }
  let config: AgentConfig;
  try {
    config = parseArgs(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    throw error;
  }

  const log = pino({ name: "grove-agent", level: config.logLevel });
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    log.fatal("grove-agent must run as root: it creates cgroups, namespaces and mounts for its containers");
    process.exitCode = 1;
    return;
  }
  try {
    await run(config, log);
  } catch (error) {
    log.fatal({ err: error }, "grove-agent failed");
    process.exitCode = 1;
  }
}

async function run(config: AgentConfig, log: Logger): Promise<void> {
  const runtime = new NativeRuntime({
    cgroupParent: config.cgroupParent,
    // Fault injection for the agent-restart test (a kill in the middle of a start).
    pauseInStartMs: Number(process.env.GROVE_AGENT_PAUSE_IN_START_MS ?? 0) || 0,
  });
  let connection: ControlPlaneConnection | undefined = undefined;
  let network: NetworkManager | undefined;
  if (config.network === "cni") {
    network = new NetworkManager({
      stateDir: path.join(config.stateDir, "network"),
      pluginDirs: config.cniPluginDirs,
      ...(config.cniConflist ? { conflistFile: config.cniConflist } : {}),
      hostPorts: config.hostPorts,
      allowedNodePorts: config.nodePortsAllowed,
      logger: log.child({ component: "network" }),
    });
    await network.init();
  }
  const imageConfig = config.imageConfig ? loadImageConfig(config.imageConfig) : undefined;
  const images = new ImageService({
    root: config.imagesDir,
    registries: imageConfig?.registries ?? {},
    pullSecrets: imageConfig?.pullSecrets ?? {},
    ociDir: config.ociDir,
    limits: config.imageLimits,
  });
  await images.init();
  // Content no image and no container uses goes every 10 minutes (images
  // themselves stay until `grove-agent image gc --all`).
  setInterval(() => {
    images
      .gc()
      .then((r) => {
        if (r.removedBlobs.length + r.removedSnapshots.length > 0) log.info(r, "image store garbage collected");
      })
      .catch((err: unknown) => log.warn({ err }, "image store garbage collection failed"));
  }, 10 * 60_000).unref();
  // Every instance of a rootfs directory gets its own overlay root over it.
  const templates = new TemplateRoots({ rootfsDir: config.rootfsDir, root: path.join(config.stateDir, "roots") });
  for (const warning of await templates.init()) log.warn(warning);
  // Refuses desired sets of another cluster or older than one applied (a wiped or restored store).
  const guard = new DesiredStateGuard({ stateDir: config.stateDir, joinNewCluster: config.joinNewCluster === true });
  if (guard.state) log.info(guard.state, "this node belongs to a cluster");
  if (config.joinNewCluster === true)
    log.warn("--join-new-cluster: the next desired set is accepted whatever its cluster");
  const pauseAfterNetworkMs = Number(process.env.GROVE_AGENT_PAUSE_AFTER_NETWORK_MS ?? 0) || 0;
  const reconciler = new Reconciler({
    ...(network ? { network } : {}),
    pauseAfterNetworkMs,
    images,
    templates,
    runtime,
    rootfsDir: config.rootfsDir,
    stateDir: config.stateDir,
    userns: new UsernsPool(config.usernsRange),
    logger: log.child({ component: "reconciler" }),
    onStatus: (status) => connection?.reportStatus(status),
    // spec.disconnect.stopAfter: measured from the control plane's last answer.
    withoutContactMs: () => connection?.withoutContactMs() ?? 0,
  });
  const version = agentVersion();
  // grove logs / exec / stats over the Connect stream.
  const streams = new SubStreamServer({
    runtime,
    logDir: path.join(config.stateDir, "logs"),
    instances: () => reconciler.statuses(),
    logger: log.child({ component: "streams" }),
  });
  const credentials = await nodeCredentials(config, log);
  connection = new ControlPlaneConnection({
    streams,
    address: credentials.grpcAddress,
    token: "",
    credentials: channelCredentials(credentials),
    reconciler,
    guard,
    onRegistered: (registered) => {
      if (!network) return;
      const egressDefault = registered.egressDefault === "allow" ? "allow" : "deny";
      network
        .configure(registered.subnet, egressDefault)
        .catch((err: unknown) => log.error({ err }, "cannot configure instance networking"));
    },
    logger: log.child({ component: "control-plane-connection" }),
    nodeInfo: () =>
      toNodeInfo(readHostFacts({ addresses: config.addresses }), {
        name: config.nodeName,
        labels: config.labels,
        cgroupMode: runtime.cgroupMode,
        agentVersion: version,
      }),
  });

  await reconciler.start();
  connection.start();
  log.info(
    { server: config.server, node: config.nodeName, cgroupMode: runtime.cgroupMode, version },
    "grove-agent started",
  );

  const signal = await nextSignal();
  // A second signal means "now": skip the orderly stop.
  const forceExit = (again: NodeJS.Signals) => {
    log.warn({ signal: again }, "second signal; exiting without waiting for containers");
    process.exit(1);
  };
  process.once("SIGTERM", forceExit);
  process.once("SIGINT", forceExit);

  if (config.stopContainersOnExit !== true) {
    // Containers outlive the agent: each has its grove-shim; the next agent
    // run adopts them (NativeRuntime.recover). Nothing is stopped here.
    const containers = runtime.list().length;
    log.info({ signal, containers }, "shutting down; containers keep running and are adopted on the next start");
    connection.stop();
    reconciler.close();
    runtime.detach();
    if (containers === 0) await runtime.removeParentCgroup().catch(() => undefined);
    log.info("grove-agent stopped");
    process.exit(0);
  }

  // --stop-containers-on-exit: stop them all (reporting their final status
  // while the stream is still up).
  log.info({ signal }, "shutting down: stopping every container");
  const stopped = await withTimeout(reconciler.shutdown(), SHUTDOWN_TIMEOUT_MS);
  if (!stopped) log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, "some containers did not stop in time; leaving them");
  connection.stop();
  reconciler.close();
  if (stopped) {
    // The parent cgroup is ours too; leave nothing behind on a clean stop.
    await runtime.removeParentCgroup().catch((err: unknown) => log.warn({ err }, "could not remove the parent cgroup"));
  }
  log.info("grove-agent stopped");
  process.exit(stopped ? 0 : 1);
}

function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolve(signal);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}

async function withTimeout(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const SERVER_PATTERN = /^(?:https:\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/;

function parseServer(value: string): string {
  const match = SERVER_PATTERN.exec(value);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) throw new InvalidArgumentError("expected HOST:PORT");
  return value;
}

/** The env default bypasses commander's parser, so validate it here too. */
function parseServerOrFail(program: Command, value: string): string {
  try {
    return parseServer(value);
  } catch {
    return program.error(`error: server address ${JSON.stringify(value)} is not HOST:PORT`);
  }
}

function collectLabel(value: string, labels: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError("expected key=value");
  return { ...labels, [value.slice(0, eq)]: value.slice(eq + 1) };
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
