// The `grove` command line: commander wiring plus the four verbs. Everything it touches
// from outside (output, environment, the client, the clock) comes in through CliDeps, so
// tests drive it with a fake client and no network.
import { Command, Option } from "commander";
import { isDeepStrictEqual } from "node:util";
import * as YAML from "yaml";
import { GroveError } from "../errors";
import { type App, type Instance, type Node } from "../schemas";
import type { Kind } from "../resource-kinds";
import type { Task } from "../task-schema";
import type { Endpoints } from "../endpoints";
import { renderCapacity, renderPlan } from "../scheduling";
import { parseDuration, parseKindArg, refOf, UsageError } from "./kinds";
import { describeApp, describeInstance, describeNode } from "./render/describe";
import { connect, type CliClient, type CliDeps } from "./deps";
import { registerTokenCommands } from "./token";
import { registerOperationCommands, usageOfApp, usageOfInstance } from "./logs-exec-top";
import { waitForApps, waitForDrain } from "./wait";
import { registerRolloutCommands } from "./rollout";
import { describeTask, registerTaskCommands } from "./task-commands";
import { taskAttempts } from "./task-attempts";
import { EVENTS_WORDS, describeEvents, getEvents } from "./events";
import { CLUSTER_EVENTS_NAMESPACE } from "../events";
import { registerCreateCommands } from "./create-token";
import { registerNamespaceCommands } from "./namespace-commands";
// Kept so importers of program.ts need no edit.
export type { CliClient, CliDeps } from "./deps";
export { waitForApps } from "./wait";
import { columnWidths, formatRow, tableHeaders, tableRow, type TableOptions } from "./render/table";
import {
  DEFAULT_OUTPUT,
  parseOutput,
  printJsonPath,
  printObjects,
  printWatchEvent,
  type Output,
} from "./render/output";
import { loadManifestInput } from "./manifest-input";
import { APPLY_KINDS, applyTenantObject, isTenantObject } from "./apply-tenant";
import { listSelected, type Selection } from "./list-selected";
import { registerConfigCommands } from "./config-commands";
import { registerVersionCommand } from "./version";
import { registerDiffCommand } from "./diff";
import { registerCompletionCommand } from "./completion";

type AnyObject = App | Instance | Node | Task;

const ENDPOINTS_WORDS = ["endpoints", "endpoint", "ep"];

function endpointRows(e: Endpoints): string[][] {
  return e.endpoints.map((ep) => [
    ep.instance,
    ep.nodeName ?? "",
    ep.ip ?? "",
    ep.ports.map((p) => `${p.address ?? "-"}->${ep.ip ?? ""}:${p.containerPort}/${p.protocol}`).join(",") || "<none>",
  ]);
}

