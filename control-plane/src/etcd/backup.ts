// grove-server backup FILE / grove-server restore FILE: etcd snapshots of the
// whole store (Apps, Instances, Nodes, the cluster id), taken and restored
// with Debian's etcdctl (etcd 3.4: `snapshot save` streams the backend from
// one member and checks its hash; `snapshot restore` builds a new member data
// directory from it). The runbook is docs/operations.md.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Command, CommanderError } from "commander";

/** What `etcdctl snapshot status` says of a snapshot. */
export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

function etcdctl(args: string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.env.GROVE_ETCDCTL ?? "etcdctl",
      args,
      { env: { ...process.env, ETCDCTL_API: "3" }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException;
          const why = e.code === "ENOENT" ? "etcdctl is not installed (Debian package etcd-client)" : stderr.trim();
          reject(new Error(why || err.message));
        } else resolve({ stdout, stderr });
      },
    );
  });
}

/** Checks a snapshot file (etcdctl verifies its hash) and reads its revision and size. */
export async function snapshotStatus(file: string): Promise<SnapshotStatus> {
  const { stdout } = await etcdctl(["snapshot", "status", file, "--write-out", "json"]);
  return JSON.parse(stdout) as SnapshotStatus;
}

/**
 * Saves a snapshot of the store to `file` from the first endpoint that
 * answers (it is one member's backend, which holds everything the cluster
 * committed). Refuses to overwrite a file.
 */
export async function backup(
  endpoints: readonly string[],
  file: string,
  tlsArgs: readonly string[] = [],
): Promise<SnapshotStatus> {
  if (fs.existsSync(file)) throw new Error(`${file} exists; give a new file name (nothing was written)`);
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    try {
      await etcdctl([...tlsArgs, "--endpoints", endpoint, "--dial-timeout", "5s", "snapshot", "save", file]);
      return await snapshotStatus(file);
    } catch (err) {
      fs.rmSync(`${file}.part`, { force: true });
      failures.push(`${endpoint}: ${(err as Error).message.split("\n").slice(-1)[0]}`);
    }
  }
  throw new Error(`no etcd endpoint gave a snapshot: ${failures.join("; ")}`);
}

export interface RestoreTarget {
  /** The new member data directory (must not exist, or be empty). */
  dataDir: string;
  /** Member name, initial cluster and this member's peer URL, as the member will start with. */
  name: string;
  initialCluster: string;
  peerUrl: string;
}

/** Builds a member data directory from a snapshot. Refuses a directory that holds anything. */
export async function restore(file: string, target: RestoreTarget): Promise<SnapshotStatus> {
  if (!fs.existsSync(file)) throw new Error(`snapshot ${file} does not exist`);
  const status = await snapshotStatus(file);
  if (fs.existsSync(target.dataDir) && fs.readdirSync(target.dataDir).length > 0) {
    throw new Error(
      `${target.dataDir} is not empty: stop grove-server (or the etcd member) and move it away first (nothing was changed)`,
    );
  }
  // etcdctl makes the directory itself and refuses an existing one.
  if (fs.existsSync(target.dataDir)) fs.rmdirSync(target.dataDir);
  fs.mkdirSync(path.dirname(target.dataDir), { recursive: true, mode: 0o700 });
  await etcdctl([
    "snapshot",
    "restore",
    file,
    "--data-dir",
    target.dataDir,
    "--name",
    target.name,
    "--initial-cluster",
    target.initialCluster,
    "--initial-advertise-peer-urls",
    target.peerUrl,
  ]);
  fs.chmodSync(target.dataDir, 0o700);
  return status;
}

function program(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
}

function endpointsOf(o: { etcdEndpoints?: string; etcdPort: string }): string[] {
  if (o.etcdEndpoints) {
    return o.etcdEndpoints
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  }
  return [`https://127.0.0.1:${Number(o.etcdPort)}`];
}

/**
 * etcdctl's TLS flags: the ones given, else grove-server's own etcd client
 * certificate in its data directory (the embedded etcd takes no other).
 */
