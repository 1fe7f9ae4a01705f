// grove-server assembled: store (embedded or external etcd), informers,
// controllers, the HTTP API and the gRPC endpoint for agents.
import { randomBytes } from "node:crypto";
import type { Server as TlsServer } from "node:tls";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pino, { type Logger } from "pino";
import type { App, Instance, Node, Task } from "@grove/api";
import { EmbeddedEtcd } from "./etcd/embedded-etcd";
import { createStore } from "./store/etcd-store";
import { Keys, type Store } from "./store/store";
import { Repository } from "./resources/repository";
import { buildHttpServer } from "./http/server";
import { Informer } from "./controllers/informer";
import type { StoredNamespace } from "./namespaces/namespace-service";
import { AppController } from "./controllers/app-controller";
import { TaskController } from "./controllers/task-controller";
import { DEFAULT_HOST_PORT_RANGE, SchedulerController } from "./controllers/scheduler-controller";
import { NodeLifecycleController } from "./controllers/node-lifecycle";
import { LeaderElection } from "./leader/election";
import { fencedStoreFor, type LeaderFence } from "./store/fenced-store";
import { LeaderEpochWatch, publishLeader } from "./leader/leader-record";
import { AgentGateway, type PresenceOptions } from "./grpc/agent-gateway";
import { NodeRegistration, type ClusterNetworkOptions } from "./nodes/registration";
import { ensureClusterId } from "./cluster/cluster-id";
import { EventRecorder, type EventRecorderOptions } from "./events/recorder";
import { EventWatcher } from "./events/event-watcher";
import { PeerTransport } from "./replicas/peer-transport";
import { ReplicaStreams } from "./replicas/replica-streams";
import type { PortRange } from "./network/subnets";
import { ControlPlaneHostPorts, type HostPortPolicyOptions } from "./network/host-port-policy";
import { DEFAULT_ALLOWED_HOST_PORTS, parseHostPortRanges } from "@grove/api";
import { startTenancy } from "./secrets/setup";
import { IdentityLimits, type IdentityLimitOptions } from "./auth/limits";
import { ensureClusterPki, type ClusterPkiOptions } from "./pki/cluster-pki";
import type { EtcdClientTls } from "./store/etcd-store";
import { JoinService } from "./pki/join";
import { registerJoinRoutes } from "./http/join-routes";
import { renewServingCertificate } from "./pki/serving-renewal";
import { AgentLimits, type AgentLimitOptions } from "./grpc/agent-limits";
import { ControlPlaneMetrics } from "./observability/metrics";
import { instrumentStore } from "./observability/instrumented-store";

export interface ControlPlaneOptions {
  dataDir: string;
  /** External etcd endpoints; when empty an embedded etcd is started under dataDir. */
  etcdEndpoints?: string[];
  /** Client port of the embedded etcd (0 picks a free one). */
  etcdPort?: number;
  /** History the embedded etcd keeps before compacting it ("1h" default, "0" off). */
  etcdCompactionRetention?: string;
  httpHost?: string;
  httpPort?: number;
  /**
   * The URL other replicas reach this one's HTTP API at (recorded with the
   * nodes whose agent streams it holds); default: the listen address, or
   * this host's name when that is a wildcard.
   */
  advertiseUrl?: string;
  grpcHost?: string;
  grpcPort?: number;
  logger?: Logger;
  /** Cluster CIDR, node subnet size and egress default for instance networking. */
  network?: ClusterNetworkOptions;
  /** Dynamic host ports (default 20000-29999). */
  hostPortRange?: PortRange;
  /** Node grace and heartbeat interval (defaults 5 s and 2 s). */
  presence?: PresenceOptions;
  /** Which fixed host ports Apps may publish (default: 10000-32767, no privileged ports, none reserved beyond ours). */
  hostPorts?: HostPortPolicyOptions;
  /**
   * Give a store that holds objects but no cluster id a new one (after an
   * upgrade from a Grove without cluster ids, or once an operator checked the
   * store is the right one). Without it such a store sends no desired sets.
   */
  assignClusterId?: boolean;
  /** The leader's etcd lease TTL in seconds (default DEFAULT_LEADER_LEASE_TTL_SECONDS, 3). */
  leaderLeaseTtlSeconds?: number;
  /** Event time-to-live and write limits (grove-server --event-ttl). */
  events?: Omit<EventRecorderOptions, "logger">;
  /** Key-encryption keys of Secrets (default <dataDir>/encryption-keys.json, created at first start). */
  encryptionKeyFile?: string;
  /** Audit log file (default <dataDir>/audit.log); false: none. */
  auditLog?: string | false;
  /** Per-identity concurrent watches, log follows, exec sessions and request rate (auth/limits.ts). */
  identityLimits?: IdentityLimitOptions;
  /** For browsers and generated clients (http/frontend-routes.ts): CORS origins, watch bookmark period. */
  frontend?: { corsOrigins?: string[]; watchBookmarkMs?: number };
  /** The cluster CA (an operator's, or made at first start) and extra names for the serving certificate. */
  tls?: ClusterPkiOptions;
  /** How long node certificates are valid (default 30 days; agents renew them at two thirds). */
  nodeCertValidForMs?: number;
  /** Per-node rates and open streams on the agents' endpoint (grpc/agent-limits.ts). */
  agentLimits?: AgentLimitOptions;
  /** TLS to an external etcd (PEM files); the embedded one always uses the cluster CA. */
  etcdTls?: { caFile: string; certFile?: string; keyFile?: string };
}

