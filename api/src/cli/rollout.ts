// `grove rollout status|history|undo|pause|resume|promote APP`: an App's
// rolling update followed live (the App watch, not polling), its revisions,
// and the actions on it (control-plane/src/http/rollout-routes.ts).
import type { Command } from "commander";
import { AppProgressingReason } from "../reasons";
import { appRevisions, rolloutAction, undoRollout, type RolloutAction } from "../rollout-client";
import type { App } from "../schemas";
import type { CliClient, CliDeps } from "./deps";
import { parseDuration, UsageError } from "./kinds";
import { columnWidths, formatRow } from "./render/table";

type Connect = (cmd: Command) => { namespace: string; client: CliClient };
type Caller = Required<Pick<CliClient, "call" | "objectPath">>;

function caller(client: CliClient): Caller {
  if (!client.call || !client.objectPath) throw new Error("this client cannot reach the rollout routes");
  return { call: client.call.bind(client), objectPath: client.objectPath.bind(client) };
}

/** Where an App's rollout stands: a line to print, and whether it ended (ok or failed). */
export function rolloutVerdict(app: App): { line: string; done?: "ok" | "failed" } {
  const name = `app/${app.metadata.name}`;
  const st = app.status;
  const generation = app.metadata.generation ?? 1;
  if (!st || (st.observedGeneration ?? 0) < generation) {
    return { line: `${name}: waiting for the controller to observe generation ${generation}` };
  }
  const c = st.conditions?.find((x) => x.type === "Progressing");
  const rev = st.rollout?.revision !== undefined ? `revision ${st.rollout.revision}` : "the current template";
  const counts = `${st.updated ?? 0} of ${app.spec.instances} updated, ${st.available ?? 0} available`;
  switch (c?.reason) {
    case AppProgressingReason.Complete:
      return { line: `${name} rolled out to ${rev}: ${counts}`, done: "ok" };
    case AppProgressingReason.RolledBack:
    case AppProgressingReason.ProgressDeadlineExceeded:
      return { line: `${name}: ${c.reason}: ${c.message ?? ""}`, done: "failed" };
    case AppProgressingReason.CanaryPaused:
      return { line: `${name}: canary of ${rev} available (${counts}); waiting for grove rollout promote` };
    case AppProgressingReason.Paused:
      return { line: `${name}: paused at ${counts} (grove rollout resume)` };
    default:
      return { line: `${name}: rolling out ${rev}: ${counts}` };
  }
}

/** Follows the App through the watch until its rollout ends; throws when it failed or timed out. */
async function followStatus(
  deps: CliDeps,
  client: CliClient,
  name: string,
  namespace: string,
  timeoutMs: number | undefined,
): Promise<void> {
  let last = "";
  const judge = (app: App): boolean => {
    const v = rolloutVerdict(app);
    if (v.line !== last) deps.out(v.line);
    last = v.line;
    if (v.done === "failed") throw new Error(`rollout of app/${name} failed`);
    return v.done === "ok";
  };
  const app = await client.get("App", name, namespace);
  if (judge(app)) return;
  const watch = await client.watch("App", { namespace, resourceVersion: app.metadata.resourceVersion });
  let timedOut = false;
  const timer =
    timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          watch.close();
        }, timeoutMs)
      : undefined;
  try {
    for await (const ev of watch) {
      if (ev.type === "ERROR") throw new Error(`watch ended by the server: ${JSON.stringify(ev.object)}`);
      if (ev.object.metadata.name !== name) continue;
      if (ev.type === "DELETED") throw new Error(`app/${name} was deleted`);
      if (judge(ev.object)) return;
    }
    throw new Error(timedOut ? `app/${name}: the rollout did not end within the timeout` : "the watch ended");
  } finally {
    clearTimeout(timer);
    watch.close();
  }
}

export function registerRolloutCommands(program: Command, deps: CliDeps, connect: Connect): void {
  const rollout = program.command("rollout").description("follow, list, undo, pause, resume or promote app updates");

  rollout
    .command("status")
    .description("follow an app's rolling update live; exit 1 when it is rolled back or stops at its deadline")
    .argument("<app>", "the app's name")
    .option("--timeout <duration>", "give up (exit 1) after this long, e.g. 5m")
    .action(async (name: string, opts: { timeout?: string }, cmd: Command) => {
      const timeoutMs = opts.timeout !== undefined ? parseDuration(opts.timeout) : undefined;
      const { namespace, client } = connect(cmd);
      await followStatus(deps, client, name, namespace, timeoutMs);
    });

  rollout
    .command("history")
    .description("list an app's kept revisions (its last templates)")
    .argument("<app>", "the app's name")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { namespace, client } = connect(cmd);
      const list = await appRevisions(caller(client), name, namespace);
      const rows = [["REVISION", "CREATED", "TEMPLATE"]];
      for (const r of list.items) {
        const t = r.template;
        const what = t.image ?? t.rootfs ?? "";
        const cmdline = [...(t.entrypoint ?? []), ...(t.command ?? [])].join(" ");
        const summary = `${what} ${cmdline}`.trim();
        rows.push([
          `${r.revision}${r.revision === list.current ? " (current)" : ""}`,
          r.createdAt,
          summary.length > 60 ? `${summary.slice(0, 57)}...` : summary,
        ]);
      }
      const widths = columnWidths(rows);
      for (const row of rows) deps.out(formatRow(row, widths));
    });

  rollout
    .command("undo")
    .description("return an app to an earlier revision (default: the one before the current)")
    .argument("<app>", "the app's name")
    .option("--to-revision <n>", "the revision to return to (grove rollout history lists them)")
    .action(async (name: string, opts: { toRevision?: string }, cmd: Command) => {
      let to: number | undefined;
      if (opts.toRevision !== undefined) {
        if (!/^[1-9][0-9]*$/.test(opts.toRevision)) {
          throw new UsageError(`--to-revision: give a revision number, not "${opts.toRevision}"`);
        }
        to = Number(opts.toRevision);
      }
      const { namespace, client } = connect(cmd);
      await undoRollout(caller(client), name, namespace, to);
      deps.out(`app/${name} rolled back${to !== undefined ? ` to revision ${to}` : ""}`);
    });

  const action = (verb: RolloutAction, description: string, done: string) =>
    rollout
      .command(verb)
      .description(description)
      .argument("<app>", "the app's name")
      .action(async (name: string, _opts: unknown, cmd: Command) => {
        const { namespace, client } = connect(cmd);
        await rolloutAction(caller(client), name, verb, namespace);
        deps.out(`app/${name} ${done}`);
      });
  action("pause", "stop an app's rolling update where it is (spec.update.paused)", "rollout paused");
  action("resume", "let a paused rolling update go on", "rollout resumed");
  action("promote", "let a canary rolling update go on to every instance", "canary promoted");
}
