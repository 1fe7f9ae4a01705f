// grove-server's command line.
import { Command, InvalidArgumentError } from "commander";
import pino from "pino";
import { parseDurationMs } from "@grove/api";
import { startTracing, traceLogFields } from "@grove/common";
import { startControlPlane } from "./server";
import { backupCommand, restoreCommand } from "./etcd/backup";
import { rotateEncryptionKey } from "./secrets/rotate";
import { DEFAULT_IDENTITY_LIMITS, parseIdentityLimits, type IdentityLimitOptions } from "./auth/limits";
import { DEFAULT_AGENT_LIMITS, parseAgentLimits, type AgentLimitOptions } from "./grpc/agent-limits";
import { parseCidr, parsePortRange } from "./network/subnets";
import { parseCorsOrigins } from "./http/frontend-routes";
import { DEFAULT_LEADER_LEASE_TTL_SECONDS } from "./leader/election";
import { HEARTBEAT_INTERVAL_MS } from "./controllers/node-lifecycle";
import { DEFAULT_ALLOWED_HOST_PORTS, parseHostPortRanges, parsePortList, type HostPortRange } from "@grove/api";

function flagCheck<T>(flag: string, parse: (v: string, what: string) => T) {
  return (value: string): T => {
    try {
      return parse(value, flag);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

function hostPort(flag: string) {
  return (value: string): { host: string; port: number } => {
    const m = /^(.*):(\d+)$/.exec(value);
    if (!m || !m[1]) throw new InvalidArgumentError(`${flag} takes HOST:PORT, got "${value}"`);
    return { host: m[1].replace(/^\[(.*)\]$/, "$1"), port: Number(m[2]) };
  };
}

export async function main(argv: string[]): Promise<void> {
  // Operator commands on the store (docs/operations.md): they run and exit.
  if (argv[2] === "backup" || argv[2] === "restore") {
    const run = argv[2] === "backup" ? backupCommand : restoreCommand;
    process.exitCode = await run(argv.slice(3));
    return;
  }
  if (argv[2] === "rotate-encryption-key") return rotateMain([argv[0]!, argv[1]!, ...argv.slice(3)]);
  const program = new Command("grove-server")
    .description(
      "Grove control plane: HTTP API, scheduler, controllers and the agents' gRPC endpoint " +
        "(also: grove-server backup FILE, grove-server restore FILE; see --help of each)",
    )
    .option("--data-dir <dir>", "state: tokens, embedded etcd data", process.env.GROVE_DATA_DIR ?? "/var/lib/grove")
    .option("--listen <host:port>", "HTTP API address", hostPort("--listen"), { host: "127.0.0.1", port: 7480 })
    .option("--grpc-listen <host:port>", "address agents dial", hostPort("--grpc-listen"), {
      host: "127.0.0.1",
      port: 7481,
    })
    .option(
      "--advertise-url <url>",
      "URL the other grove-server replicas reach this one's HTTP API at (default: the --listen address, " +
        "or this host's name when that is 0.0.0.0)",
      flagCheck("--advertise-url", (v, w) => {
        let u: URL;
        try {
          u = new URL(v);
        } catch {
          throw new Error(`${w} takes a URL such as http://10.0.0.1:7480, got "${v}"`);
        }
        if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`${w}: "${v}" is not http(s)`);
        return v.replace(/\/+$/, "");
      }),
    )
    .option("--etcd-endpoints <urls>", "comma-separated external etcd client URLs (default: start an embedded etcd)")
    .option("--etcd-port <port>", "client port of the embedded etcd", (v) => Number(v), 2479)
    .option(
      "--etcd-compaction-retention <duration>",
      "history the embedded etcd keeps before compacting it (e.g. 1h, 30m; 0: never compact)",
      "1h",
    )
    .option("--log-level <level>", "trace, debug, info, warn, error", "info")
    .option(
      "--cluster-cidr <cidr>",
      "instance addresses: every node gets a subnet of it",
      flagCheck("--cluster-cidr", (v, w) => (parseCidr(v, w), v)),
      "10.244.0.0/16",
    )
    .option("--node-subnet-prefix <n>", "prefix length of a node's subnet", (v) => Number(v), 24)
    .option(
      "--host-port-range <first-last>",
      "host ports handed out to ports that name none",
      flagCheck("--host-port-range", parsePortRange),
      { first: 20000, last: 29999 },
    )
    .option(
      "--allowed-host-ports <ranges>",
      "fixed host ports Apps may publish (1024 and up), e.g. 10000-32767,40000",
      flagCheck("--allowed-host-ports", parseHostPortRanges),
      parseHostPortRanges(DEFAULT_ALLOWED_HOST_PORTS),
    )
    .option("--allow-privileged-host-ports", "let Apps publish fixed host ports below 1024 (not reserved ones)")
    .option(
      "--reserved-host-ports <ports>",
      "more node ports no App may publish (comma-separated), beyond Grove's, etcd's and sshd's",
      flagCheck("--reserved-host-ports", parsePortList),
      [] as number[],
    )
    .option(
      "--egress-default <deny|allow>",
      "egress no rule of an App allows",
      (v) => {
        if (v !== "deny" && v !== "allow") throw new InvalidArgumentError("--egress-default takes deny or allow");
        return v;
      },
      "deny",
    )
    .option(
      "--node-grace <duration>",
      "agent silence after which its node is marked Ready=Unknown and its instances Unknown (then replaced)",
      flagCheck("--node-grace", (v) => parseDurationMs(v)),
      5_000,
    )
    .option(
      "--heartbeat-interval <duration>",
      "how often agents heartbeat (at most half the node grace)",
      flagCheck("--heartbeat-interval", (v) => parseDurationMs(v)),
      HEARTBEAT_INTERVAL_MS,
    )
    .option("--ca-cert <file>", "the cluster CA certificate (PEM) to use instead of making one at first start")
    .option("--ca-key <file>", "the cluster CA's private key (PEM), with --ca-cert")
    .option(
      "--node-cert-validity <duration>",
      "how long node certificates are valid; agents renew them at two thirds (e.g. 720h)",
      flagCheck("--node-cert-validity", (v) => parseDurationMs(v)),
      30 * 24 * 3_600_000,
    )
    .option(
      "--server-cert-validity <duration>",
      "how long the serving certificate (API, agents' gRPC) is valid; renewed at two thirds without a restart",
      flagCheck("--server-cert-validity", (v) => parseDurationMs(v)),
      365 * 24 * 3_600_000,
    )
    .option(
      "--agent-limits <list>",
      "per node: heartbeats/s, reports/s, output bytes/s, renewals/min, open streams; e.g. reports=200,output=16Mi",
      flagCheck("--agent-limits", (v, w) => parseAgentLimits(v, w)),
      DEFAULT_AGENT_LIMITS,
    )
    .option("--tls-san <names>", "more DNS names and addresses (comma-separated) the server certificate is valid for")
    .option("--etcd-cafile <file>", "CA of an external etcd (--etcd-endpoints https://...)")
    .option("--etcd-certfile <file>", "client certificate for an external etcd")
    .option("--etcd-keyfile <file>", "client key for an external etcd")
    .option(
      "--event-ttl <duration>",
      "how long an Event lives after it last happened (at least 2s: etcd's shortest lease)",
      flagCheck("--event-ttl", (v) => {
        const ms = parseDurationMs(v);
        if (ms < 2000) throw new InvalidArgumentError("--event-ttl must be at least 2s");
        return ms;
      }),
      3_600_000,
    )
    .option(
      "--encryption-key-file <file>",
      "Secrets' key-encryption keys (default: DATA_DIR/encryption-keys.json, made at first start)",
    )
    .option(
      "--identity-limits <list>",
      "per token: open watches, log follows, exec sessions, requests per second (429 beyond), e.g. watches=32,rate=100",
      flagCheck("--identity-limits", (v, w) => parseIdentityLimits(v, w)),
      DEFAULT_IDENTITY_LIMITS,
    )
    .option(
      "--audit-log <file>",
      "audit log, one JSON line per mutation, session and refusal (default: DATA_DIR/audit.log)",
    )
    .option(
      "--cors-origins <list>",
      "comma-separated origins (https://paas.example.com) whose pages may call the API (CORS); none by default",
      flagCheck("--cors-origins", (v, w) => parseCorsOrigins(v, w)),
    )
    .option(
      "--watch-bookmark-interval <duration>",
      "how long a watch that asked for bookmarks (?allowWatchBookmarks=1) stays silent at most",
      flagCheck("--watch-bookmark-interval", (v) => {
        const ms = parseDurationMs(v);
        if (ms < 100) throw new InvalidArgumentError("--watch-bookmark-interval must be at least 100ms");
        return ms;
      }),
      10_000,
    )
    .option(
      "--leader-lease-ttl <seconds>",
      "the leader's etcd lease: how long a dead or paused leader blocks failover (whole seconds, 2-60)",
      flagCheck("--leader-lease-ttl", (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 2 || n > 60) {
          throw new InvalidArgumentError("--leader-lease-ttl takes whole seconds from 2 to 60");
        }
        return n;
      }),
      DEFAULT_LEADER_LEASE_TTL_SECONDS,
    )
    .option(
      "--assign-cluster-id",
      "give a store that holds objects but no cluster id a new one (after an upgrade from a Grove without cluster ids; " +
        "agents that applied sets of another cluster still refuse it)",
    );
  program.parse(argv);
  const o = program.opts<{
    dataDir: string;
    listen: { host: string; port: number };
    grpcListen: { host: string; port: number };
    advertiseUrl?: string;
    etcdEndpoints?: string;
    etcdPort: number;
    etcdCompactionRetention: string;
    leaderLeaseTtl: number;
    logLevel: string;
    clusterCidr: string;
    nodeSubnetPrefix: number;
    hostPortRange: { first: number; last: number };
    allowedHostPorts: HostPortRange[];
    allowPrivilegedHostPorts?: boolean;
    reservedHostPorts: number[];
    egressDefault: "deny" | "allow";
    nodeGrace: number;
    heartbeatInterval: number;
    eventTtl: number;
    assignClusterId?: boolean;
    encryptionKeyFile?: string;
    auditLog?: string;
    identityLimits: IdentityLimitOptions;
    nodeCertValidity: number;
    serverCertValidity: number;
    agentLimits: AgentLimitOptions;
    corsOrigins?: string[];
    watchBookmarkInterval: number;
    caCert?: string;
    caKey?: string;
    tlsSan?: string;
    etcdCafile?: string;
    etcdCertfile?: string;
    etcdKeyfile?: string;
  }>();
  // Traces only when OTEL_* asks for them (docs/observability.md); log lines inside a span carry its ids.
  const tracing = startTracing("grove-server");
  const logger = pino({ name: "grove-server", level: o.logLevel, mixin: traceLogFields });
  try {
    const cp = await startControlPlane({
      dataDir: o.dataDir,
      etcdEndpoints: o.etcdEndpoints
        ? o.etcdEndpoints
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean)
        : [],
      etcdPort: o.etcdPort,
      etcdCompactionRetention: o.etcdCompactionRetention,
      httpHost: o.listen.host,
      httpPort: o.listen.port,
      ...(o.advertiseUrl ? { advertiseUrl: o.advertiseUrl } : {}),
      grpcHost: o.grpcListen.host,
      grpcPort: o.grpcListen.port,
      network: { clusterCidr: o.clusterCidr, nodeSubnetPrefix: o.nodeSubnetPrefix, egressDefault: o.egressDefault },
      hostPortRange: o.hostPortRange,
      presence: { graceMs: o.nodeGrace, heartbeatIntervalMs: o.heartbeatInterval },
      hostPorts: {
        allowed: o.allowedHostPorts,
        allowPrivileged: o.allowPrivilegedHostPorts === true,
        reserved: o.reservedHostPorts,
      },
      assignClusterId: o.assignClusterId === true,
      leaderLeaseTtlSeconds: o.leaderLeaseTtl,
      events: { ttlSeconds: Math.ceil(o.eventTtl / 1000) },
      ...(o.encryptionKeyFile ? { encryptionKeyFile: o.encryptionKeyFile } : {}),
      ...(o.auditLog ? { auditLog: o.auditLog } : {}),
      identityLimits: o.identityLimits,
      nodeCertValidForMs: o.nodeCertValidity,
      agentLimits: o.agentLimits,
      frontend: { ...(o.corsOrigins ? { corsOrigins: o.corsOrigins } : {}), watchBookmarkMs: o.watchBookmarkInterval },
      tls: {
        servingValidForMs: o.serverCertValidity,
        ...(o.caCert ? { caCertFile: o.caCert } : {}),
        ...(o.caKey ? { caKeyFile: o.caKey } : {}),
        sans: (o.tlsSan ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      },
      ...(o.etcdCafile
        ? {
            etcdTls: {
              caFile: o.etcdCafile,
              ...(o.etcdCertfile ? { certFile: o.etcdCertfile } : {}),
              ...(o.etcdKeyfile ? { keyFile: o.etcdKeyfile } : {}),
            },
          }
        : {}),
      logger,
    });
    let stopping = false;
    const shutdown = (sig: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal: sig }, "shutting down");
      cp.close()
        .then(() => tracing?.shutdown())
        .then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, "shutdown failed");
            process.exit(1);
          },
        );
    };
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    process.on("SIGINT", () => shutdown("SIGINT"));
  } catch (err) {
    logger.fatal({ err }, "grove-server failed to start");
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100).unref();
  }
}

