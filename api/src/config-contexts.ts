// The CLI config file with named contexts (kubectl's idea): each context is one control plane
// (server, token or token file, CA, namespace) and "current-context" picks one. Files written
// before contexts existed ({"server", "token", "ca", "namespace"} at the top) still work: they
// read as one context named "default", and are rewritten in the new shape, with that context
// kept, the first time a `grove config` command changes the file.
import * as fs from "node:fs";
import * as path from "node:path";

/** One control plane as a context names it. Relative paths are relative to the config file. */
export interface ContextEntry {
  server?: string;
  token?: string;
  /** A file holding the token (read at each use, so a rotated token needs no config edit). */
  tokenFile?: string;
  namespace?: string;
  /** The cluster CA (a PEM file) the server's certificate must chain to. */
  ca?: string;
}

/** The whole file, always in the contexts shape (a single-server file is migrated in memory). */
export interface ConfigDocument {
  currentContext?: string;
  contexts: Record<string, ContextEntry>;
  /** The file had the single-server shape; it becomes context "default". */
  migrated: boolean;
}

/** The context name a single-server file's settings get. */
export const LEGACY_CONTEXT = "default";

const ENTRY_KEYS = ["server", "token", "tokenFile", "namespace", "ca"] as const;
const LEGACY_KEYS = ["server", "token", "namespace", "ca"] as const;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** `where`: "" for the top level of a single-server file, else "contexts.NAME". */
function entryOf(raw: unknown, file: string, where: string): ContextEntry {
  const at = where ? `${where}: ` : "";
  if (!isObject(raw)) throw new ConfigError(`config file ${file}: ${where} must be an object`);
  const out: ContextEntry = {};
  for (const [key, v] of Object.entries(raw)) {
    if (!(ENTRY_KEYS as readonly string[]).includes(key)) {
      throw new ConfigError(`config file ${file}: ${at}unknown field "${key}" (known: ${ENTRY_KEYS.join(", ")})`);
    }
    if (typeof v !== "string") throw new ConfigError(`config file ${file}: ${at}"${key}" must be a string`);
    out[key as (typeof ENTRY_KEYS)[number]] = v;
  }
  return out;
}

/** Reads the parsed JSON of a config file in either shape. */
export function parseConfigDocument(parsed: unknown, file: string): ConfigDocument {
  if (!isObject(parsed)) {
    throw new ConfigError(`config file ${file} must hold a JSON object like {"server": "...", "token": "..."}`);
  }
  const hasContexts = "contexts" in parsed || "current-context" in parsed;
  const legacyKeys = LEGACY_KEYS.filter((k) => parsed[k] !== undefined);
  if (!hasContexts) {
    // The single-server shape. Unknown top-level keys were ignored before contexts; still are.
    const legacy: Record<string, unknown> = {};
    for (const k of legacyKeys) legacy[k] = parsed[k];
    const entry = entryOf(legacy, file, "");
    return legacyKeys.length === 0
      ? { contexts: {}, migrated: false }
      : { currentContext: LEGACY_CONTEXT, contexts: { [LEGACY_CONTEXT]: entry }, migrated: true };
  }
  if (legacyKeys.length > 0) {
    // Both shapes at once: which server is meant cannot be guessed.
    throw new ConfigError(
      `config file ${file} has both "contexts" and top-level ${legacyKeys.map((k) => `"${k}"`).join(", ")}: ` +
        `move them into a context (grove config set-context NAME --server ...)`,
    );
  }
  const rawContexts = parsed.contexts ?? {};
  if (!isObject(rawContexts))
    throw new ConfigError(`config file ${file}: "contexts" must be an object of name -> context`);
  const contexts: Record<string, ContextEntry> = {};
  for (const [name, raw] of Object.entries(rawContexts)) contexts[name] = entryOf(raw, file, `contexts.${name}`);
  const current = parsed["current-context"];
  if (current !== undefined && typeof current !== "string") {
    throw new ConfigError(`config file ${file}: "current-context" must be a string`);
  }
  if (current !== undefined && current !== "" && !(current in contexts)) {
    throw new ConfigError(
      `config file ${file}: "current-context" names "${current}", which is not in "contexts" (${knownNames(contexts)})`,
    );
  }
  return { ...(current ? { currentContext: current } : {}), contexts, migrated: false };
}

export function knownNames(contexts: Record<string, ContextEntry>): string {
  const names = Object.keys(contexts);
  return names.length === 0 ? "no contexts defined" : `known: ${names.join(", ")}`;
}

/** The JSON text the CLI writes: always the contexts shape. */
export function serializeConfigDocument(doc: ConfigDocument): string {
  const out: Record<string, unknown> = {};
  if (doc.currentContext) out["current-context"] = doc.currentContext;
  out.contexts = doc.contexts;
  return JSON.stringify(out, null, 2) + "\n";
}

/** Writes the file atomically (a rename), mode 0600: it may hold tokens. */
export function writeConfigDocument(file: string, doc: ConfigDocument): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, serializeConfigDocument(doc), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * The context to use: `requested` (--context or GROVE_CONTEXT) must exist; else the file's
 * current context; else none.
 */
export function selectContext(
  doc: ConfigDocument,
  requested: string | undefined,
  file: string,
): { name: string; entry: ContextEntry } | undefined {
  if (requested !== undefined) {
    const entry = doc.contexts[requested];
    if (!entry) throw new ConfigError(`no context "${requested}" in ${file} (${knownNames(doc.contexts)})`);
    return { name: requested, entry };
  }
  if (doc.currentContext === undefined) return undefined;
  return { name: doc.currentContext, entry: doc.contexts[doc.currentContext] as ContextEntry };
}

/** A context's token: inline, or read from its token file (relative to the config file). */
export function contextToken(entry: ContextEntry, file: string): string | undefined {
  if (entry.token !== undefined) return entry.token;
  if (entry.tokenFile === undefined) return undefined;
  const tokenPath = path.resolve(path.dirname(file), entry.tokenFile);
  try {
    return fs.readFileSync(tokenPath, "utf8").trim();
  } catch (err) {
    throw new ConfigError(`cannot read the token file ${tokenPath} (config file ${file}): ${(err as Error).message}`);
  }
}