/** `grove get endpoints APP`: the App's Running instances and their published addresses. */
async function getEndpoints(
  deps: CliDeps,
  client: CliClient,
  app: string,
  namespace: string,
  output: Output,
  watch: boolean,
): Promise<void> {
  if (!client.endpoints || !client.watchEndpoints) throw new Error("this client cannot read endpoints");
  if (output.format === "name") throw new UsageError("-o name: endpoints have no name of their own; use -o jsonpath");
  const print = (e: Endpoints) => {
    if (output.format === "json") deps.out(JSON.stringify(e, null, watch ? undefined : 2));
    else if (output.format === "yaml") deps.out(`---\n${YAML.stringify(e).trimEnd()}`);
    else if (output.format === "jsonpath") printJsonPath(deps, output.template.render(e));
    else {
      const rows = [["INSTANCE", "NODE", "IP", "PORTS"], ...endpointRows(e)];
      const widths = columnWidths(rows);
      for (const r of rows) deps.out(formatRow(r, widths));
    }
  };
  if (!watch) {
    print(await client.endpoints(app, namespace));
    return;
  }
  const stream = await client.watchEndpoints(app, namespace);
  for await (const event of stream) {
    if (event.type === "ERROR") {
      stream.close();
      throw new Error(`watch ended by the server: ${JSON.stringify(event.object)}`);
    }
    if (event.type === "ADDED" || event.type === "MODIFIED") print(event.object); // not bookmarks or heartbeats
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof GroveError && err.code === "NotFound";
}

/** Drops what the server owns: status is never sent back. */
function forSubmission<T extends App | Node | Task>(object: T, namespace: string): T {
  const { status: _status, ...rest } = object as T & { status?: unknown };
  const metadata = { ...rest.metadata };
  if (object.kind !== "Node" && !metadata.namespace) metadata.namespace = namespace;
  return { ...rest, metadata } as T;
}

function sameIntent(existing: AnyObject, wanted: App | Node | Task): boolean {
  return (
    isDeepStrictEqual(existing.spec, wanted.spec) &&
    isDeepStrictEqual(existing.metadata.labels ?? {}, wanted.metadata.labels ?? {})
  );
}

/** Cordons and drains a node (drain given), or uncordons it and ends its drain (undefined). */
async function setDrain(client: CliClient, name: string, drain: { timeout: string } | undefined): Promise<void> {
  const node = await client.get("Node", name);
  const { drain: _d, unschedulable: _u, ...rest } = node.spec;
  const spec = drain ? { ...rest, unschedulable: true, drain } : rest;
  await client.apply({ ...forSubmission(node, ""), spec });
}

export function buildProgram(deps: CliDeps): Command {
  const program = new Command("grove")
    .description("Grove: run apps on a cluster of Linux nodes")
    .option("--server <url>", "control plane URL (overrides GROVE_SERVER and the config file)")
    .option("--context <name>", "the config file's context to use (default $GROVE_CONTEXT, else its current-context)")
    .option("--token <token>", "bearer token (overrides GROVE_TOKEN and the config file)")
    .option("--config <file>", "config file (default $GROVE_CONFIG or ~/.grove/config.json)")
    .option("--ca <file>", 'the cluster CA certificate (overrides GROVE_CA and "ca" in the config file)')
    .option("-n, --namespace <namespace>", 'namespace (default from GROVE_NAMESPACE, the config file, or "default")')
    .showHelpAfterError("(add --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => deps.out(s.replace(/\n$/, "")),
      writeErr: (s) => deps.err(s.replace(/\n$/, "")),
    });

  program
    .command("apply")
    .description("create or update the objects in manifest files")
    .requiredOption(
      "-f, --filename <path...>",
      "a manifest file, a directory of them (*.yaml, *.yml, *.json), or - for standard input",
    )
    .option("--wait", "wait until every applied app has all its instances running (follows a watch)")
    .option("--timeout <duration>", "how long --wait waits (e.g. 60s, 5m)", "60s")
    .option(
      "--plan",
      "dry run through the real scheduler: where each new or changed instance would go; exit 1 if any would stay Pending",
    )
    .action(async (opts: { filename: string[]; wait?: boolean; timeout: string; plan?: boolean }, cmd: Command) => {
      const timeoutMs = parseDuration(opts.timeout);
      // Validate every document before anything is sent.
      const manifests = await loadManifestInput(opts.filename, deps, { acceptKinds: APPLY_KINDS });
      const { config, client } = connect(cmd, deps);
      if (opts.plan) {
        if (!client.plan) throw new Error("this client cannot plan");
        const apps = manifests
          .map((m) => m.object)
          .filter((o): o is App => o.kind === "App")
          .map((a) => forSubmission(a, config.namespace));
        const result = await client.plan(apps);
        for (const line of renderPlan(result)) deps.out(line);
        if (apps.length < manifests.length)
          deps.err(`(${manifests.length - apps.length} non-App object(s) not planned)`);
        if (!result.fits) {
          throw new Error(`plan: ${result.instances.filter((i) => !i.node).length} instance(s) would stay Pending`);
        }
        return;
      }
      const applied: App[] = [];
      for (const { object } of manifests) {
        if (isTenantObject(object)) {
          await applyTenantObject(client, object, config.namespace, deps);
          continue;
        }
        const wanted = forSubmission(object, config.namespace);
        const kind = wanted.kind as Kind;
        const ref = refOf(kind, wanted.metadata.name);
        const existing = await client
          .get(kind, wanted.metadata.name, wanted.metadata.namespace)
          .catch((err: unknown) => {
            if (isNotFound(err)) return undefined;
            throw err;
          });
        let result: AnyObject;
        if (existing && sameIntent(existing, wanted)) {
          result = existing;
          deps.out(`${ref} unchanged`);
        } else {
          const { object: stored, created } = await client.apply(wanted);
          result = stored;
          const changed = created || !existing || !sameIntent(existing, stored);
          deps.out(`${ref} ${created ? "created" : changed ? "configured" : "unchanged"}`);
        }
        if (result.kind === "App") applied.push(result);
      }
      if (opts.wait && applied.length > 0) await waitForApps(client, applied, timeoutMs, deps);
    });

  program
    .command("get")
    .description("list objects, or show one")
    .argument("<kind>", "app(s), instance(s)/inst, node(s) or events; or KIND/NAME; or endpoints APP")
    .argument("[name]", "one object's name")
    .addOption(
      new Option("-o, --output <format>", "table, wide, yaml, json, name or jsonpath=TEMPLATE (kubectl's syntax)")
        .argParser(parseOutput)
        .default(DEFAULT_OUTPUT, "table"),
    )
    .option(
      "-l, --selector <selector>",
      "only objects whose labels match: key=value, key!=value, key, !key, comma-joined",
    )
    .option("-w, --watch", "after listing, stream changes")
    .option("-A, --all-namespaces", "list across all namespaces")
    .option("--shape <shape>", "with get capacity: how many more of this fit, e.g. cpu=500m,memory=1Gi")
    .option(
      "--chunk-size <n>",
      "list in requests of at most this many objects, following the server's continue tokens (one snapshot)",
      parseChunkSize,
      500,
    )
    .action(
      async (
        kindArg: string,
        nameArg: string | undefined,
        opts: {
          output: Output;
          selector?: string;
          watch?: boolean;
          allNamespaces?: boolean;
          shape?: string;
          chunkSize: number;
        },
        cmd: Command,
      ) => {
        const output = opts.output;
        const word = kindArg.split("/")[0]!.toLowerCase();
        if (opts.selector !== undefined && [...ENDPOINTS_WORDS, ...EVENTS_WORDS, "capacity"].includes(word)) {
          throw new UsageError(`-l: get ${word} has no labels to select by`);
        }
        if (word === "capacity") {
          if (output.format === "name") throw new UsageError("-o name: capacity has no name; use -o jsonpath");
          const { client } = connect(cmd, deps);
          if (!client.capacity) throw new Error("this client cannot read capacity");
          const c = await client.capacity(opts.shape);
          if (output.format === "json") deps.out(JSON.stringify(c, null, 2));
          else if (output.format === "yaml") deps.out(YAML.stringify(c).trimEnd());
          else if (output.format === "jsonpath") printJsonPath(deps, output.template.render(c));
          else for (const line of renderCapacity(c)) deps.out(line);
          return;
        }
        if (ENDPOINTS_WORDS.includes(word)) {
          const app = kindArg.includes("/") ? kindArg.slice(kindArg.indexOf("/") + 1) : nameArg;
          if (!app) throw new UsageError("get endpoints needs the App's name: grove get endpoints APP");
          const { config, client } = connect(cmd, deps);
          await getEndpoints(deps, client, app, config.namespace, output, Boolean(opts.watch));
          return;
        }
        if (EVENTS_WORDS.includes(kindArg.toLowerCase())) {
          const { config, client } = connect(cmd, deps);
          const allNamespaces = Boolean(opts.allNamespaces);
          if (output.format === "name" || output.format === "jsonpath") {
            throw new UsageError(`-o ${output.format}: get events prints table, yaml or json`);
          }
          const scope = { namespace: config.namespace, allNamespaces, output: output.format };
          await getEvents(deps, client, { ...scope, watch: Boolean(opts.watch) });
          return;
        }
        const { kind, name } = kindAndName(kindArg, nameArg);
        const { config, client } = connect(cmd, deps);
        const all = Boolean(opts.allNamespaces) && name === undefined;
        const table: TableOptions = {
          wide: output.format === "wide",
          showNamespace: all && kind !== "Node",
          now: deps.now(),
        };
        const selection: Selection = { namespace: config.namespace, allNamespaces: all, selector: opts.selector };
        if (name !== undefined && !opts.watch && opts.selector === undefined) {
          const object = await client.get(kind, name, config.namespace);
          printObjects(deps, kind, [object], output, table, true);
          return;
        }
        const list = await listSelected(client, kind, selection, opts.chunkSize, deps);
        const items = (list.items as AnyObject[]).filter((o) => name === undefined || o.metadata.name === name);
        if (name !== undefined && items.length === 0) {
          throw new GroveError("NotFound", `${refOf(kind, name)} not found${scopeOf(kind, config, false)}`);
        }
        const resourceVersion = list.metadata.resourceVersion;
        const widths = columnWidths([tableHeaders(kind, table), ...items.map((o) => tableRow(kind, o, table))]);
        if (items.length === 0 && (output.format === "table" || output.format === "wide")) {
          const matching = opts.selector === undefined ? "" : ` matching ${opts.selector}`;
          deps.err(`No ${kind.toLowerCase()}s found${scopeOf(kind, config, all)}${matching}.`);
          if (opts.watch) deps.out(formatRow(tableHeaders(kind, table), widths));
        } else {
          printObjects(deps, kind, items, output, table, name !== undefined, widths);
        }
        if (!opts.watch) return;
        const watch = await client.watch(kind, {
          namespace: config.namespace,
          allNamespaces: all,
          resourceVersion,
          ...(list.labelSelector ? { labelSelector: list.labelSelector } : {}),
        });
        for await (const event of watch) {
          if (event.type === "ERROR") {
            watch.close();
            const body = event.object as unknown as { code?: string; message?: string };
            throw new Error(`watch ended by the server: ${body.message ?? JSON.stringify(event.object)}`);
          }
          // A bookmark or heartbeat line carries no object to print.
          if (!["ADDED", "MODIFIED", "DELETED"].includes(event.type)) continue;
          const object = event.object as AnyObject;
          if (name !== undefined && object.metadata.name !== name) continue;
          if (!list.matches(object)) continue;
          printWatchEvent(deps, kind, { ...event, object }, output, () =>
            formatRow(tableRow(kind, object, { ...table, now: deps.now() }), widths),
          );
        }
      },
    );

  program
    .command("describe")
    .description("show one object in detail, with its instances and placement")
    .argument("<kind>", "app, instance or node; or KIND/NAME")
    .argument("[name]", "the object's name")
    .action(async (kindArg: string, nameArg: string | undefined, _opts: unknown, cmd: Command) => {
      const { kind, name } = kindAndName(kindArg, nameArg);
      if (name === undefined) throw new UsageError(`describe needs a name: grove describe ${kind.toLowerCase()} NAME`);
      const { config, client } = connect(cmd, deps);
      const now = deps.now();
      let lines: string[];
      if (kind === "App") {
        const app = await client.get("App", name, config.namespace);
        const instances = await client.list("Instance", { namespace: app.metadata.namespace ?? config.namespace });
        lines = describeApp(
          app,
          instances.items.filter((i) => i.spec.app === name && i.spec.task === undefined),
          now,
        );
        lines.push(...(await usageOfApp(client, name, app.metadata.namespace ?? config.namespace)));
        const filter = { involvedKind: "App", involvedName: name };
        lines.push(...(await describeEvents(client, app.metadata.namespace ?? config.namespace, filter, now)));
      } else if (kind === "Task") {
        const task = await client.get("Task", name, config.namespace);
        lines = describeTask(task, await taskAttempts(client, name, task.metadata.namespace ?? config.namespace), now);
      } else if (kind === "Instance") {
        const inst = await client.get("Instance", name, config.namespace);
        lines = [...describeInstance(inst, now), ...(await usageOfInstance(client, inst))];
        const filter = { involvedKind: "App", involvedName: inst.spec.app, instance: name };
        lines.push(...(await describeEvents(client, inst.metadata.namespace ?? config.namespace, filter, now)));
      } else {
        const node = await client.get("Node", name);
        const instances = await client.list("Instance", { allNamespaces: true });
        lines = describeNode(
          node,
          instances.items.filter((i) => (i.status?.nodeName ?? i.spec.nodeName) === name),
          now,
        );
        const filter = { involvedKind: "Node", involvedName: name };
        lines.push(...(await describeEvents(client, CLUSTER_EVENTS_NAMESPACE, filter, now)));
      }
      for (const line of lines) deps.out(line);
    });

  program
    .command("drain")
    .description(
      "cordon a node and move every instance off it, make before break: each keeps running until its replacement runs elsewhere (or --timeout passes)",
    )
    .argument("<node>", "the node's name")
    .option("--timeout <duration>", "how long an instance waits for its replacement before it is stopped anyway", "5m")
    .action(async (name: string, opts: { timeout: string }, cmd: Command) => {
      const timeoutMs = parseDuration(opts.timeout);
      if (timeoutMs < 1000 || timeoutMs % 1000 !== 0) {
        throw new UsageError(`--timeout: give whole seconds of at least 1s (e.g. 90s, 5m), not "${opts.timeout}"`);
      }
      const { client } = connect(cmd, deps);
      await setDrain(client, name, { timeout: `${timeoutMs / 1000}s` });
      deps.out(`node/${name} cordoned; draining (each instance waits up to ${opts.timeout} for its replacement)`);
      await waitForDrain(client, name, timeoutMs, deps);
    });

  program
    .command("uncordon")
    .description("let the scheduler place instances on a node again (ends a drain: moves not yet done are cancelled)")
    .argument("<node>", "the node's name")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client } = connect(cmd, deps);
      await setDrain(client, name, undefined);
      deps.out(`node/${name} uncordoned`);
    });

  program
    .command("scale")
    .description("set how many instances an app runs (a rolling update is not started: the template is unchanged)")
    .argument("<app>", "the app's name")
    .argument("<count>", "the number of instances, 0 to 10000")
    .action(async (name: string, count: string, _opts: unknown, cmd: Command) => {
      const n = Number(count);
      if (!/^[0-9]+$/.test(count) || n > 10000) {
        throw new UsageError(`<count>: give a whole number from 0 to 10000, not "${count}"`);
      }
      const { config, client } = connect(cmd, deps);
      const app = await client.get("App", name, config.namespace);
      await client.apply({ ...forSubmission(app, config.namespace), spec: { ...app.spec, instances: n } });
      deps.out(`app/${name} scaled from ${app.spec.instances} to ${n}`);
    });

  program
    .command("delete")
    .description("delete objects named on the command line or in manifest files")
    .argument("[kind]", "app, instance or node; or KIND/NAME")
    .argument("[name]", "the object's name")
    .option("-f, --filename <path...>", "delete the objects these manifests describe (- for standard input)")
    .option("--ignore-not-found", "treat objects that do not exist as deleted")
    .action(
      async (
        kindArg: string | undefined,
        nameArg: string | undefined,
        opts: { filename?: string[]; ignoreNotFound?: boolean },
        cmd: Command,
      ) => {
        let targets: { kind: Kind; name: string; namespace?: string }[];
        if (opts.filename) {
          if (kindArg !== undefined) throw new UsageError("give either -f FILE or KIND NAME, not both");
          targets = (await loadManifestInput(opts.filename, deps)).map(({ object }) => ({
            kind: object.kind as Kind,
            name: object.metadata.name,
            namespace: object.metadata.namespace,
          }));
        } else {
          if (kindArg === undefined) throw new UsageError("nothing to delete: give KIND NAME or -f FILE");
          const { kind, name } = kindAndName(kindArg, nameArg);
          if (name === undefined) throw new UsageError(`delete needs a name: grove delete ${kind.toLowerCase()} NAME`);
          targets = [{ kind, name }];
        }
        const { config, client } = connect(cmd, deps);
        const failures: string[] = [];
        for (const t of targets) {
          const namespace = t.namespace ?? config.namespace;
          const ref = refOf(t.kind, t.name);
          try {
            await client.delete(t.kind, t.name, namespace);
            deps.out(`${ref} deleted`);
          } catch (err) {
            if (!isNotFound(err)) throw err;
            if (!opts.ignoreNotFound) failures.push(`${ref} not found${scopeOf(t.kind, { namespace }, false)}`);
          }
        }
        if (failures.length === 1) throw new GroveError("NotFound", failures[0] as string);
        if (failures.length > 1)
          throw new GroveError("NotFound", `${failures.length} objects not found:\n${failures.join("\n")}`);
      },
    );

  registerCreateCommands(program, deps);
  const connectNs = (cmd: Command) => {
    const { config, client } = connect(cmd, deps);
    return { namespace: config.namespace, client };
  };
  registerOperationCommands(program, deps, connectNs);
  registerTaskCommands(program, deps, connectNs);
  registerRolloutCommands(program, deps, connectNs);
  registerTokenCommands(program, deps);
  registerNamespaceCommands(program, deps);
  registerDiffCommand(program, deps);
  registerConfigCommands(program, deps);
  registerVersionCommand(program, deps);
  registerCompletionCommand(program, deps);

  return program;
}

function parseChunkSize(value: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new UsageError(`--chunk-size must be a positive integer, got "${value}"`);
  return Number(value);
}

function kindAndName(kindArg: string, nameArg: string | undefined): { kind: Kind; name?: string } {
  const { kind, name } = parseKindArg(kindArg);
  if (name !== undefined && nameArg !== undefined) {
    throw new UsageError(`give the name once: "${kindArg}" already names ${name}`);
  }
  const chosen = name ?? nameArg;
  return chosen === undefined ? { kind } : { kind, name: chosen };
}

function scopeOf(kind: Kind, config: { namespace: string }, all: boolean): string {
  if (kind === "Node") return "";
  return all ? " in any namespace" : ` in namespace ${config.namespace}`;
}
