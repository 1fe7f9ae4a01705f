// Keeps instances away from the node's own services. portmap (Debian's
// containernetworking-plugins 1.1.1) DNATs every packet for a published port
// whose destination is a local address, from PREROUTING and from OUTPUT, and
// with snat sets route_localnet=1 on the bridge so that connections from
// 127.0.0.1 can be sent there. Left alone, that lets an instance that
// publishes 7480 answer the host's own `curl 127.0.0.1:7480`, and lets a
// container with NET_RAW send frames for 127.0.0.1 to the bridge that the
// host accepts (CVE-2020-8558). So, in the node's network namespace:
//
// - nat CNI-HOSTPORT-DNAT starts with `-d 127.0.0.0/8 -j RETURN`: loopback is
//   never DNATed into an instance. The agent creates the chain before the
//   first CNI ADD (portmap appends its per-instance rules to an existing one)
//   and keeps the rule first.
// - route_localnet goes back to 0 on the interfaces of every CNI result.
// - raw PREROUTING jumps first to GROVE-NODE-RAW, which drops packets for
//   127.0.0.0/8 that did not arrive on lo (kube-proxy's CVE-2020-8558 rule,
//   one step earlier): a martian the kernel would drop anyway, unless
//   something turned route_localnet on again.
// - filter INPUT jumps first to GROVE-NODE-INPUT for traffic from the
//   instance bridge, or from the instance subnet on any other interface but
//   lo (conflists without a bridge): replies pass, the node ports the operator
//   allows (e.g. udp/53) pass on to the rest of INPUT, everything else is
//   rejected. Published ports of instances are DNATed in PREROUTING and take
//   FORWARD, so they keep working.
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import { promisify } from "node:util";
import { iptables, locked, splitRule, tryIptables } from "./egress";
import type { NodePortRule } from "./host-ports";

const exec = promisify(execFile);

export const NODE_INPUT_CHAIN = "GROVE-NODE-INPUT";
export const NODE_RAW_CHAIN = "GROVE-NODE-RAW";
/** portmap's top-level DNAT chain (created by portmap when missing, never removed by it). */
export const HOSTPORT_DNAT_CHAIN = "CNI-HOSTPORT-DNAT";
/** Marks the agent's rule in portmap's chain (no spaces: iptables -S prints it as is). */
export const LOOPBACK_GUARD_COMMENT = "grove-no-loopback-dnat";

export interface NodeGuardConfig {
  /** The node's instance subnet. */
  subnet: string;
  /** Interfaces instance traffic arrives on (the bridge). */
  interfaces: readonly string[];
  /** What instances may open on the node's own addresses. */
  allowedNodePorts: readonly NodePortRule[];
}

/** The rules of GROVE-NODE-INPUT, in order. */
export function nodeInputRules(allowed: readonly NodePortRule[]): string[][] {
  const rules: string[][] = [["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"]];
  for (const p of allowed) {
    const ports = p.first === p.last ? `${p.first}` : `${p.first}:${p.last}`;
    rules.push(["-p", p.protocol, "-m", p.protocol, "--dport", ports, "-j", "RETURN"]);
  }
  rules.push(["-j", "REJECT", "--reject-with", "icmp-port-unreachable"]);
  return rules;
}

export const NODE_RAW_RULES: readonly string[][] = [["-d", "127.0.0.0/8", "!", "-i", "lo", "-j", "DROP"]];
const LOOPBACK_GUARD = ["-d", "127.0.0.0/8", "-m", "comment", "--comment", LOOPBACK_GUARD_COMMENT, "-j", "RETURN"];

/**
 * Installs (or repairs) every rule above. One iptables-save when nothing
 * changed (CNI ADD runs it each time: an operator's flush or a first ADD
 * must not leave a window).
 */
export function ensureNodeGuard(cfg: NodeGuardConfig): Promise<void> {
  return locked(async () => {
    const rules = await saveRules();
    await ensureChain(rules, "raw", NODE_RAW_CHAIN, NODE_RAW_RULES);
    await ensureFirst(rules, "raw", "PREROUTING", [["-j", NODE_RAW_CHAIN]], (l) => l.endsWith(` -j ${NODE_RAW_CHAIN}`));
    await ensureChain(rules, "filter", NODE_INPUT_CHAIN, nodeInputRules(cfg.allowedNodePorts));
    const hooks = [
      ...cfg.interfaces.map((i) => ["-i", i, "-j", NODE_INPUT_CHAIN]),
      // Not from lo: the node's own connections from its gateway address are not an instance's.
      ["-s", cfg.subnet, "!", "-i", "lo", "-j", NODE_INPUT_CHAIN],
    ];
    await ensureFirst(rules, "filter", "INPUT", hooks, (l) => l.endsWith(` -j ${NODE_INPUT_CHAIN}`));
    if (!rules.get("nat")?.has(HOSTPORT_DNAT_CHAIN)) await tryIptables(["-t", "nat", "-N", HOSTPORT_DNAT_CHAIN]);
    await ensureFirst(rules, "nat", HOSTPORT_DNAT_CHAIN, [LOOPBACK_GUARD], (l) => l.includes(LOOPBACK_GUARD_COMMENT));
  });
}

