// `grove config get-contexts|current-context|use-context|set-context`: named control planes in
// the CLI config file (config-contexts.ts has the file's shape and its migration).
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { configPathOf, readConfigDocument } from "../config";
import {
  ConfigError,
  knownNames,
  writeConfigDocument,
  type ConfigDocument,
  type ContextEntry,
} from "../config-contexts";
import type { CliDeps } from "./deps";
import { columnWidths, formatRow } from "./render/table";

interface GlobalFlags {
  config?: string;
  server?: string;
  token?: string;
  ca?: string;
  namespace?: string;
  context?: string;
}

function load(cmd: Command, deps: CliDeps): { file: string; doc: ConfigDocument; flags: GlobalFlags } {
  const flags = cmd.optsWithGlobals<GlobalFlags>();
  const { configPath, explicit } = configPathOf(flags, deps.env, deps.home);
  // A named file that does not exist yet is fine here: set-context creates it.
  const exists = fs.existsSync(configPath);
  const doc = readConfigDocument(configPath, explicit && exists) ?? { contexts: {}, migrated: false };
  return { file: configPath, doc, flags };
}

function save(file: string, doc: ConfigDocument, deps: CliDeps): void {
  if (doc.migrated) {
    deps.err(`(${file} had one server at the top; it is now context "default" in the contexts shape)`);
  }
  writeConfigDocument(file, { ...doc, migrated: false });
}

function checkServer(server: string): void {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ConfigError(`--server: "${server}" is not a URL like https://127.0.0.1:7480`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`--server: "${server}": only http:// and https:// are supported`);
  }
}

/** A path given on the command line, made absolute (the file stores it; relative would mean the file's folder). */
function readablePath(flag: string, p: string): string {
  const abs = path.resolve(p);
  try {
    fs.accessSync(abs, fs.constants.R_OK);
  } catch (err) {
    throw new ConfigError(`${flag}: cannot read ${abs}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return abs;
}

export function registerConfigCommands(program: Command, deps: CliDeps): void {
  const config = program
    .command("config")
    .description("named control planes (contexts) in the CLI config file")
    .addHelpText("after", "\nThe file: --config, else $GROVE_CONFIG, else ~/.grove/config.json.");

  config
    .command("get-contexts")
    .description("list the contexts; * marks the current one")
    .action((_opts: unknown, cmd: Command) => {
      const { file, doc } = load(cmd, deps);
      const names = Object.keys(doc.contexts).sort();
      if (names.length === 0) {
        deps.err(`No contexts in ${file}.`);
        return;
      }
      const rows = [["CURRENT", "NAME", "SERVER", "NAMESPACE"]];
      for (const name of names) {
        const c = doc.contexts[name] as ContextEntry;
        rows.push([name === doc.currentContext ? "*" : "", name, c.server ?? "", c.namespace ?? ""]);
      }
      const widths = columnWidths(rows);
      for (const r of rows) deps.out(formatRow(r, widths));
    });

  config
    .command("current-context")
    .description("print the current context's name")
    .action((_opts: unknown, cmd: Command) => {
      const { file, doc } = load(cmd, deps);
      if (!doc.currentContext) throw new ConfigError(`no current context in ${file}`);
      deps.out(doc.currentContext);
    });

  config
    .command("use-context")
    .description("make a context the current one")
    .argument("<name>", "the context")
    .action((name: string, _opts: unknown, cmd: Command) => {
      const { file, doc } = load(cmd, deps);
      if (!(name in doc.contexts))
        throw new ConfigError(`no context "${name}" in ${file} (${knownNames(doc.contexts)})`);
      save(file, { ...doc, currentContext: name }, deps);
      deps.out(`Switched to context "${name}".`);
    });

  config
    .command("set-context")
    .description("create a context, or change the settings given (the global --server, --token, --ca and -n)")
    .argument("<name>", "the context")
    .option("--token-file <file>", "read the token from this file at each use (instead of --token)")
    .action((name: string, opts: { tokenFile?: string }, cmd: Command) => {
      const { file, doc, flags } = load(cmd, deps);
      if (!/^[A-Za-z0-9][A-Za-z0-9._@:-]*$/.test(name)) {
        throw new ConfigError(`context name "${name}": use letters, digits and . _ @ : -`);
      }
      if (opts.tokenFile !== undefined && flags.token !== undefined) {
        throw new ConfigError("give either --token or --token-file, not both");
      }
      const existing = doc.contexts[name];
      const entry: ContextEntry = { ...existing };
      if (flags.server !== undefined) {
        checkServer(flags.server);
        entry.server = flags.server.replace(/\/+$/, "");
      }
      if (flags.token !== undefined) {
        entry.token = flags.token;
        delete entry.tokenFile;
      }
      if (opts.tokenFile !== undefined) {
        entry.tokenFile = readablePath("--token-file", opts.tokenFile);
        delete entry.token;
      }
      if (flags.ca !== undefined) entry.ca = readablePath("--ca", flags.ca);
      if (flags.namespace !== undefined) entry.namespace = flags.namespace;
      const next: ConfigDocument = {
        ...doc,
        contexts: { ...doc.contexts, [name]: entry },
        // The first context becomes the current one; otherwise use-context chooses.
        currentContext: doc.currentContext ?? name,
      };
      save(file, next, deps);
      deps.out(`Context "${name}" ${existing ? "modified" : "created"}.`);
    });
}
