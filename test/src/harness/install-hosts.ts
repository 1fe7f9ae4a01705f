// Hosts for the install-path tests (install-cluster.test.ts in npm test,
// install.test.ts in the chaos suite): network namespaces on a bridge, each
// with its own --root directory for deploy/install-*.sh, a release packed by
// deploy/pack.sh and unpacked the way an operator does, the installed units
// started as systemd would (systemd-unit.ts), and a tear-down that removes
// what the services made (containers, cgroups, mounts) and the network.
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { NativeRuntime } from "@grove/agent";
import { Cleanup, cgroupGone, linkGone, netnsGone } from "./cleanup";
import { sh } from "./hosts";
import { REPO_ROOT } from "./processes";
import { RUN_TAG, runSlot } from "./run-id";
import { startUnit, type RunningUnit } from "./systemd-unit";

const execAsync = promisify(execFile);

export const UNIT_DIR = "etc/systemd/system";

export interface InstHost {
  name: string;
  netns: string;
  veth: string;
  address: string;
  /** The host's --root: its /opt, /etc and /var (on the tmpfs, mode 0755: grove-server's unprivileged user reaches its data dir). */
  root: string;
  cgroupParent: string;
  /** The services running on the host, by unit name. */
  units: Map<string, RunningUnit>;
}

function freeSubnet(seed: number): string {
  const routes = sh("ip", ["-4", "route", "show", "table", "all"]);
  for (let k = 0; k < 4096; k++) {
    const n = (seed + k) % 4096;
    const prefix = `172.${16 + (n % 16)}.${Math.floor(n / 16) % 256}`;
    if (!routes.includes(`${prefix}.`)) return prefix;
  }
  throw new Error("no free 172.16.0.0/12 /24 for the install test's bridge");
}

