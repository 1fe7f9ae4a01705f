// Entry point of the `grove` binary (bin/grove.js).
import * as os from "node:os";
import { CommanderError } from "commander";
import { GroveClient } from "../client";
import { buildProgram, type CliDeps } from "./program";
import { ExitStatus } from "./logs-exec-top";

export function defaultDeps(): CliDeps {
  return {
    out: (line) => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
    env: process.env,
    home: os.homedir(),
    makeClient: (config) =>
      new GroveClient({
        server: config.server,
        token: config.token,
        ...(config.caPem ? { caPem: config.caPem } : {}),
      }),
    now: () => Date.now(),
    sleep: (ms, signal) =>
      new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        signal?.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      }),
    write: (data) => process.stdout.write(data),
    writeErr: (data) => process.stderr.write(data),
    stdin: process.stdin,
    terminalSize: () =>
      process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : undefined,
    onResize: (cb) => {
      process.stdout.on("resize", cb);
      return () => process.stdout.off("resize", cb);
    },
  };
}

/** Runs the CLI and returns its exit code; errors are printed, never thrown. */
export async function run(argv: readonly string[], deps: CliDeps): Promise<number> {
  const program = buildProgram(deps);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return 0;
  } catch (err) {
    // Commander has already printed its own usage errors (and help, which exits 0).
    if (err instanceof CommanderError) return err.exitCode;
    // grove exec: the command's own exit status.
    if (err instanceof ExitStatus) return err.code;
    const message = err instanceof Error ? err.message : String(err);
    deps.err(`error: ${message}`);
    return 1;
  }
}

/** `argv` as Node gives it: [node, script, ...args]. */
export async function main(argv: string[]): Promise<void> {
  process.exitCode = await run(argv.slice(2), defaultDeps());
}