function tlsArgsOf(o: { dataDir: string; etcdCafile?: string; etcdCertfile?: string; etcdKeyfile?: string }): string[] {
  if (o.etcdCafile) {
    return [
      `--cacert=${o.etcdCafile}`,
      ...(o.etcdCertfile ? [`--cert=${o.etcdCertfile}`] : []),
      ...(o.etcdKeyfile ? [`--key=${o.etcdKeyfile}`] : []),
    ];
  }
  const pki = path.join(o.dataDir, "pki");
  if (!fs.existsSync(path.join(pki, "etcd-client.key"))) return [];
  return [
    `--cacert=${path.join(pki, "ca.crt")}`,
    `--cert=${path.join(pki, "etcd-client.crt")}`,
    `--key=${path.join(pki, "etcd-client.key")}`,
  ];
}

async function run(cmd: Command, argv: string[], work: () => Promise<void>): Promise<number> {
  try {
    cmd.parse(argv, { from: "user" });
    await work();
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

/** `grove-server backup FILE`; resolves with the exit code. */
export function backupCommand(argv: string[]): Promise<number> {
  const cmd = program("grove-server backup", "save a snapshot of the store (etcd) to FILE")
    .argument("<file>", "where to write the snapshot (must not exist)")
    .option("--etcd-endpoints <urls>", "the store's etcd client URLs (default: the embedded etcd)")
    .option("--etcd-port <port>", "client port of the embedded etcd", "2479")
    .option("--data-dir <dir>", "grove-server's data directory (its etcd client certificate)", "/var/lib/grove")
    .option("--etcd-cafile <file>", "CA of an external etcd's serving certificate")
    .option("--etcd-certfile <file>", "client certificate for an external etcd")
    .option("--etcd-keyfile <file>", "client key for an external etcd");
  return run(cmd, argv, async () => {
    const [file] = cmd.args as [string];
    const o = cmd.opts<{ etcdEndpoints?: string; etcdPort: string; dataDir: string; etcdCafile?: string }>();
    const status = await backup(endpointsOf(o), file, tlsArgsOf(o));
    process.stdout.write(`${JSON.stringify({ file, ...status })}\n`);
  });
}

/** `grove-server restore FILE`; resolves with the exit code. */
export function restoreCommand(argv: string[]): Promise<number> {
  const cmd = program(
    "grove-server restore",
    "build an etcd data directory from a snapshot: the embedded etcd's (--data-dir, grove-server stopped) " +
      "or one member's of an external cluster (--etcd-data-dir with --name, --initial-cluster, --peer-url)",
  )
    .argument("<file>", "the snapshot (grove-server backup)")
    .option("--data-dir <dir>", "grove-server's data directory: restores its embedded etcd (<dir>/etcd)")
    .option("--etcd-port <port>", "client port of the embedded etcd (its peer port is this + 1)", "2479")
    .option("--etcd-data-dir <dir>", "an external member's data directory")
    .option("--name <name>", "the external member's name")
    .option("--initial-cluster <name=url,...>", "every member's name and peer URL")
    .option("--peer-url <url>", "this member's peer URL");
  return run(cmd, argv, async () => {
    const [file] = cmd.args as [string];
    const o = cmd.opts<{
      dataDir?: string;
      etcdPort: string;
      etcdDataDir?: string;
      name?: string;
      initialCluster?: string;
      peerUrl?: string;
    }>();
    let target: RestoreTarget;
    if (o.etcdDataDir !== undefined) {
      if (o.dataDir !== undefined) throw new Error("give --data-dir or --etcd-data-dir, not both");
      for (const [flag, v] of [
        ["--name", o.name],
        ["--initial-cluster", o.initialCluster],
        ["--peer-url", o.peerUrl],
      ] as const) {
        if (!v) throw new Error(`--etcd-data-dir needs ${flag}`);
      }
      target = { dataDir: o.etcdDataDir, name: o.name!, initialCluster: o.initialCluster!, peerUrl: o.peerUrl! };
    } else {
      if (o.dataDir === undefined) throw new Error("give --data-dir (embedded etcd) or --etcd-data-dir (a member)");
      // As the embedded etcd names and addresses its member (etcd/embedded-etcd.ts).
      const peerUrl = `http://127.0.0.1:${Number(o.etcdPort) + 1}`;
      target = { dataDir: path.join(o.dataDir, "etcd"), name: "grove", initialCluster: `grove=${peerUrl}`, peerUrl };
    }
    const status = await restore(file, target);
    process.stdout.write(`${JSON.stringify({ file, dataDir: target.dataDir, ...status })}\n`);
  });
}
