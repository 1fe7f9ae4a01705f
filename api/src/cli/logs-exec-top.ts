// `grove logs`, `grove exec`, `grove top` and the usage lines of `grove
// describe`: instances' logs, commands and resource usage, served by their
// node's agent through the control plane.
import { Command, Option } from "commander";
import { GroveError } from "../errors";
import { formatBytes } from "../quantity";
import type { Instance, Node } from "../schemas";
import type { InstanceStats, StatsList } from "../exec-and-stats";
import { parseDuration, UsageError } from "./kinds";
import { renderTable } from "./render/table";
import type { CliClient, CliDeps } from "./deps";
import { taskAttempts } from "./task-attempts";

/** The CLI ends with this exit status, printing nothing more (grove exec passes the command's on). */
export class ExitStatus extends Error {
  constructor(readonly code: number) {
    super(`exit status ${code}`);
    this.name = "ExitStatus";
  }
}

type Connect = (cmd: Command) => { namespace: string; client: CliClient };

/** "APP/INDEX" -> the instance name "APP-INDEX"; a name without "/" as it is. */
export function instanceName(arg: string): string {
  const slash = arg.indexOf("/");
  if (slash < 0) return arg;
  const app = arg.slice(0, slash);
  const index = arg.slice(slash + 1);
  if (!app || !/^[0-9]+$/.test(index)) {
    throw new UsageError(`"${arg}" is not APP/INDEX (e.g. hello/0) or an instance name`);
  }
  return `${app}-${Number(index)}`;
}

function raw(deps: CliDeps, data: Uint8Array | string): void {
  if (deps.write) deps.write(data);
  else deps.out(Buffer.from(data).toString().replace(/\n$/, ""));
}

function rawErr(deps: CliDeps, data: Uint8Array | string): void {
  if (deps.writeErr) deps.writeErr(data);
  else deps.err(Buffer.from(data).toString().replace(/\n$/, ""));
}

/** Prefixes every complete line with "[name] " (the rest waits for its newline). */
function linePrefixer(name: string, emit: (s: string) => void): { push(d: Uint8Array): void; flush(): void } {
  let partial = "";
  const decoder = new TextDecoder();
  return {
    push(d) {
      partial += decoder.decode(d, { stream: true });
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        emit(`[${name}] ${partial.slice(0, nl + 1)}`);
        partial = partial.slice(nl + 1);
      }
    },
    flush() {
      partial += decoder.decode();
      if (partial) emit(`[${name}] ${partial}\n`);
      partial = "";
    },
  };
}

/** Instances `grove logs ARG` means: APP/INDEX or an instance name -> one; APP -> its instances; task/NAME -> its attempts. */
async function logTargets(client: CliClient, arg: string, namespace: string): Promise<string[]> {
  const task = /^tasks?\/(.+)$/.exec(arg)?.[1];
  if (task !== undefined) {
    const attempts = await taskAttempts(client, task, namespace);
    if (attempts.length === 0) {
      throw new GroveError("NotFound", `task ${task} has no attempts in namespace ${namespace} (or its TTL passed)`);
    }
    return attempts.map((i) => i.metadata.name);
  }
  if (arg.includes("/")) return [instanceName(arg)];
  const list = await client.list("Instance", { namespace });
  const mine = list.items
    .filter((i) => i.spec.app === arg && i.spec.task === undefined)
    .sort((a, b) => (a.spec.index ?? 0) - (b.spec.index ?? 0) || a.metadata.name.localeCompare(b.metadata.name));
  if (mine.length > 0) return mine.map((i) => i.metadata.name);
  if (list.items.some((i) => i.metadata.name === arg)) return [arg];
  throw new GroveError("NotFound", `no App ${arg} with instances and no instance ${arg} in namespace ${namespace}`);
}

function cpuMillisBetween(a: InstanceStats | undefined, b: InstanceStats): number | undefined {
  if (!a || a.cpuUsageNs < 0 || b.cpuUsageNs < 0) return undefined;
  const ms = Date.parse(b.sampledAt) - Date.parse(a.sampledAt);
  if (ms <= 0) return undefined;
  return Math.max(0, (b.cpuUsageNs - a.cpuUsageNs) / (ms * 1000));
}

function pct(part: number, whole: number | undefined): string {
  return whole && whole > 0 && part >= 0 ? `${Math.round((part / whole) * 100)}%` : "-";
}

