// grove-agent: registers this node with the control plane and runs the
// instances it is sent. bin/grove-agent.js calls main(process.argv).
import { startTracing, traceLogFields, type TracingHandle } from "@grove/common";
import { AgentMetrics } from "./observability/agent-metrics";
import * as path from "node:path";
import { CommanderError } from "commander";
import { pino, type Logger } from "pino";
import { DRAIN_TIMEOUT_MS, parseArgs, serverAddresses, SHUTDOWN_TIMEOUT_MS, type AgentConfig } from "./config";
import { NodeCertificateProvider, nodeCredentials } from "./join";
import { CertificateRenewer } from "./cert-renewal";
import { ControlPlaneConnection } from "./grpc/client";
import { DesiredStateGuard } from "./grpc/desired-state-guard";
import { agentVersion, readHostFacts, toNodeInfo } from "./host";
import { Reconciler } from "./reconcile/reconciler";
import { ImageService, loadImageConfig, TemplateRoots } from "./images";
import { imageCommand } from "./images/cli";
import { defaultRuntimeHandlers, NativeRuntime } from "./runtime";
import { NetworkManager } from "./network";
import { SubStreamServer } from "./streams/sub-streams";
import { UsernsPool } from "./reconcile/userns-pool";

// Moved to config.ts; kept here for the callers that import them from main.
export { parseArgs, SHUTDOWN_TIMEOUT_MS, type AgentConfig, type ParseArgsOptions } from "./config";

/** The agent's entry point; sets process.exitCode rather than throwing. */
/** Tracing, when OTEL_* asked for it: buffered spans are sent before the agent exits. */
let tracing: TracingHandle | undefined;

async function flushTraces(): Promise<void> {
  await tracing?.shutdown();
}

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

  // Traces only when OTEL_* asks for them (docs/observability.md); log lines inside a span carry its ids.
  tracing = startTracing("grove-agent", { "grove.node": config.nodeName });
  const log = pino({ name: "grove-agent", level: config.logLevel, mixin: traceLogFields });
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
    handlers: { ...defaultRuntimeHandlers(), ...(config.runtimeHandlers ?? {}) },
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
  // Reads the reconciler's statuses when scraped (after start-up), so it can be made first.
  const metrics: AgentMetrics = new AgentMetrics({
    runtime,
    statuses: () => reconciler.statuses(),
    appOf: (uid) => reconciler.appOf(uid),
  });
  const reconciler = new Reconciler({
    ...(network ? { network } : {}),
    pauseAfterNetworkMs,
    images: metrics.instrumentImages(images),
    templates,
    runtime,
    rootfsDir: config.rootfsDir,
    stateDir: config.stateDir,
    nodeName: config.nodeName,
    userns: new UsernsPool(config.usernsRange),
    logger: log.child({ component: "reconciler" }),
    onStatus: (status) => {
      metrics.observeStatus(status);
      connection?.reportStatus(status);
    },
    onReleased: (status) => connection?.reportStatus(status),
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
    metrics: () => metrics.render(),
  });
  // The node certificate from an earlier join, or a join now through the first address (https://).
  const servers = serverAddresses(config.server);
  const credentials = await nodeCredentials({ ...config, server: servers[0]! }, log);
  // gRPC addresses: the first one's (given, or learnt at the join), then the other replicas given.
  const others = servers.slice(1).filter((s) => !s.startsWith("https://") && s !== credentials.grpcAddress);
  const grpcAddresses = [credentials.grpcAddress, ...others];
  // Renewed before it expires (cert-renewal.ts); every new connection presents the current one.
  const certificates = new NodeCertificateProvider(credentials);
  connection = new ControlPlaneConnection({
    streams,
    address: grpcAddresses[0]!,
    addresses: grpcAddresses,
    token: "",
    credentials: certificates.channelCredentials(),
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
  const conn = connection;
  const renewer = new CertificateRenewer({
    stateDir: config.stateDir,
    nodeName: config.nodeName,
    provider: certificates,
    renew: (csr) => conn.renewCertificate(csr),
    logger: log.child({ component: "certificates" }),
  });
  renewer.start();
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
    // Nothing new starts, but a sync already running finishes: a stop the
    // control plane asked for would otherwise end between the container's
    // exit and the release of its root, network and cgroup, leaving them
    // mounted and held until the next start cleans up. Its status goes out
    // while the stream is still up.
    renewer.stop();
    reconciler.close();
    if (!(await withTimeout(reconciler.idle(), DRAIN_TIMEOUT_MS))) {
      log.warn({ timeoutMs: DRAIN_TIMEOUT_MS }, "work in progress did not finish in time; the next start finishes it");
    }
    connection.stop();
    runtime.detach();
    if (containers === 0) await runtime.removeParentCgroup().catch(() => undefined);
    log.info("grove-agent stopped");
    await flushTraces();
    process.exit(0);
  }

  // --stop-containers-on-exit: stop them all (reporting their final status
  // while the stream is still up).
  log.info({ signal }, "shutting down: stopping every container");
  const stopped = await withTimeout(reconciler.shutdown(), SHUTDOWN_TIMEOUT_MS);
  if (!stopped) log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, "some containers did not stop in time; leaving them");
  renewer.stop();
  connection.stop();
  reconciler.close();
  if (stopped) {
    // The parent cgroup is ours too; leave nothing behind on a clean stop.
    await runtime.removeParentCgroup().catch((err: unknown) => log.warn({ err }, "could not remove the parent cgroup"));
  }
  log.info("grove-agent stopped");
  await flushTraces();
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
