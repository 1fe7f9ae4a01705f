// Egress rules per instance, in the spirit of Garden's NetOut: one iptables
// chain per instance (GROVE-EG-<hash of uid>) in the filter table, reached
// from GROVE-EGRESS, which sits first in FORWARD. The instance chain lets
// replies through, RETURNs (allows) what a rule matches, and REJECTs the rest
// when the default is deny. Removing the instance removes its chain.
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const exec = promisify(execFile);

export const EGRESS_CHAIN = "GROVE-EGRESS";
const INSTANCE_CHAIN_PREFIX = "GROVE-EG-";

export type EgressDefault = "deny" | "allow";

export interface EgressRule {
  /** IPv4 CIDR ("10.0.0.0/8", "192.0.2.7/32"). */
  cidr: string;
  protocol: "tcp" | "udp" | "icmp" | "all";
  /** tcp/udp destination ports, inclusive; absent: any port. */
  ports?: { first: number; last: number };
}

export function instanceChain(uid: string): string {
  return INSTANCE_CHAIN_PREFIX + createHash("sha256").update(uid).digest("hex").slice(0, 16);
}

export async function iptables(args: string[]): Promise<string> {
  try {
    const { stdout } = await exec("iptables", ["-w", "10", ...args]);
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    throw new Error(`iptables ${args.join(" ")}: ${(e.stderr || e.message || String(err)).trim()}`);
  }
}

export async function tryIptables(args: string[]): Promise<boolean> {
  try {
    await iptables(args);
    return true;
  } catch {
    return false;
  }
}

/** Serializes the agent's own iptables edits (the xtables lock covers single commands only). */
let chainLock: Promise<unknown> = Promise.resolve();
export function locked<T>(fn: () => Promise<T>): Promise<T> {
  const next = chainLock.then(fn, fn);
  chainLock = next.catch(() => undefined);
  return next;
}

/** The iptables rule specs of an instance chain, in order. */
export function egressRuleSpecs(rules: readonly EgressRule[], def: EgressDefault): string[][] {
  const specs: string[][] = [["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"]];
  for (const r of rules) {
    // Match the destination the instance dialed (conntrack's original one):
    // a published port on this very node is DNATed before FORWARD sees it.
    const spec: string[] = [];
    if (r.protocol !== "all") spec.push("-p", r.protocol);
    spec.push("-m", "conntrack", "--ctorigdst", r.cidr);
    if (r.ports && (r.protocol === "tcp" || r.protocol === "udp")) {
      const ports = r.ports.first === r.ports.last ? `${r.ports.first}` : `${r.ports.first}:${r.ports.last}`;
      spec.push("--ctorigdstport", ports);
    }
    spec.push("-j", "RETURN");
    specs.push(spec);
  }
  if (def === "deny") specs.push(["-j", "REJECT", "--reject-with", "icmp-port-unreachable"]);
  return specs;
}

/** Makes sure GROVE-EGRESS exists and is the first rule of FORWARD (CNI plugins insert theirs at the top too). */
async function ensureHook(): Promise<void> {
  if (!(await tryIptables(["-n", "-L", EGRESS_CHAIN]))) await tryIptables(["-N", EGRESS_CHAIN]);
  const forward = await iptables(["-S", "FORWARD"]);
  const first = forward.split("\n").find((l) => l.startsWith("-A FORWARD"));
  if (first === `-A FORWARD -j ${EGRESS_CHAIN}`) return;
  while (await tryIptables(["-D", "FORWARD", "-j", EGRESS_CHAIN])) {
    /* remove every copy, then put one first */
  }
  await iptables(["-I", "FORWARD", "1", "-j", EGRESS_CHAIN]);
}

/** Installs (or replaces) the egress chain of an instance with address `ip`. */
export function applyEgress(uid: string, ip: string, rules: readonly EgressRule[], def: EgressDefault): Promise<void> {
  return locked(async () => {
    await ensureHook();
    const chain = instanceChain(uid);
    await removeChainUnlocked(chain);
    await iptables(["-N", chain]);
    for (const spec of egressRuleSpecs(rules, def)) await iptables(["-A", chain, ...spec]);
    await iptables(["-A", EGRESS_CHAIN, "-s", `${ip}/32`, "-m", "comment", "--comment", `grove:${uid}`, "-j", chain]);
  });
}

/** Removes an instance's chain and the jump to it; nothing there is fine. */
export function removeEgress(uid: string): Promise<void> {
  return locked(() => removeChainUnlocked(instanceChain(uid)));
}

async function removeChainUnlocked(chain: string): Promise<void> {
  if (await tryIptables(["-n", "-L", EGRESS_CHAIN])) {
    const rules = await iptables(["-S", EGRESS_CHAIN]);
    for (const line of rules.split("\n")) {
      if (!line.startsWith(`-A ${EGRESS_CHAIN} `) || !line.endsWith(`-j ${chain}`)) continue;
      await iptables(["-D", ...splitRule(line.slice(3))]);
    }
  }
  if (await tryIptables(["-n", "-L", chain])) {
    await iptables(["-F", chain]);
    await iptables(["-X", chain]);
  }
}

/** Removes the chains of instances not in `keep` (after a restart); returns the chains removed. */
export function removeStaleEgress(keepUids: ReadonlySet<string>): Promise<string[]> {
  return locked(async () => {
    const keep = new Set([...keepUids].map(instanceChain));
    const all = await iptables(["-S"]);
    const chains = all
      .split("\n")
      .filter((l) => l.startsWith(`-N ${INSTANCE_CHAIN_PREFIX}`))
      .map((l) => l.slice(3).trim());
    const removed: string[] = [];
    for (const c of chains) {
      if (keep.has(c)) continue;
      await removeChainUnlocked(c);
      removed.push(c);
    }
    return removed;
  });
}

/**
 * Removes the bridge plugin's masquerade rule and chain of a container by
 * their comment (`name: "<net>" id: "<cid>"`), as Nomad does: the plugin's
 * DEL finds the addresses inside the namespace, so without it (a namespace
 * already gone) it cannot. Returns the chains removed.
 */
export function removeIpMasqByComment(network: string, containerId: string): Promise<string[]> {
  return locked(async () => {
    const marker = `name: \\"${network}\\" id: \\"${containerId}\\"`;
    const rules = (await iptables(["-t", "nat", "-S", "POSTROUTING"])).split("\n");
    const removed: string[] = [];
    for (const line of rules) {
      if (!line.startsWith("-A POSTROUTING ") || !line.includes(marker)) continue;
      const chain = /-j (CNI-[0-9a-f]+)$/.exec(line)?.[1];
      await iptables(["-t", "nat", "-D", ...splitRule(line.slice(3))]);
      if (chain) {
        await tryIptables(["-t", "nat", "-F", chain]);
        await tryIptables(["-t", "nat", "-X", chain]);
        removed.push(chain);
      }
    }
    return removed;
  });
}

/** Every GROVE-EG-* chain in the current network namespace (tests, leak checks). */
export async function listEgressChains(): Promise<string[]> {
  const all = await iptables(["-S"]);
  return all
    .split("\n")
    .filter((l) => l.startsWith(`-N ${INSTANCE_CHAIN_PREFIX}`))
    .map((l) => l.slice(3).trim());
}

/** Splits an `iptables -S` rule into arguments, honouring double quotes (comments). */
export function splitRule(rule: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(rule); m; m = re.exec(rule)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!);
  return out;
}
