// grove create token NAME --namespace NS --role ROLE: an API token, shown once.
import type { Command } from "commander";
import { ROLES, type Role } from "../secrets";
import { connect, type CliDeps } from "./deps";
import { UsageError } from "./kinds";

export function registerCreateCommands(program: Command, deps: CliDeps): void {
  const create = program.command("create").description("create things that are not manifests (tokens)");
  create
    .command("token")
    .description("create an API token bound to a role; it is printed once and cannot be shown again")
    .argument("<name>", "the token's name (DNS label)")
    .requiredOption("--role <role>", `one of ${ROLES.join(", ")}`)
    .option(
      "--also-namespace <ns...>",
      "further namespaces the role holds in, besides -n/--namespace (you must be allowed to create tokens in each)",
    )
    .action(async (name: string, opts: { role: string; alsoNamespace?: string[] }, cmd: Command) => {
      if (!(ROLES as readonly string[]).includes(opts.role)) {
        throw new UsageError(`--role: give one of ${ROLES.join(", ")}, not "${opts.role}"`);
      }
      const { config, client } = connect(cmd, deps);
      if (!client.createToken) throw new UsageError("this client cannot create tokens");
      // cluster-admin tokens belong to no namespace; the others to -n/--namespace (or the default one).
      const ns = opts.role === "cluster-admin" ? undefined : config.namespace;
      if (ns === undefined && opts.alsoNamespace?.length) {
        throw new UsageError("--also-namespace: a cluster-admin token holds in every namespace");
      }
      const t = await client.createToken(name, opts.role as Role, ns, opts.alsoNamespace);
      const bound = [t.namespace, ...(t.namespaces ?? [])].filter((n) => n !== undefined);
      const where = bound.length === 0 ? "" : ` in namespace${bound.length > 1 ? "s" : ""} ${bound.join(", ")}`;
      deps.err(`token ${t.name} (${t.role}${where}): store it now, it is not shown again`);
      deps.out(t.token ?? "");
    });
}
