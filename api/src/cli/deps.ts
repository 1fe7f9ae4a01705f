// What the `grove` command line touches from outside (output, environment,
// the client, the clock), given to every command; tests pass fakes. Kept apart
// from program.ts so command files can use it without importing the program
// that registers them.
import type { Command } from "commander";
import type { GroveClient } from "../client";
import { resolveConfig, type ConnectionFlags, type ResolvedConfig } from "../config";

/** The part of the client the CLI uses. */
export type CliClient = Pick<GroveClient, "list" | "get" | "apply" | "delete" | "watch"> &
  Partial<Pick<GroveClient, "endpoints" | "watchEndpoints" | "plan" | "capacity">> &
  Partial<Pick<GroveClient, "logs" | "instanceStats" | "stats" | "exec" | "createToken" | "createJoinToken">> &
  Partial<Pick<GroveClient, "call" | "objectPath" | "events" | "watchEvents">>;

export interface CliDeps {
  /** Writes one line (a newline is added) to standard output. */
  out(line: string): void;
  /** Writes one line to standard error. */
  err(line: string): void;
  env: NodeJS.ProcessEnv;
  home: string;
  makeClient(config: ResolvedConfig): CliClient;
  now(): number;
  /** Resolves after `ms`, or as soon as `signal` aborts (so no timer outlives what waited). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Raw standard output (logs, exec); without it, out() gets whole lines. */
  write?(data: Uint8Array | string): void;
  /** Raw standard error (exec's stderr). */
  writeErr?(data: Uint8Array | string): void;
  /** Standard input (grove exec -i). */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };
  /** The terminal's size (grove exec -t). */
  terminalSize?(): { cols: number; rows: number } | undefined;
  /** Calls back when the terminal is resized; returns the unsubscribe. */
  onResize?(cb: () => void): () => void;
}

export interface Context {
  config: ResolvedConfig;
  client: CliClient;
}

/** The resolved connection settings of a command and a client made with them. */
export function connect(cmd: Command, deps: CliDeps): Context {
  const flags = cmd.optsWithGlobals<ConnectionFlags>();
  const config = resolveConfig(flags, deps.env, deps.home);
  return { config, client: deps.makeClient(config) };
}
