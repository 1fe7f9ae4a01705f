// `grove version`: this CLI's version and, when a control plane is configured and reachable,
// the server's (GET /version: {version, apiVersion, node}). A server too old to serve
// /version (404) is said so, not treated as an error.
import * as fs from "node:fs";
import * as path from "node:path";
import { Option, type Command } from "commander";
import * as YAML from "yaml";
import { GroveError } from "../errors";
import { connect, type CliDeps } from "./deps";

export interface ServerVersion {
  version: string;
  /** The API version it serves (grove/v1). */
  apiVersion?: string;
  /** The Node.js version grove-server runs on. */
  node?: string;
}

/** The @grove/api package's version (api/package.json, two folders above src/cli and dist/cli). */
export function clientVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function isServerVersion(v: unknown): v is ServerVersion {
  return v !== null && typeof v === "object" && typeof (v as ServerVersion).version === "string";
}

export function registerVersionCommand(program: Command, deps: CliDeps): void {
  program
    .command("version")
    .description("print the client's version and the server's (GET /version)")
    .option("--client", "only the client's version; do not contact the server")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json", "yaml"]).default("text"))
    .action(async (opts: { client?: boolean; output: "text" | "json" | "yaml" }, cmd: Command) => {
      const client = { version: clientVersion(), node: process.versions.node };
      let server: ServerVersion | undefined;
      let serverNote: string | undefined;
      let failure: Error | undefined;
      if (!opts.client) {
        try {
          const { client: api, config } = connect(cmd, deps);
          if (!api.call) throw new Error("this client cannot ask for the server's version");
          const answer = await api.call<unknown>("GET", "/version");
          if (!isServerVersion(answer)) throw new Error(`${config.server}/version answered without a "version"`);
          server = answer;
        } catch (err) {
          if (err instanceof GroveError && err.code === "NotFound") {
            serverNote = "unknown (the server does not serve /version: older than this client)";
          } else {
            failure = err instanceof Error ? err : new Error(String(err));
          }
        }
      }
      const result = {
        clientVersion: client,
        ...(server ? { serverVersion: server } : {}),
      };
      if (opts.output === "json") deps.out(JSON.stringify(result, null, 2));
      else if (opts.output === "yaml") deps.out(YAML.stringify(result).trimEnd());
      else {
        deps.out(`Client Version: ${client.version} (node ${client.node})`);
        if (server) {
          const extra = [
            server.apiVersion ? `API ${server.apiVersion}` : undefined,
            server.node ? `node ${server.node}` : undefined,
          ].filter((x) => x !== undefined);
          deps.out(`Server Version: ${server.version}${extra.length ? ` (${extra.join(", ")})` : ""}`);
        } else if (serverNote) deps.out(`Server Version: ${serverNote}`);
      }
      // The client's version is printed either way; then the reason the server's is missing.
      if (failure) throw failure;
    });
}