export interface ControlPlane {
  httpUrl: string;
  grpcAddress: string;
  adminToken: string;
  agentToken: string;
  etcdEndpoints: string[];
  /** The cluster CA certificate (PEM file) clients trust, and its pin for `grove-agent --ca-hash`. */
  caFile: string;
  caHash: string;
  store: Store;
  /** Records Events (controllers and the rollout code call recordEvent). */
  events: EventRecorder;
  /** The cluster id desired sets carry; undefined while the store is suspect (see ensureClusterId). */
  clusterId?: string;
  close(): Promise<void>;
}

/** Reads a secret from dataDir, creating it (mode 0600) at first start. */
export function ensureToken(dataDir: string, file: string): string {
  const p = path.join(dataDir, file);
  try {
    const t = fs.readFileSync(p, "utf8").trim();
    if (t) return t;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const token = randomBytes(32).toString("hex");
  fs.writeFileSync(p, token + "\n", { mode: 0o600 });
  return token;
}

function readEtcdTls(files: { caFile: string; certFile?: string; keyFile?: string }): EtcdClientTls {
  return {
    caPem: fs.readFileSync(files.caFile, "utf8"),
    ...(files.certFile ? { certPem: fs.readFileSync(files.certFile, "utf8") } : {}),
    ...(files.keyFile ? { keyPem: fs.readFileSync(files.keyFile, "utf8") } : {}),
  };
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const logger = opts.logger ?? pino({ name: "grove-server" });
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const adminToken = ensureToken(opts.dataDir, "admin-token");
  const agentToken = ensureToken(opts.dataDir, "agent-token");
  // Scrapers' token: reads /metrics and the agents' metrics, nothing else (docs/observability.md).
  const metricsToken = ensureToken(opts.dataDir, "metrics-token");
  const metrics = new ControlPlaneMetrics();
  const wildcard = (h: string | undefined) => !h || h === "0.0.0.0" || h === "::";
  const pki = ensureClusterPki(opts.dataDir, {
    ...opts.tls,
    sans: [...(opts.tls?.sans ?? []), opts.httpHost, opts.grpcHost].filter(
      (h): h is string => h !== undefined && !wildcard(h),
    ),
  });

  const cleanups: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        logger.warn({ err }, "shutdown step failed");
      }
    }
  };

  const hostPorts = new ControlPlaneHostPorts(
    opts.hostPorts ?? {
      allowed: parseHostPortRanges(DEFAULT_ALLOWED_HOST_PORTS),
      allowPrivileged: false,
      reserved: [],
    },
  );
  hostPorts.addReserved(opts.httpPort ?? 7480, "grove-server's HTTP API");
  hostPorts.addReserved(opts.grpcPort ?? 7481, "grove-server's agent gRPC endpoint");
  if (!opts.etcdEndpoints?.length && opts.etcdPort) {
    hostPorts.addReserved(opts.etcdPort, "the embedded etcd's client port");
    hostPorts.addReserved(opts.etcdPort + 1, "the embedded etcd's peer port");
  }
  const dynamic = hostPorts.dynamicRangeProblem(opts.hostPortRange ?? DEFAULT_HOST_PORT_RANGE);
  if (dynamic) throw new Error(dynamic);

  try {
    let endpoints = opts.etcdEndpoints ?? [];
    if (endpoints.length === 0) {
      const etcd = new EmbeddedEtcd({
        dataDir: opts.dataDir,
        clientPort: opts.etcdPort ?? 2479,
        autoCompactionRetention: opts.etcdCompactionRetention,
        logger: logger.child({ component: "etcd" }),
        tls: {
          server: { caFile: pki.caFile, ...pki.etcdServer },
          client: { caPem: pki.ca.certPem, certPem: pki.etcdClient.certPem, keyPem: pki.etcdClient.keyPem },
        },
      });
      await etcd.start();
      cleanups.push(() => etcd.stop());
      hostPorts.addReserved(etcd.ports.client, "the embedded etcd's client port");
      hostPorts.addReserved(etcd.ports.peer, "the embedded etcd's peer port");
      endpoints = etcd.endpoints;
      logger.info({ endpoints }, "embedded etcd is up");
    } else hostPorts.addEtcdEndpoints(endpoints);
    const etcdTls: EtcdClientTls | undefined = opts.etcdEndpoints?.length
      ? opts.etcdTls && readEtcdTls(opts.etcdTls)
      : { caPem: pki.ca.certPem, certPem: pki.etcdClient.certPem, keyPem: pki.etcdClient.keyPem };
    const store = instrumentStore(
      createStore(endpoints, {
        logger: logger.child({ component: "store" }),
        ...(etcdTls ? { tls: etcdTls } : {}),
      }),
      metrics,
    );
    cleanups.push(() => store.close());
    const repo = new Repository(store);
    const cluster = await ensureClusterId(store, { assign: opts.assignClusterId === true });
    if (cluster.state === "ok") {
      logger.info({ clusterId: cluster.id }, cluster.created ? "cluster id created" : "cluster id read from the store");
    } else {
      logger.error(
        { holds: cluster.holds },
        "the store holds objects but no cluster id (lost, or written by an older Grove): agents get no desired sets " +
          "and keep what they run; check this is the right store, then restart with --assign-cluster-id",
      );
    }

    const apps = new Informer<App>(store, Keys.collection("apps"), logger);
    const instances = new Informer<Instance>(store, Keys.collection("instances"), logger);
    const nodes = new Informer<Node>(store, Keys.collection("nodes"), logger);
    const tasks = new Informer<Task>(store, Keys.collection("tasks"), logger);
    // Namespace objects: their quotas, enforced by the scheduler too (scheduling/quota-gate.ts).
    const namespaceObjects = new Informer<StoredNamespace>(store, Keys.collection("namespaces"), logger);
    metrics.setSources({ instances: () => instances.list(), nodes: () => nodes.list() });
    const events = new EventRecorder(store, {
      ...opts.events,
      logger: logger.child({ component: "events" }),
      onDrop: (reason) => metrics.eventsDropped.inc({ reason }),
    });
    cleanups.push(async () => events.stop());
    const eventWatcher = new EventWatcher(events, apps, instances, nodes);

    // Only the elected leader runs the controllers and the scheduler
    // (leader/election.ts); they are built when this server is elected and
    // stopped when it loses the lease.
    let controllers: { stop(): void } | undefined;
    const startControllers = (fence: LeaderFence) => {
      controllers?.stop();
      // Every controller write goes through the fenced view: a former leader's are rejected in etcd.
      const fenced = fencedStoreFor(store, fence, logger.child({ component: "fence" }));
      const appController = new AppController(
        new Repository(fenced),
        apps,
        instances,
        nodes,
        logger.child({ component: "app-controller" }),
      );
      const scheduler = new SchedulerController(
        fenced,
        nodes,
        instances,
        logger.child({ component: "scheduler" }),
        1,
        opts.hostPortRange,
        metrics,
        namespaceObjects,
      );
      const lifecycle = new NodeLifecycleController(
        fenced,
        nodes,
        instances,
        logger.child({ component: "node-lifecycle" }),
      );
      // The new epoch, for desired sets on every replica; fenced, so a former leader cannot write it back.
      void publishLeader(fenced, { identity: election.identity, epoch: fence.epoch }).catch((err: Error) =>
        logger.warn({ err: err.message }, "could not publish the leader record"),
      );
      const taskController = new TaskController(
        new Repository(fenced),
        tasks,
        instances,
        apps,
        nodes,
        logger.child({ component: "task-controller" }),
      );
      appController.resyncAll();
      taskController.resyncAll();
      scheduler.trigger();
      lifecycle.start();
      eventWatcher.setActive(true);
      metrics.setLeader(true);
      controllers = {
        stop: () => {
          eventWatcher.setActive(false);
          appController.stop();
          taskController.stop();
          scheduler.stop();
          lifecycle.stop();
        },
      };
    };
    // Agents' connections: the gRPC adapter over the node registration service.
    const agentsLogger = logger.child({ component: "agents" });
    const registration = new NodeRegistration(store, repo, instances, agentsLogger, opts.network);
    const gateway = new AgentGateway(registration, instances, agentToken, agentsLogger, opts.presence);
    gateway.batchStatusReports(store);
    gateway.setCluster(cluster);
    const leaderEpoch = new LeaderEpochWatch(store, logger.child({ component: "leader" }));
    gateway.setLeaderEpoch(() => leaderEpoch.current);
    cleanups.push(() => leaderEpoch.stop());
    const tenancy = await startTenancy(opts, store, instances, logger.child({ component: "secrets" }), () =>
      gateway.resendAll(),
    );
    cleanups.push(() => tenancy.close());
    gateway.setEnvResolver(tenancy.resolver.resolve);
    // Agents: mutual TLS, identified by the node certificates they got at join.
    const join = new JoinService(store, pki.ca, opts.nodeCertValidForMs);
    if (opts.agentLimits) gateway.limits = new AgentLimits(opts.agentLimits);
    const agentCredentials = gateway.useTls({
      caPem: pki.ca.certPem,
      ...pki.server,
      certificateCurrent: (node, serial) => join.certificateCurrent(node, serial),
      renew: (node, serial, csr) => join.renew(node, serial, csr).then((r) => r.certificatePem),
    });
    // Deleting a node revokes its certificate: its agent must join again.
    nodes.on((ev) => {
      if (ev.type !== "deleted") return;
      join.revoke(ev.object.metadata.name).catch((err: unknown) => agentsLogger.warn({ err }, "revoking failed"));
    });
    // A revoked (or re-issued) certificate ends its open stream at once, whichever replica holds it.
    const records = await join.watchRecords((node) => void gateway.recheckCertificate(node).catch(() => undefined));
    cleanups.push(() => records.close());
    cleanups.push(async () => {
      controllers?.stop();
      controllers = undefined;
    });
    cleanups.push(() =>
      Promise.all([apps.stop(), instances.stop(), nodes.stop(), tasks.stop(), namespaceObjects.stop()]).then(
        () => undefined,
      ),
    );

    await Promise.all([
      apps.start(),
      instances.start(),
      nodes.start(),
      tasks.start(),
      namespaceObjects.start(),
      leaderEpoch.start(),
    ]);
    const election = new LeaderElection(
      {
        endpoints,
        logger: logger.child({ component: "leader" }),
        ...(opts.leaderLeaseTtlSeconds ? { ttlSeconds: opts.leaderLeaseTtlSeconds } : {}),
        ...(etcdTls ? { tls: etcdTls } : {}),
      },
      {
        onElected: startControllers,
        onLost: () => {
          controllers?.stop();
          controllers = undefined;
          metrics.setLeader(false);
        },
      },
    );
    cleanups.push(() => election.close());
    // A standby server serves the API while it waits; do not hold start-up for it.
    await Promise.race([election.start(), new Promise((r) => setTimeout(r, 3000).unref())]);

    const grpcPort = await gateway.listen(opts.grpcHost ?? "127.0.0.1", opts.grpcPort ?? 7481);
    cleanups.push(() => gateway.close());
    hostPorts.addReserved(grpcPort, "grove-server's agent gRPC endpoint");

    // logs / exec / stats of nodes whose stream another replica holds go through it.
    const peers = new PeerTransport({ token: adminToken, self: opts.advertiseUrl ?? "", caPem: pki.ca.certPem });
    const streams = new ReplicaStreams(gateway, peers, logger.child({ component: "replicas" }));
    const http = await buildHttpServer({
      repo,
      store,
      adminToken,
      logger: logger.child({ component: "http" }),
      agents: streams,
      peerStreams: gateway,
      hostPorts: hostPorts.policy,
      dynamicHostPorts: opts.hostPortRange ?? DEFAULT_HOST_PORT_RANGE,
      secrets: tenancy.secrets,
      limits: new IdentityLimits(opts.identityLimits),
      ...(opts.frontend?.corsOrigins ? { corsOrigins: opts.frontend.corsOrigins } : {}),
      ...(opts.frontend?.watchBookmarkMs !== undefined ? { watchBookmarkMs: opts.frontend.watchBookmarkMs } : {}),
      ...(tenancy.audit ? { audit: tenancy.audit } : {}),
      observability: { metrics, metricsToken, nodeNames: () => nodes.list().map((n) => n.metadata.name) },
      listCaches: { App: apps, Instance: instances, Node: nodes, Task: tasks },
      // The chain carries the CA, so a joining agent can check it against its --ca-hash.
      https: { certPem: pki.server.certPem + pki.ca.certPem, keyPem: pki.server.keyPem },
      routes: [(app) => registerJoinRoutes(app, { join, caPem: pki.ca.certPem, caHash: pki.caHash, grpcPort })],
    });
    const httpHost = opts.httpHost ?? "127.0.0.1";
    await http.listen({ host: httpHost, port: opts.httpPort ?? 7480 });
    cleanups.push(() => http.close());
    const stopRenewal = renewServingCertificate(
      pki,
      (pair) => {
        agentCredentials.update({ caPem: pki.ca.certPem, ...pair });
        (http.server as unknown as TlsServer).setSecureContext({
          cert: pair.certPem + pki.ca.certPem,
          key: pair.keyPem,
        });
      },
      logger.child({ component: "pki" }),
    );
    cleanups.push(async () => stopRenewal());
    const addr = http.server.address();
    const httpPort = typeof addr === "object" && addr ? addr.port : (opts.httpPort ?? 7480);
    hostPorts.addReserved(httpPort, "grove-server's HTTP API");

    const cp: ControlPlane = {
      httpUrl: `https://${httpHost.includes(":") ? `[${httpHost}]` : httpHost}:${httpPort}`,
      grpcAddress: `${opts.grpcHost ?? "127.0.0.1"}:${grpcPort}`,
      adminToken,
      agentToken,
      etcdEndpoints: endpoints,
      caFile: pki.caFile,
      caHash: pki.caHash,
      store,
      events,
      ...(cluster.state === "ok" ? { clusterId: cluster.id } : {}),
      close,
    };
    // Heartbeats name this replica, so another one can tell clients where a node's stream is.
    gateway.setServerId(cp.httpUrl);
    logger.info(
      { http: cp.httpUrl, grpc: cp.grpcAddress, clusterId: cp.clusterId, caFile: cp.caFile, caHash: cp.caHash },
      "grove-server is up",
    );
    return cp;
  } catch (err) {
    await close();
    throw err;
  }
}

function urlOf(host: string, port: number): string {
  return `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** The listen address, or this host's name when that is a wildcard (0.0.0.0, ::). */
export function advertiseUrlOf(host: string, port: number): string {
  return urlOf(host === "0.0.0.0" || host === "::" || host === "" ? os.hostname() : host, port);
}