function cpu(m: number | undefined): string {
  return m === undefined ? "-" : `${Math.round(m)}m`;
}

function bytes(n: number): string {
  return n < 0 ? "-" : formatBytes(n);
}

function num(n: number): string {
  return n < 0 ? "-" : String(n);
}

/** The usage lines `grove describe instance` adds. */
export function describeUsage(s: InstanceStats): string[] {
  const limits = s.limits;
  return [
    "Usage:",
    `  CPU time:      ${s.cpuUsageNs < 0 ? "-" : `${(s.cpuUsageNs / 1e9).toFixed(2)}s`}`,
    `  Memory:        ${bytes(s.memoryBytes)}${limits ? ` (${pct(s.memoryBytes, limits.memoryBytes)} of ${formatBytes(limits.memoryBytes)})` : ""}`,
    `  Memory peak:   ${bytes(s.memoryPeakBytes)}`,
    `  PIDs:          ${num(s.pids)}${limits ? ` of ${limits.pids}` : ""}`,
    `  OOM kills:     ${num(s.oomKills)}`,
    `  Sampled at:    ${s.sampledAt}`,
  ];
}

/** The usage table `grove describe app` adds (one row per running instance). */
export function describeAppUsage(list: StatsList, app: string): string[] {
  const mine = list.items.filter((s) => s.app === app);
  if (mine.length === 0) return [];
  return [
    "Usage:",
    ...renderTable([
      ["INSTANCE", "NODE", "CPU TIME", "MEMORY", "PEAK", "PIDS", "OOM"],
      ...mine.map((s) => [
        s.name,
        s.nodeName,
        s.cpuUsageNs < 0 ? "-" : `${(s.cpuUsageNs / 1e9).toFixed(2)}s`,
        bytes(s.memoryBytes),
        bytes(s.memoryPeakBytes),
        num(s.pids),
        num(s.oomKills),
      ]),
    ]).map((l) => `  ${l}`),
  ];
}

/** `grove top` tables from two samples (CPU is the rate between them). */
export function renderTop(
  what: "apps" | "instances" | "nodes",
  before: StatsList,
  after: StatsList,
  nodes: readonly Node[],
): string[] {
  const prev = new Map(before.items.map((s) => [s.uid, s]));
  const rows = after.items.map((s) => ({ s, cpu: cpuMillisBetween(prev.get(s.uid), s) }));
  const lines: string[] = [];
  if (what === "instances") {
    lines.push(
      ...renderTable([
        ["NAMESPACE", "NAME", "NODE", "CPU", "CPU%", "MEMORY", "MEM%", "PEAK", "PIDS", "OOM"],
        ...rows.map(({ s, cpu: c }) => [
          s.namespace,
          s.name,
          s.nodeName,
          cpu(c),
          c === undefined ? "-" : pct(c, s.limits?.cpuMillis),
          bytes(s.memoryBytes),
          pct(s.memoryBytes, s.limits?.memoryBytes),
          bytes(s.memoryPeakBytes),
          num(s.pids),
          num(s.oomKills),
        ]),
      ]),
    );
  } else if (what === "apps") {
    const apps = new Map<
      string,
      { ns: string; app: string; n: number; cpu?: number; mem: number; pids: number; oom: number }
    >();
    for (const { s, cpu: c } of rows) {
      const key = `${s.namespace}/${s.app || s.name}`;
      const a = apps.get(key) ?? { ns: s.namespace, app: s.app || s.name, n: 0, mem: 0, pids: 0, oom: 0 };
      a.n++;
      if (c !== undefined) a.cpu = (a.cpu ?? 0) + c;
      a.mem += Math.max(0, s.memoryBytes);
      a.pids += Math.max(0, s.pids);
      a.oom += Math.max(0, s.oomKills);
      apps.set(key, a);
    }
    lines.push(
      ...renderTable([
        ["NAMESPACE", "APP", "INSTANCES", "CPU", "MEMORY", "PIDS", "OOM"],
        ...[...apps.values()].map((a) => [
          a.ns,
          a.app,
          String(a.n),
          cpu(a.cpu),
          formatBytes(a.mem),
          String(a.pids),
          String(a.oom),
        ]),
      ]),
    );
  } else {
    const unavailable = new Set(after.unavailable.map((u) => u.nodeName));
    lines.push(
      ...renderTable([
        ["NODE", "INSTANCES", "CPU", "CPU%", "MEMORY", "MEM%", "PIDS"],
        ...nodes.map((n) => {
          const name = n.metadata.name;
          if (unavailable.has(name)) return [name, "-", "-", "-", "-", "-", "-"];
          const mine = rows.filter((r) => r.s.nodeName === name);
          const c = mine.some((r) => r.cpu !== undefined) ? mine.reduce((t, r) => t + (r.cpu ?? 0), 0) : undefined;
          const mem = mine.reduce((t, r) => t + Math.max(0, r.s.memoryBytes), 0);
          const alloc = n.status?.allocatable;
          return [
            name,
            String(mine.length),
            cpu(c),
            c === undefined ? "-" : pct(c, alloc?.cpuMillis),
            formatBytes(mem),
            pct(mem, alloc?.memoryBytes),
            String(mine.reduce((t, r) => t + Math.max(0, r.s.pids), 0)),
          ];
        }),
      ]),
    );
  }
  for (const u of after.unavailable) lines.push(`(node ${u.nodeName}: ${u.message})`);
  return lines;
}

