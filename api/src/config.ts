// Where the CLI finds its control plane. Precedence, highest first: flags, environment,
// the config file's context (--context, else GROVE_CONTEXT, else its current-context; the file
// is --config, else GROVE_CONFIG, else ~/.grove/config.json), defaults.
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_NAMESPACE } from "./defaults";
import {
  ConfigError,
  contextToken,
  parseConfigDocument,
  selectContext,
  type ConfigDocument,
  type ContextEntry,
} from "./config-contexts";

export { ConfigError } from "./config-contexts";

/** The config file's shape. */
export interface ConfigFile {
  server?: string;
  token?: string;
  namespace?: string;
  /** The cluster CA (a PEM file) the server's certificate must chain to. */
  ca?: string;
}

export interface ConnectionFlags {
  server?: string;
  token?: string;
  /** The cluster CA file (--ca). */
  ca?: string;
  config?: string;
  namespace?: string;
  /** The config file's context to use (--context). */
  context?: string;
}

export interface ResolvedConfig {
  server: string;
  token: string;
  namespace: string;
  /** The cluster CA's PEM text, when a CA file is configured (else the system's CAs are trusted). */
  caPem?: string;
  /** The config file that was read, if any. */
  configPath?: string;
  /** The config file's context that was used, when the file has contexts. */
  context?: string;
}

export const NO_CONTROL_PLANE_MESSAGE =
  "no control plane configured: run deploy/quickstart.sh or set GROVE_SERVER and GROVE_TOKEN";

export function defaultConfigPath(home: string): string {
  return path.join(home, ".grove", "config.json");
}

/** Reads a config file in either shape. A missing file is only an error when the user named it explicitly. */
export function readConfigDocument(file: string, explicit: boolean): ConfigDocument | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && !explicit) return undefined;
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfigDocument(parsed, file);
}

/** The config file's current context, flattened (a single-server file is its one context). */
export function readConfigFile(file: string, explicit: boolean): ConfigFile | undefined {
  const doc = readConfigDocument(file, explicit);
  if (!doc) return undefined;
  const entry = selectContext(doc, undefined, file)?.entry;
  if (!entry) return {};
  const token = contextToken(entry, file);
  const { tokenFile: _t, ...rest } = entry;
  return { ...rest, ...(token !== undefined ? { token } : {}) };
}

/** --config, else GROVE_CONFIG, else ~/.grove/config.json; and whether the user named it. */
export function configPathOf(flags: { config?: string }, env: NodeJS.ProcessEnv, home: string) {
  const explicitPath = given(flags.config) ?? given(env.GROVE_CONFIG);
  return { configPath: explicitPath ?? defaultConfigPath(home), explicit: explicitPath !== undefined };
}

/** Non-empty, trimmed, or undefined. */
function given(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}

export function resolveConfig(flags: ConnectionFlags, env: NodeJS.ProcessEnv, home: string): ResolvedConfig {
  const { configPath, explicit } = configPathOf(flags, env, home);
  const doc = readConfigDocument(configPath, explicit);
  const requested = given(flags.context) ?? given(env.GROVE_CONTEXT);
  if (requested !== undefined && !doc) throw new ConfigError(`no context "${requested}": ${configPath} does not exist`);
  const selected = doc ? selectContext(doc, requested, configPath) : undefined;
  const entry: ContextEntry | undefined = doc ? (selected?.entry ?? {}) : undefined;
  // The context's token file is read only when no flag or variable gives the token.
  const tokenOverride = given(flags.token) ?? given(env.GROVE_TOKEN);
  const file = entry && {
    ...entry,
    token: tokenOverride === undefined ? contextToken(entry, configPath) : undefined,
  };

  const server = given(flags.server) ?? given(env.GROVE_SERVER) ?? given(file?.server);
  const token = given(flags.token) ?? given(env.GROVE_TOKEN) ?? given(file?.token);
  const namespace = given(flags.namespace) ?? given(env.GROVE_NAMESPACE) ?? given(file?.namespace) ?? DEFAULT_NAMESPACE;

  if (!server && !token) throw new ConfigError(NO_CONTROL_PLANE_MESSAGE);
  if (!server)
    throw new ConfigError(
      `no control plane server configured (token found): set GROVE_SERVER, --server or "server" in ${configPath}`,
    );
  if (!token)
    throw new ConfigError(`no token configured for ${server}: set GROVE_TOKEN, --token or "token" in ${configPath}`);

  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ConfigError(`invalid control plane server "${server}": expected a URL like http://127.0.0.1:7443`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`invalid control plane server "${server}": only http:// and https:// are supported`);
  }
  // A relative "ca" in the file is relative to the file.
  const caFile =
    given(flags.ca) ?? given(env.GROVE_CA) ?? (file?.ca ? path.resolve(path.dirname(configPath), file.ca) : undefined);
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = fs.readFileSync(caFile, "utf8");
    } catch (err) {
      throw new ConfigError(`cannot read the cluster CA ${caFile}: ${(err as Error).message}`);
    }
  }
  return {
    server: server.replace(/\/+$/, ""),
    token,
    namespace,
    ...(caPem ? { caPem } : {}),
    ...(file ? { configPath } : {}),
    ...(selected && doc && !doc.migrated ? { context: selected.name } : {}),
  };
}
