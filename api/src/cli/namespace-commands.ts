// Namespaces on the command line: `grove create namespace NAME [--policy L]
// [--quota cpu=2,memory=4Gi,instances=10,hostPorts=4] [--host-ports A-B]`,
// `grove get namespaces [NAME]`, `grove describe namespace NAME` (quota and
// usage) and `grove delete namespace NAME [--cascade]`. They hang under the
// existing verbs as subcommands, so program.ts only calls
// registerNamespaceCommands once, after its own verbs.
import { Command, Option } from "commander";
import * as YAML from "yaml";
import { API_VERSION } from "../schemas";
import {
  POLICY_LEVELS,
  type Namespace,
  type NamespaceQuota,
  type NamespaceSpec,
  type NamespaceUsage,
} from "../namespace-schema";
import { parseBytes, parseCpuMillis } from "../quantity";
import { connect, type CliClient, type CliDeps } from "./deps";
import { UsageError } from "./kinds";
import { columnWidths, formatAge, formatRow } from "./render/table";

const WORDS = { one: "namespace", aliases: ["namespaces", "ns"] };
const QUOTA_KEYS = ["cpu", "memory", "instances", "hostPorts"] as const;

/** "cpu=2,memory=4Gi,instances=10" -> a NamespaceQuota; a UsageError names the bad part. */
export function parseQuota(text: string): NamespaceQuota {
  const out: Record<string, string | number> = {};
  for (const part of text.split(",").filter(Boolean)) {
    const [k, v] = part.split("=", 2) as [string, string | undefined];
    if (!(QUOTA_KEYS as readonly string[]).includes(k)) {
      throw new UsageError(`--quota: unknown quota "${k}" (known: ${QUOTA_KEYS.join(", ")})`);
    }
    if (v === undefined || v === "") throw new UsageError(`--quota: ${k} needs a value (${k}=...)`);
    try {
      if (k === "cpu") parseCpuMillis(v);
      else if (k === "memory") parseBytes(v);
      else if (!/^[0-9]+$/.test(v)) throw new Error(`must be a whole number, got "${v}"`);
    } catch (err) {
      throw new UsageError(`--quota: ${k}: ${(err as Error).message}`);
    }
    out[k] = k === "cpu" || k === "memory" ? v : Number(v);
  }
  return out as NamespaceQuota;
}

function parseRange(text: string): { first: number; last: number } {
  const m = /^([0-9]{1,5})-([0-9]{1,5})$/.exec(text);
  if (!m) throw new UsageError(`--host-ports: give a range FIRST-LAST, e.g. 20000-20099, not "${text}"`);
  return { first: Number(m[1]), last: Number(m[2]) };
}

function bytes(n: number | undefined): string {
  if (n === undefined) return "-";
  for (const [unit, f] of [
    ["Gi", 2 ** 30],
    ["Mi", 2 ** 20],
    ["Ki", 2 ** 10],
  ] as const) {
    if (n >= f && n % f === 0) return `${n / f}${unit}`;
  }
  return String(n);
}

const SHOW: Record<keyof NamespaceUsage, [string, (n: number | undefined) => string]> = {
  cpuMillis: ["cpu", (n) => (n === undefined ? "-" : `${n}m`)],
  memoryBytes: ["memory", bytes],
  instances: ["instances", (n) => (n === undefined ? "-" : String(n))],
  hostPorts: ["hostPorts", (n) => (n === undefined ? "-" : String(n))],
};

/** `grove describe namespace NAME`. */
export function describeNamespace(ns: Namespace, now: number): string[] {
  const range = ns.spec?.hostPortRange;
  const lines = [
    `Name:         ${ns.metadata.name}`,
    `Policy:       ${ns.spec?.policy ?? "restricted"}`,
    `Host ports:   ${range ? `${range.first}-${range.last}` : "<none>"}`,
    `Age:          ${formatAge(ns.metadata.creationTimestamp, now)}`,
    "Quota:",
  ];
  const rows = [["  RESOURCE", "USED", "HARD"]];
  for (const k of Object.keys(SHOW) as Array<keyof NamespaceUsage>) {
    const [name, fmt] = SHOW[k];
    rows.push([`  ${name}`, fmt(ns.status?.used?.[k] ?? 0), fmt(ns.status?.hard?.[k])]);
  }
  const widths = columnWidths(rows);
  return [...lines, ...rows.map((r) => formatRow(r, widths))];
}

function usedOfHard(ns: Namespace, k: keyof NamespaceUsage): string {
  const fmt = SHOW[k][1];
  const hard = ns.status?.hard?.[k];
  return hard === undefined ? fmt(ns.status?.used?.[k] ?? 0) : `${fmt(ns.status?.used?.[k] ?? 0)}/${fmt(hard)}`;
}

