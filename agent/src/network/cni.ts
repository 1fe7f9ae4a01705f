// The caller side of the CNI spec (cniVersion 1.0.0), as libcni does it:
// ADD runs the plugins of a list in order, each getting the previous result
// as prevResult; the final result is cached on disk; DEL runs them in reverse
// with the cached result (best effort, idempotent, also after a failed ADD);
// CHECK runs them in order with the cached result. Plugins get
// runtimeConfig only for the capabilities they declare.
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";

export const CNI_VERSION = "1.0.0";

/** One plugin object of a conflist, as written (type, capabilities, anything else). */
export interface CniPluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniNetworkList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: CniPluginConf[];
}

export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol: "tcp" | "udp";
  hostIP?: string;
}

/** What a container's ADD/DEL/CHECK is about. */
export interface CniRuntimeConf {
  containerId: string;
  /** Path of the network namespace file; may be absent on DEL. */
  netns?: string;
  ifName: string;
  args?: Record<string, string>;
  /** runtimeConfig by capability name, e.g. { portMappings: [...] }. */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniIp {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: Array<{ name: string; mac?: string; mtu?: number; sandbox?: string }>;
  ips?: CniIp[];
  routes?: Array<{ dst: string; gw?: string }>;
  dns?: Record<string, unknown>;
}

/** A plugin failed: its error JSON (code, msg, details) when it wrote one. */
export class CniError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly code: number,
    readonly msg: string,
    readonly details?: string,
  ) {
    super(`CNI plugin ${plugin} ${command} failed (code ${code}): ${msg}${details ? ` (${details})` : ""}`);
    this.name = "CniError";
  }
}

/** The spec's well-known error codes. */
export const CNI_ERROR_CODES: Record<number, string> = {
  1: "incompatible CNI version",
  2: "unsupported field in network configuration",
  3: "container unknown or does not exist",
  4: "invalid necessary environment variables",
  5: "I/O failure",
  6: "failed to decode content",
  7: "invalid network config",
  11: "try again later",
};

interface CachedEntry {
  kind: "cniCacheV1";
  containerId: string;
  ifName: string;
  networkName: string;
  netns?: string;
  /** The capability arguments of the ADD, so that DEL can undo portMappings. */
  capabilityArgs?: Record<string, unknown>;
  result: CniResult;
}

