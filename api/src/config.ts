// Where the CLI finds its control plane. Precedence, highest first: flags, environment,
// the config file (--config, else GROVE_CONFIG, else ~/.grove/config.json), defaults.
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_NAMESPACE } from "./defaults";

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
}

export interface ResolvedConfig {
  server: string;
  token: string;
  namespace: string;
  /** The cluster CA's PEM text, when a CA file is configured (else the system's CAs are trusted). */
  caPem?: string;
  /** The config file that was read, if any. */
  configPath?: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export const NO_CONTROL_PLANE_MESSAGE =
  "no control plane configured: run deploy/quickstart.sh or set GROVE_SERVER and GROVE_TOKEN";

export function defaultConfigPath(home: string): string {
  return path.join(home, ".grove", "config.json");
}

/** Reads a config file. A missing file is only an error when the user named it explicitly. */
export function readConfigFile(file: string, explicit: boolean): ConfigFile | undefined {
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
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file} must hold a JSON object like {"server": "...", "token": "..."}`);
  }
  const out: ConfigFile = {};
  for (const key of ["server", "token", "namespace", "ca"] as const) {
    const v = (parsed as Record<string, unknown>)[key];
    if (v === undefined) continue;
    if (typeof v !== "string") throw new ConfigError(`config file ${file}: "${key}" must be a string`);
    out[key] = v;
  }
  return out;
}

/** Non-empty, trimmed, or undefined. */
function given(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}

export function resolveConfig(flags: ConnectionFlags, env: NodeJS.ProcessEnv, home: string): ResolvedConfig {
  const explicitPath = given(flags.config) ?? given(env.GROVE_CONFIG);
  const configPath = explicitPath ?? defaultConfigPath(home);
  const file = readConfigFile(configPath, explicitPath !== undefined);

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
  };
}