function call(client: CliClient): NonNullable<CliClient["call"]> {
  if (!client.call) throw new UsageError("this client cannot reach namespaces");
  return client.call.bind(client);
}

const nsPath = (name: string) => `/v1/namespaces/${encodeURIComponent(name)}`;

export function registerNamespaceCommands(program: Command, deps: CliDeps): void {
  const verb = (name: string) => {
    const c = program.commands.find((x) => x.name() === name);
    if (!c) throw new Error(`grove has no "${name}" command to hang namespace commands under`);
    // Subcommands would otherwise give the verb an implicit "help" subcommand ("grove get help").
    return c.helpCommand(false);
  };

  verb("create")
    .command(WORDS.one)
    .description("create a Namespace: a quota and an admission policy for its Apps and Tasks")
    .argument("<name>", "the namespace (DNS label)")
    .addOption(new Option("--policy <level>", "admission level").choices(POLICY_LEVELS).default("restricted"))
    .option("--quota <list>", "e.g. cpu=2,memory=4Gi,instances=10,hostPorts=4", parseQuota)
    .option("--host-ports <range>", "fixed host ports its Apps may publish, e.g. 20000-20099", parseRange)
    .action(
      async (
        name: string,
        opts: { policy: string; quota?: NamespaceQuota; hostPorts?: NamespaceSpec["hostPortRange"] },
        cmd: Command,
      ) => {
        const { client } = connect(cmd, deps);
        const spec = {
          policy: opts.policy,
          ...(opts.quota ? { quota: opts.quota } : {}),
          ...(opts.hostPorts ? { hostPortRange: opts.hostPorts } : {}),
        } as NamespaceSpec;
        await call(client)("POST", "/v1/namespaces", {
          apiVersion: API_VERSION,
          kind: "Namespace",
          metadata: { name },
          spec,
        });
        deps.out(`namespace/${name} created`);
      },
    );

  verb("get")
    .command(WORDS.aliases[0]!)
    .aliases([WORDS.one, ...WORDS.aliases.slice(1)])
    .description("list Namespaces with their quota usage (used/hard), or show one")
    .argument("[name]", "one namespace")
    .action(async (name: string | undefined, _opts: unknown, cmd: Command) => {
      // -o is the get verb's own option (the parent parses it, wherever it is written).
      const output = cmd.optsWithGlobals<{ output?: string }>().output ?? "table";
      const { client } = connect(cmd, deps);
      const items =
        name !== undefined
          ? [await call(client)<Namespace>("GET", nsPath(name))]
          : (await call(client)<{ items: Namespace[] }>("GET", "/v1/namespaces")).items;
      if (output === "json") return deps.out(JSON.stringify(name !== undefined ? items[0] : { items }, null, 2));
      if (output === "yaml") return deps.out(YAML.stringify(name !== undefined ? items[0] : { items }).trimEnd());
      const rows = [["NAME", "POLICY", "CPU", "MEMORY", "INSTANCES", "HOSTPORTS", "AGE"]];
      for (const ns of items) {
        rows.push([
          ns.metadata.name,
          ns.spec?.policy ?? "restricted",
          ...(Object.keys(SHOW) as Array<keyof NamespaceUsage>).map((k) => usedOfHard(ns, k)),
          formatAge(ns.metadata.creationTimestamp, deps.now()),
        ]);
      }
      if (items.length === 0) return deps.err("No namespaces found.");
      const widths = columnWidths(rows);
      for (const r of rows) deps.out(formatRow(r, widths));
    });

  verb("describe")
    .command(WORDS.one)
    .alias("ns")
    .description("a Namespace's policy, quota and usage")
    .argument("<name>", "the namespace")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client } = connect(cmd, deps);
      for (const line of describeNamespace(await call(client)<Namespace>("GET", nsPath(name)), deps.now())) {
        deps.out(line);
      }
    });

  verb("delete")
    .command(WORDS.one)
    .alias("ns")
    .description("delete a Namespace (refused while it holds objects, unless --cascade)")
    .argument("<name>", "the namespace")
    .option("--cascade", "delete its Apps, Tasks, Secrets and tokens too")
    .action(async (name: string, opts: { cascade?: boolean }, cmd: Command) => {
      const { client } = connect(cmd, deps);
      await call(client)("DELETE", `${nsPath(name)}${opts.cascade ? "?cascade=true" : ""}`);
      deps.out(`namespace/${name} deleted`);
    });
}