/** Runs a command (inside `netns` when given); the error carries its output. */
export async function run(cmd: string, args: string[], netns?: string): Promise<{ stdout: string; stderr: string }> {
  const argv = netns ? ["nsenter", `--net=/run/netns/${netns}`, "--", cmd, ...args] : [cmd, ...args];
  try {
    return await execAsync(argv[0]!, argv.slice(1), { timeout: 120_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${argv.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
}

export function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
export const serverUp = (l: string): boolean => parseLine(l)?.msg === "grove-server is up";
export const agentUp = (l: string): boolean => parseLine(l)?.msg === "registered with the control plane";

export function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) =>
      (l.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))),
    )
    .filter((p) => p === dir || p.startsWith(dir + "/"));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function userExists(name: string): boolean {
  try {
    execFileSync("id", ["-u", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Phase timings (monotonic), printed with GROVE_TEST_VERBOSE: where a test's time goes. */
export class Phases {
  private readonly timings: [string, number][] = [];
  private mark = performance.now();

  constructor(private readonly what: string) {}

  phase(name: string): void {
    const now = performance.now();
    this.timings.push([name, Math.round(now - this.mark)]);
    this.mark = now;
  }

  print(): void {
    if (process.env.GROVE_TEST_VERBOSE)
      process.stderr.write(`${this.what} phases (ms): ${JSON.stringify(this.timings)}\n`);
  }
}

/**
 * Packs the built tree with deploy/pack.sh as release `version` into `out`,
 * checks the tarball against its .sha256 and unpacks it there, as an operator
 * does on a machine; resolves with the tarball and the unpacked grove-VERSION/.
 */
export async function packRelease(out: string, version: string): Promise<{ tarball: string; release: string }> {
  const tarball = (
    await run("bash", [path.join(REPO_ROOT, "deploy", "pack.sh"), "--out", out, "--version", version])
  ).stdout.trim();
  await run("sh", ["-c", `cd "${path.dirname(tarball)}" && sha256sum -c "${path.basename(tarball)}.sha256"`]);
  await run("tar", ["-xzf", tarball, "-C", out]);
  return { tarball, release: path.join(out, `grove-${version}`) };
}

/**
 * Network namespaces on one bridge, each a "machine" with its own --root
 * directory under `dir`. Names carry the test process' pid.
 */
export class InstallHosts {
  readonly hosts: InstHost[] = [];
  private bridge?: string;

  constructor(private readonly dir: string) {}

  /**
   * Mounts a tmpfs on the directory, then makes the bridge and one namespace
   * per name (addresses .10, .11, ...). The tmpfs: every host copies and
   * checksums the release's 7,000 files and the tear-down deletes them all; on
   * the machine's disk, shared with every other build and test, that took
   * minutes under load (deleting four copies alone 130 s). The scripts do
   * the same on either file system.
   */
  create(names: string[]): InstHost[] {
    const id = RUN_TAG;
    sh("mount", ["-t", "tmpfs", "-o", "size=2g,mode=0755", `grove-inst-${id}`, this.dir]);
    this.bridge = `gvib${id}`.slice(0, 15);
    const prefix = freeSubnet(runSlot(2048) + 2048);
    sh("ip", ["link", "add", this.bridge, "type", "bridge"]);
    sh("ip", ["addr", "add", `${prefix}.1/24`, "dev", this.bridge]);
    sh("ip", ["link", "set", this.bridge, "up"]);
    names.forEach((name, i) => {
      const h: InstHost = {
        name,
        netns: `grove-${id}-inst-${name}`,
        veth: `gvi${id}${name}`.slice(0, 15),
        address: `${prefix}.${10 + i}`,
        root: path.join(this.dir, `host-${name}`),
        cgroupParent: `grove-inst-${id}-${name}`,
        units: new Map(),
      };
      this.hosts.push(h);
      const peer = `gvj${id}${name}`.slice(0, 15);
      sh("ip", ["netns", "add", h.netns]);
      sh("ip", ["link", "add", h.veth, "type", "veth", "peer", "name", peer]);
      sh("ip", ["link", "set", peer, "netns", h.netns]);
      sh("ip", ["-n", h.netns, "link", "set", peer, "name", "eth0"]);
      sh("ip", ["-n", h.netns, "addr", "add", `${h.address}/24`, "dev", "eth0"]);
      sh("ip", ["-n", h.netns, "link", "set", "eth0", "up"]);
      sh("ip", ["-n", h.netns, "link", "set", "lo", "up"]);
      sh("ip", ["link", "set", h.veth, "master", this.bridge!, "up"]);
    });
    return this.hosts;
  }

  host(name: string): InstHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no install host ${name}`);
    return h;
  }

  /** The unit file the install script wrote on a host. */
  unitFile(h: InstHost, unit: string): string {
    return path.join(h.root, UNIT_DIR, `${unit}.service`);
  }

  /** Starts an installed unit's ExecStart in the host's namespace; resolves once `ready` matches a line. */
  async start(h: InstHost, unit: string, ready: (line: string) => boolean, timeoutMs = 60_000): Promise<RunningUnit> {
    const running = await startUnit(this.unitFile(h, unit), h.netns, ready, timeoutMs);
    h.units.set(unit, running);
    return running;
  }

  /** systemctl stop: SIGTERM to the service's main process (KillMode=process for the agent). */
  async stop(h: InstHost, unit: string): Promise<void> {
    await h.units.get(unit)?.stop();
    h.units.delete(unit);
  }

  /**
   * Stops every service (agents first, the server last), removes what the
   * agents left (containers, cgroups, mounts under `dir`), the namespaces, the
   * bridge, `users` and `dir`; throws one error naming what it could not remove.
   */
  async destroy(users: string[], phases?: Phases): Promise<void> {
    const c = new Cleanup(`install hosts ${RUN_TAG}`);
    await Promise.all(this.hosts.map((h) => c.step(`stop the agent on ${h.name}`, () => this.stop(h, "grove-agent"))));
    phases?.phase("agents stopped");
    for (const h of this.hosts) await c.step(`stop the server on ${h.name}`, () => this.stop(h, "grove-server"));
    phases?.phase("server stopped");
    for (const h of this.hosts) {
      await c.step(
        `remove the containers and cgroup parent of ${h.name}`,
        async () => {
          const rt = new NativeRuntime({ cgroupParent: h.cgroupParent });
          await rt.cleanupStale();
          await rt.removeParentCgroup();
        },
        () => cgroupGone(h.cgroupParent),
      );
    }
    phases?.phase("containers and cgroups removed");
    for (const m of mountsUnder(this.dir).reverse()) await c.command("umount", ["-l", m]);
    for (const h of this.hosts) {
      await c.command("ip", ["netns", "del", h.netns], () => netnsGone(h.netns));
      await c.command("ip", ["link", "del", h.veth], () => linkGone(h.veth));
    }
    const bridge = this.bridge;
    if (bridge) await c.command("ip", ["link", "del", bridge], () => linkGone(bridge));
    for (const u of users) if (userExists(u)) await c.command("userdel", [u]);
    await c.step(`remove ${this.dir}`, () => fs.rmSync(this.dir, { recursive: true, force: true }));
    phases?.phase("network, users and files removed");
    c.finish();
  }
}