/** `grove-server rotate-encryption-key`: a new primary key, every Secret re-encrypted under it. */
async function rotateMain(argv: string[]): Promise<void> {
  const o = new Command("grove-server rotate-encryption-key")
    .description("add a new key-encryption key for Secrets and re-encrypt every Secret under it")
    .option("--data-dir <dir>", "grove-server's data dir", process.env.GROVE_DATA_DIR ?? "/var/lib/grove")
    .option("--encryption-key-file <file>", "key file (default: DATA_DIR/encryption-keys.json)")
    .option("--etcd-endpoints <urls>", "etcd of a running cluster (default: start the data dir's embedded etcd)")
    .option("--etcd-port <port>", "client port of the embedded etcd", (v) => Number(v), 2479)
    .parse(argv)
    .opts<{ dataDir: string; encryptionKeyFile?: string; etcdEndpoints?: string; etcdPort: number }>();
  const logger = pino({ name: "grove-server", level: "warn" });
  try {
    const r = await rotateEncryptionKey({
      dataDir: o.dataDir,
      ...(o.encryptionKeyFile ? { encryptionKeyFile: o.encryptionKeyFile } : {}),
      etcdEndpoints: (o.etcdEndpoints ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      etcdPort: o.etcdPort,
      logger,
    });
    process.stdout.write(`new primary key ${r.keyId}; re-encrypted ${r.reencrypted} Secret(s)\n`);
  } catch (err) {
    logger.fatal({ err }, "rotate-encryption-key failed");
    process.exitCode = 1;
  }
}