export interface CniCallerOptions {
  /** Directories searched for plugin binaries, in order. */
  pluginDirs: string[];
  /** Where results are cached (<cacheDir>/results/<net>-<cid>-<ifname>). */
  cacheDir: string;
  /** Extra environment for plugins (PATH is inherited when not given). */
  env?: NodeJS.ProcessEnv;
  /** Per-plugin time limit (default 60 s). */
  timeoutMs?: number;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export class CniCaller {
  /** ADDs wait here, one at a time, until one has succeeded (see add). */
  private firstAdds: Promise<unknown> = Promise.resolve();
  private added = false;

  constructor(private readonly opts: CniCallerOptions) {}

  /**
   * ADD: every plugin in order; the final result is cached and returned. Until one ADD has
   * succeeded they run one at a time: the first ones on a node create what the plugins share
   * (the firewall plugin checks for its chains, then creates them), and two at once failed with
   * `iptables -N GROVE-ADMIN: File exists` (2 of 13 quickstarts started an instance that way).
   */
  async add(list: CniNetworkList, rt: CniRuntimeConf): Promise<CniResult> {
    if (this.added) return this.addNow(list, rt);
    const run = this.firstAdds.then(() => this.addNow(list, rt));
    this.firstAdds = run.catch(() => undefined);
    const result = await run;
    this.added = true;
    return result;
  }

  private async addNow(list: CniNetworkList, rt: CniRuntimeConf): Promise<CniResult> {
    checkRuntimeConf(rt, true);
    let prev: CniResult | undefined;
    for (const plugin of list.plugins) {
      prev = (await this.exec("ADD", list, plugin, rt, prev)) as CniResult;
    }
    const result = prev ?? { cniVersion: list.cniVersion };
    await this.writeCache(list, rt, result);
    return result;
  }

  /**
   * DEL: every plugin in reverse order with the cached result. Idempotent:
   * without a cache entry plugins still run (they must tolerate it), and
   * the cache entry goes at the end. Runs every plugin even when one fails;
   * throws the first failure afterwards.
   */
  async del(list: CniNetworkList, rt: CniRuntimeConf): Promise<void> {
    checkRuntimeConf(rt, false);
    const cached = await this.readCache(list.name, rt.containerId, rt.ifName);
    const conf: CniRuntimeConf = { ...rt, capabilityArgs: rt.capabilityArgs ?? cached?.capabilityArgs };
    // The namespace of the ADD, if the caller names none and it still exists.
    if (conf.netns === undefined && cached?.netns && (await isNamespaceFile(cached.netns))) conf.netns = cached.netns;
    let first: unknown;
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.exec("DEL", list, plugin, conf, cached?.result);
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
    await fs.rm(this.cachePath(list.name, rt.containerId, rt.ifName), { force: true });
  }

  /** CHECK: every plugin in order with the cached result; throws what a plugin reports. */
  async check(list: CniNetworkList, rt: CniRuntimeConf): Promise<void> {
    checkRuntimeConf(rt, true);
    if (list.disableCheck) return;
    const cached = await this.readCache(list.name, rt.containerId, rt.ifName);
    if (!cached) throw new Error(`CNI CHECK: no cached result for ${rt.containerId}/${rt.ifName} in ${list.name}`);
    const conf: CniRuntimeConf = { ...rt, capabilityArgs: rt.capabilityArgs ?? cached.capabilityArgs };
    for (const plugin of list.plugins) await this.exec("CHECK", list, plugin, conf, cached.result);
  }

  /**
   * Records an ADD's result without running the plugins: for a container
   * whose network was set up by an earlier agent run whose cache is gone, so
   * that DEL can undo it (port mappings included).
   */
  async recordResult(list: CniNetworkList, rt: CniRuntimeConf, result: CniResult): Promise<void> {
    checkRuntimeConf(rt, true);
    await this.writeCache(list, rt, result);
  }

  /** The cached ADD result, if any. */
  async cachedResult(networkName: string, containerId: string, ifName: string): Promise<CniResult | undefined> {
    return (await this.readCache(networkName, containerId, ifName))?.result;
  }

  /** Container ids with a cached result for this network (to find leftovers). */
  async cachedContainers(networkName: string): Promise<Array<{ containerId: string; ifName: string }>> {
    let names: string[];
    try {
      names = await fs.readdir(this.resultsDir());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const out: Array<{ containerId: string; ifName: string }> = [];
    for (const n of names) {
      if (!n.startsWith(`${networkName}-`)) continue;
      try {
        const e = JSON.parse(await fs.readFile(path.join(this.resultsDir(), n), "utf8")) as CachedEntry;
        if (e.networkName === networkName) out.push({ containerId: e.containerId, ifName: e.ifName });
      } catch {
        /* unreadable: skipped, as libcni does */
      }
    }
    return out;
  }

  private resultsDir(): string {
    return path.join(this.opts.cacheDir, "results");
  }

  private cachePath(net: string, cid: string, ifName: string): string {
    return path.join(this.resultsDir(), `${net}-${cid}-${ifName}`);
  }

  private async writeCache(list: CniNetworkList, rt: CniRuntimeConf, result: CniResult): Promise<void> {
    const entry: CachedEntry = {
      kind: "cniCacheV1",
      containerId: rt.containerId,
      ifName: rt.ifName,
      networkName: list.name,
      netns: rt.netns,
      capabilityArgs: rt.capabilityArgs,
      result,
    };
    await fs.mkdir(this.resultsDir(), { recursive: true, mode: 0o700 });
    const file = this.cachePath(list.name, rt.containerId, rt.ifName);
    const tmp = `${file}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(entry), { mode: 0o600 });
    await fs.rename(tmp, file);
  }

  private async readCache(net: string, cid: string, ifName: string): Promise<CachedEntry | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.cachePath(net, cid, ifName), "utf8")) as CachedEntry;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      if (err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  /** The config one plugin sees on stdin. */
  static pluginConfig(
    list: CniNetworkList,
    plugin: CniPluginConf,
    rt: CniRuntimeConf,
    prevResult: CniResult | undefined,
  ): Record<string, unknown> {
    const { capabilities, ...rest } = plugin;
    const conf: Record<string, unknown> = { ...rest, cniVersion: list.cniVersion, name: list.name };
    const runtimeConfig: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(capabilities ?? {})) {
      if (on && rt.capabilityArgs && cap in rt.capabilityArgs) runtimeConfig[cap] = rt.capabilityArgs[cap];
    }
    if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
    if (prevResult) conf.prevResult = prevResult;
    return conf;
  }

  private async findPlugin(type: string): Promise<string> {
    if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw new Error(`CNI plugin type ${JSON.stringify(type)} is not a plain name`);
    for (const dir of this.opts.pluginDirs) {
      const p = path.join(dir, type);
      try {
        await fs.access(p, fs.constants.X_OK);
        return p;
      } catch {
        /* next directory */
      }
    }
    throw new Error(`CNI plugin ${type} not found in ${this.opts.pluginDirs.join(":")}`);
  }

  private async exec(
    command: "ADD" | "DEL" | "CHECK",
    list: CniNetworkList,
    plugin: CniPluginConf,
    rt: CniRuntimeConf,
    prevResult: CniResult | undefined,
  ): Promise<unknown> {
    const bin = await this.findPlugin(plugin.type);
    const stdin = JSON.stringify(CniCaller.pluginConfig(list, plugin, rt, prevResult));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.opts.env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: rt.containerId,
      CNI_IFNAME: rt.ifName,
      CNI_PATH: this.opts.pluginDirs.join(":"),
    };
    if (rt.netns) env.CNI_NETNS = rt.netns;
    else delete env.CNI_NETNS;
    if (rt.args && Object.keys(rt.args).length > 0) {
      env.CNI_ARGS = Object.entries(rt.args)
        .map(([k, v]) => `${k}=${v}`)
        .join(";");
    } else delete env.CNI_ARGS;
    const { code, stdout, stderr } = await run(bin, stdin, env, this.opts.timeoutMs ?? 60_000);
    if (code !== 0) {
      let parsed: { code?: number; msg?: string; details?: string } | undefined;
      try {
        parsed = JSON.parse(stdout) as typeof parsed;
      } catch {
        parsed = undefined;
      }
      const errCode = typeof parsed?.code === "number" ? parsed.code : -1;
      const msg = parsed?.msg || stderr.trim() || stdout.trim() || `exit status ${code}`;
      throw new CniError(plugin.type, command, errCode, msg, parsed?.details);
    }
    if (command !== "ADD") return undefined;
    try {
      return JSON.parse(stdout) as unknown;
    } catch {
      throw new CniError(plugin.type, command, 6, `result is not JSON: ${stdout.slice(0, 200)}`);
    }
  }
}

const NSFS_MAGIC = 0x6e736673;

/** Whether `file` is a namespace (nsfs), i.e. a mounted netns file or /proc/PID/ns/net. */
export async function isNamespaceFile(file: string): Promise<boolean> {
  try {
    return (await fs.statfs(file)).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

function checkRuntimeConf(rt: CniRuntimeConf, needNetns: boolean): void {
  if (!CONTAINER_ID.test(rt.containerId))
    throw new Error(`CNI containerId ${JSON.stringify(rt.containerId)} must match ${CONTAINER_ID.source}`);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(rt.ifName))
    throw new Error(`CNI ifName ${JSON.stringify(rt.ifName)} is not a valid interface name`);
  if (needNetns && !rt.netns) throw new Error("CNI netns is required for ADD and CHECK");
}

function run(
  bin: string,
  stdin: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.on("error", () => undefined);
    p.stdin.end(stdin);
  });
}
