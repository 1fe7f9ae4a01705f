// grove token create: a single-use, expiring join token for one agent, printed
// with the grove-agent command line that uses it.
import type { Command } from "commander";
import { parseDurationMs } from "../duration";
import { connect, type CliDeps } from "./deps";

export function registerTokenCommands(program: Command, deps: CliDeps): void {
  const token = program.command("token").description("join tokens for new nodes");
  token
    .command("create")
    .description("a single-use join token; prints it and the grove-agent command that joins with it")
    .option("--ttl <duration>", "how long the token is valid (e.g. 30m, 1h)", "1h")
    .option("--node <name>", "the only node name the token yields a certificate for")
    .option("-o, --output <format>", "text or json", "text")
    .action(async (opts: { ttl: string; node?: string; output: string }, cmd: Command) => {
      // Checked here so a typo never reaches the server.
      parseDurationMs(opts.ttl);
      if (opts.output !== "text" && opts.output !== "json")
        throw new Error(`-o: expected text or json, got "${opts.output}"`);
      const { config, client } = connect(cmd, deps);
      if (!client.createJoinToken) throw new Error("this client cannot create join tokens");
      const t = await client.createJoinToken({ ttl: opts.ttl, ...(opts.node ? { node: opts.node } : {}) });
      if (opts.output === "json") {
        deps.out(JSON.stringify(t, null, 2));
        return;
      }
      deps.out(t.token);
      deps.err(`valid once, until ${t.expiresAt}${t.node ? `, for node ${t.node} only` : ""}; on the node run:`);
      deps.err(
        `  grove-agent --server ${config.server} --join ${t.token} --ca-hash ${t.caHash}${t.node ? ` --node-name ${t.node}` : ""}`,
      );
    });
}