interface LogsFlags {
  follow?: boolean;
  tail?: string;
  previous?: boolean;
  since?: string;
  timestamps?: boolean;
}

/** --since: "10s", "5m", "1h" (sinceSeconds, counted by the server) or an RFC 3339 time (sinceTime). */
export function parseSince(text: string): { sinceSeconds: number } | { sinceTime: string } {
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms) || !/(Z|[+-]\d{2}:\d{2})$/i.test(text)) {
      throw new UsageError(`--since: "${text}" is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)`);
    }
    return { sinceTime: new Date(ms).toISOString() };
  }
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw new UsageError(`--since: "${text}" is neither a duration (10s, 5m, 1h) nor an RFC 3339 time`);
  }
  return { sinceSeconds: Math.max(1, Math.ceil(ms / 1000)) };
}

export function registerOperationCommands(program: Command, deps: CliDeps, connect: Connect): void {
  program
    .command("logs")
    .description("print an instance's log (stdout and stderr); APP alone: every instance of the App")
    .argument("<target>", "APP/INDEX (e.g. hello/0), an instance name, APP, or task/NAME (every attempt)")
    .option("-f, --follow", "keep printing what is appended until interrupted")
    .option("--tail <lines>", "only the last N lines (then follow)")
    .option("-p, --previous", "the log of the instance of this name that ran before (restarted or replaced)")
    .option("--since <when>", "only lines that arrived since: a duration (10s, 5m, 1h) or an RFC 3339 time")
    .option("--timestamps", "prefix each line with the time it arrived (RFC 3339)")
    .action(async (target: string, opts: LogsFlags, cmd: Command) => {
      let tail: number | undefined;
      if (opts.tail !== undefined) {
        if (!/^[0-9]+$/.test(opts.tail)) throw new UsageError(`--tail: "${opts.tail}" is not a number of lines`);
        tail = Number(opts.tail);
      }
      if (opts.previous && opts.follow) throw new UsageError("--previous and --follow: a previous log does not grow");
      const { namespace, client } = connect(cmd);
      if (!client.logs) throw new Error("this client cannot read logs");
      const logs = client.logs.bind(client);
      const names = await logTargets(client, target, namespace);
      const options = {
        follow: Boolean(opts.follow),
        ...(tail !== undefined ? { tail } : {}),
        ...(opts.previous ? { previous: true } : {}),
        ...(opts.timestamps ? { timestamps: true } : {}),
        ...(opts.since !== undefined ? parseSince(opts.since) : {}),
      };
      if (names.length === 1) {
        for await (const chunk of await logs(names[0]!, namespace, options)) raw(deps, chunk);
        return;
      }
      const one = async (name: string) => {
        const p = linePrefixer(name, (s) => raw(deps, s));
        for await (const chunk of await logs(name, namespace, options)) p.push(chunk);
        p.flush();
      };
      if (opts.follow) await Promise.all(names.map(one));
      else for (const name of names) await one(name);
    });

  program
    .command("exec")
    .description("run a command in a running instance: grove exec hello/0 -- sh -c 'echo hi'")
    .argument("<instance>", "APP/INDEX (e.g. hello/0) or an instance name")
    .argument("<command...>", "the command and its arguments (after --)")
    .option("-i, --stdin", "pass standard input to the command")
    .option("-t, --tty", "run the command on a terminal (with -i: interactive)")
    .option("-u, --user <user>", "user[:group] to run as (default: the instance's)")
    .option("-w, --workdir <dir>", "working directory inside the container")
    .action(
      async (
        target: string,
        command: string[],
        opts: { stdin?: boolean; tty?: boolean; user?: string; workdir?: string },
        cmd: Command,
      ) => {
        const { namespace, client } = connect(cmd);
        if (!client.exec) throw new Error("this client cannot exec");
        const stdin = deps.stdin;
        const size = deps.terminalSize?.();
        const session = await client.exec(instanceName(target), namespace, {
          command,
          tty: Boolean(opts.tty),
          ...(opts.tty && size ? { cols: size.cols, rows: size.rows } : {}),
          ...(opts.user ? { user: opts.user } : {}),
          ...(opts.workdir ? { workingDir: opts.workdir } : {}),
        });
        session.onStdout((d) => raw(deps, d));
        session.onStderr((d) => rawErr(deps, d));
        const cleanups: (() => void)[] = [];
        if (opts.stdin && stdin) {
          if (opts.tty && stdin.isTTY && stdin.setRawMode) {
            stdin.setRawMode(true);
            cleanups.push(() => stdin.setRawMode?.(false));
          }
          const onData = (d: Buffer) => session.write(d);
          const onEnd = () => session.closeStdin();
          stdin.on("data", onData);
          stdin.once("end", onEnd);
          stdin.resume();
          cleanups.push(() => {
            stdin.off("data", onData);
            stdin.off("end", onEnd);
            stdin.pause();
          });
        } else {
          session.closeStdin();
        }
        if (opts.tty && deps.onResize) {
          cleanups.push(
            deps.onResize(() => {
              const s = deps.terminalSize?.();
              if (s) session.resize(s.cols, s.rows);
            }),
          );
        }
        try {
          const exit = await session.exited;
          if (exit.exitCode !== 0) throw new ExitStatus(exit.exitCode);
        } finally {
          for (const c of cleanups) c();
        }
      },
    );

  program
    .command("top")
    .description("resource usage of running instances, per instance, App or node (CPU over one second)")
    .addArgument(
      new Command()
        .createArgument("[what]", "instances (default), apps or nodes")
        .choices(["instances", "apps", "nodes"]),
    )
    .addOption(new Option("-A, --all-namespaces", "every namespace (nodes always cover all)"))
    .option("--interval <ms>", "time between the two samples CPU is measured over", "1000")
    .action(async (what: string | undefined, opts: { allNamespaces?: boolean; interval: string }, cmd: Command) => {
      const kind = (what ?? "instances") as "apps" | "instances" | "nodes";
      const interval = Number(opts.interval);
      if (!Number.isFinite(interval) || interval < 0)
        throw new UsageError(`--interval: "${opts.interval}" is not a number`);
      const { namespace, client } = connect(cmd);
      if (!client.stats) throw new Error("this client cannot read stats");
      const ns = opts.allNamespaces || kind === "nodes" ? undefined : namespace;
      const before = await client.stats(ns);
      await deps.sleep(interval);
      const after = await client.stats(ns);
      const nodes = kind === "nodes" ? (await client.list("Node")).items : [];
      if (after.items.length === 0 && kind !== "nodes") {
        deps.err(`No running instances${ns ? ` in namespace ${ns}` : ""}.`);
        for (const u of after.unavailable) deps.err(`(node ${u.nodeName}: ${u.message})`);
        return;
      }
      for (const line of renderTop(kind, before, after, nodes)) deps.out(line);
    });
}

/** Usage lines for `grove describe instance` (a line saying why when there are none). */
export async function usageOfInstance(client: CliClient, inst: Instance): Promise<string[]> {
  if (!client.instanceStats || inst.status?.state !== "Running") return [];
  try {
    return describeUsage(await client.instanceStats(inst.metadata.name, inst.metadata.namespace));
  } catch (err) {
    return [`Usage:         unavailable (${err instanceof Error ? err.message : String(err)})`];
  }
}

/** Usage lines for `grove describe app`. */
export async function usageOfApp(client: CliClient, app: string, namespace: string): Promise<string[]> {
  if (!client.stats) return [];
  try {
    return describeAppUsage(await client.stats(namespace), app);
  } catch (err) {
    return [`Usage:         unavailable (${err instanceof Error ? err.message : String(err)})`];
  }
}
