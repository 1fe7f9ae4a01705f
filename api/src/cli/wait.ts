// `grove apply --wait` and `grove drain`: polling until Apps run or a node is empty.
import { REPLACES_LABEL } from "../defaults";
import { TERMINAL_STATES, type App, type Instance } from "../schemas";
import type { CliClient, CliDeps } from "./deps";
import { refOf } from "./kinds";
import { placementSummary } from "./render/describe";
import { pullProgressBar } from "./render/pull-progress";

const WAIT_POLL_MS = 1000;

/** Prints a drain's progress until no unfinished instance is left on the node. */
export async function waitForDrain(client: CliClient, name: string, timeoutMs: number, deps: CliDeps): Promise<void> {
  // The controller stops what is left after the timeout; give it and the agent a margin on top.
  const deadline = deps.now() + timeoutMs + 60_000;
  let last = "";
  for (;;) {
    const all = (await client.list("Instance", { allNamespaces: true })).items;
    const left = all.filter((i) => i.spec.nodeName === name && !TERMINAL_STATES.includes(i.status?.state ?? "Pending"));
    const moving = left.filter((i) => all.some((r) => r.metadata.labels?.[REPLACES_LABEL] === i.metadata.uid));
    const line =
      left.length === 0
        ? `node/${name} drained`
        : `${left.length} instance(s) left on ${name}, ${moving.length} moving: ${left.map((i) => i.metadata.name).join(", ")}`;
    if (line !== last) deps.out(line);
    last = line;
    if (left.length === 0) return;
    if (deps.now() > deadline) throw new Error(`drain of ${name} did not finish: ${line}`);
    await deps.sleep(WAIT_POLL_MS);
  }
}

/** Polls each app's instances until as many run as it asks for, printing progress as it changes. */
export async function waitForApps(
  client: CliClient,
  apps: readonly App[],
  timeoutMs: number,
  deps: CliDeps,
): Promise<void> {
  const deadline = deps.now() + timeoutMs;
  const waiting = new Map(apps.map((a) => [`${a.metadata.namespace}/${a.metadata.name}`, a]));
  const lastProgress = new Map<string, string>();
  const blockers = new Map<string, string>();
  for (;;) {
    const namespaces = new Set([...waiting.values()].map((a) => a.metadata.namespace));
    for (const namespace of namespaces) {
      const list = await client.list("Instance", { namespace });
      for (const [key, app] of waiting) {
        if (app.metadata.namespace !== namespace) continue;
        const mine = list.items.filter(
          (i) => i.spec.app === app.metadata.name && (!app.metadata.uid || i.spec.appUid === app.metadata.uid),
        );
        const running = mine.filter((i) => i.status?.state === "Running").length;
        const want = app.spec.instances;
        const ref = refOf("App", app.metadata.name);
        if (running === want) {
          deps.out(`${ref}: ${running}/${want} running`);
          waiting.delete(key);
          continue;
        }
        const progress = `${ref}: ${running}/${want} running`;
        const stuck = mine.find((i) => i.status?.state !== "Running");
        const blocker = stuck ? instanceBlocker(stuck) : undefined;
        if (blocker) blockers.set(key, blocker);
        else blockers.delete(key);
        const line = blocker ? `${progress} (${blocker})` : progress;
        if (lastProgress.get(key) !== line) {
          deps.out(line);
          lastProgress.set(key, line);
        }
      }
    }
    if (waiting.size === 0) return;
    const remaining = deadline - deps.now();
    if (remaining <= 0) {
      const summary = [...waiting.entries()].map(([key, app]) => {
        const blocker = blockers.get(key);
        return `${refOf("App", app.metadata.name)}${blocker ? `: ${blocker}` : ""}`;
      });
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${summary.join("; ")}`);
    }
    await deps.sleep(Math.min(WAIT_POLL_MS, remaining));
  }
}

/** Why an instance is not running, in a few words. */
function instanceBlocker(inst: Instance): string {
  const status = inst.status;
  if (status?.pull) return `${inst.metadata.name} pulling ${status.pull.image} ${pullProgressBar(status.pull)}`;
  const placement = placementSummary(status);
  const state = status?.state ?? "Pending";
  const detail = status?.reason ?? status?.message;
  const terminal = (TERMINAL_STATES as readonly string[]).includes(state);
  const base = placement && state === "Pending" ? placement : detail ? `${state}: ${detail}` : state;
  const exit = terminal && status?.exitCode !== undefined ? `, exit code ${status.exitCode}` : "";
  return `${inst.metadata.name} ${base}${exit}`;
}