/** Removes every rule and chain ensureNodeGuard made (node clean-up); what is gone already is fine. */
export function removeNodeGuard(): Promise<void> {
  return locked(async () => {
    await removeMatching("raw", "PREROUTING", (l) => l.endsWith(` -j ${NODE_RAW_CHAIN}`));
    await removeChain("raw", NODE_RAW_CHAIN);
    await removeMatching("filter", "INPUT", (l) => l.endsWith(` -j ${NODE_INPUT_CHAIN}`));
    await removeChain("filter", NODE_INPUT_CHAIN);
    await removeMatching("nat", HOSTPORT_DNAT_CHAIN, (l) => l.includes(LOOPBACK_GUARD_COMMENT));
  });
}

/**
 * Sets route_localnet back to 0 on these interfaces (portmap turns it on for
 * the bridge at every ADD); returns those that had it on.
 */
export async function resetRouteLocalnet(interfaces: readonly string[]): Promise<string[]> {
  const reset: string[] = [];
  for (const name of new Set(interfaces)) {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name) || name === "." || name === "..") continue;
    const file = `/proc/sys/net/ipv4/conf/${name}/route_localnet`;
    const value = await fs.readFile(file, "utf8").catch(() => undefined);
    if (value === undefined || value.trim() === "0") continue;
    await fs.writeFile(file, "0");
    reset.push(name);
  }
  return reset;
}

/** Every table's chains and their rules ("-A CHAIN ..." lines), as iptables-save prints them. */
type Ruleset = Map<string, Map<string, string[]>>;

async function saveRules(): Promise<Ruleset> {
  const { stdout } = await exec("iptables-save", []);
  const tables: Ruleset = new Map();
  let chains: Map<string, string[]> | undefined;
  for (const line of stdout.split("\n")) {
    if (line.startsWith("*")) tables.set(line.slice(1), (chains = new Map()));
    else if (line.startsWith(":")) chains?.set(line.slice(1).split(" ")[0]!, []);
    else if (line.startsWith("-A ")) chains?.get(line.split(" ")[1]!)?.push(line);
  }
  return tables;
}

/** Makes a chain hold exactly `rules`, replacing it in one iptables-restore transaction when it differs. */
async function ensureChain(rules: Ruleset, table: string, chain: string, want: readonly string[][]): Promise<void> {
  const lines = want.map((r) => `-A ${chain} ${r.join(" ")}`);
  const have = rules.get(table)?.get(chain);
  if (have && have.join("\n") === lines.join("\n")) return;
  await restore([`*${table}`, `:${chain} - [0:0]`, ...lines, "COMMIT", ""].join("\n"));
}

/** Makes `specs` the first rules of `parent`, in order, and removes other copies (`ours` says which rules are). */
async function ensureFirst(
  rules: Ruleset,
  table: string,
  parent: string,
  specs: readonly string[][],
  ours: (line: string) => boolean,
): Promise<void> {
  const lines = rules.get(table)?.get(parent) ?? [];
  const want = specs.map((s) => `-A ${parent} ${s.join(" ")}`);
  if (lines.filter(ours).length === want.length && want.every((w, i) => lines[i] === w)) return;
  for (const line of lines) if (ours(line)) await tryIptables(["-t", table, "-D", ...splitRule(line.slice(3))]);
  for (let i = specs.length - 1; i >= 0; i--) await iptables(["-t", table, "-I", parent, "1", ...specs[i]!]);
}

async function ruleLines(table: string, chain: string): Promise<string[]> {
  const out = await iptables(["-t", table, "-S", chain]).catch(() => "");
  return out.split("\n").filter((l) => l.startsWith(`-A ${chain} `));
}

async function removeMatching(table: string, chain: string, match: (line: string) => boolean): Promise<void> {
  for (const line of await ruleLines(table, chain)) {
    if (match(line)) await tryIptables(["-t", table, "-D", ...splitRule(line.slice(3))]);
  }
}

async function removeChain(table: string, chain: string): Promise<void> {
  if (!(await tryIptables(["-t", table, "-n", "-L", chain]))) return;
  await tryIptables(["-t", table, "-F", chain]);
  await tryIptables(["-t", table, "-X", chain]);
}

function restore(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn("iptables-restore", ["-w", "10", "--noflush"], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`iptables-restore: ${stderr.trim() || `exit status ${code}`}`)),
    );
    p.stdin.on("error", () => undefined);
    p.stdin.end(text);
  });
}
