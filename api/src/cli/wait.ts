// `grove apply --wait` (following a watch) and `grove drain` (polling) until Apps run or a node is empty.
import { DEFAULT_NAMESPACE, REPLACES_LABEL } from "../defaults";
import { TERMINAL_STATES, type App, type Instance, type WatchEvent } from "../schemas";
import type { WatchStream } from "../client-streams";
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

/** After a watch ends without an answer (the server closed it), wait this long before listing again. */
const REWATCH_MS = 1000;

type Outcome = "done" | "relist" | "timeout";

/**
 * Follows the apps' instances until as many run as each asks for, printing progress as it
 * changes: a list (the state now and its revision), then a watch from that revision per
 * namespace; the wait reacts to each event instead of polling. A watch that ends (ERROR Gone,
 * or the server went away) is followed by a new list and watch.
 */
export async function waitForApps(
  client: CliClient,
  apps: readonly App[],
  timeoutMs: number,
  deps: CliDeps,
): Promise<void> {
  const waiting = new Map(apps.map((a) => [`${a.metadata.namespace}/${a.metadata.name}`, a]));
  const lastProgress = new Map<string, string>();
  const blockers = new Map<string, string>();
  const namespaces = [...new Set(apps.map((a) => a.metadata.namespace ?? DEFAULT_NAMESPACE))];
  const instances = new Map<string, Map<string, Instance>>();

  /** Prints what changed; true once every app runs all its instances. */
  const report = (): boolean => {
    for (const [key, app] of waiting) {
      const seen = instances.get(app.metadata.namespace ?? DEFAULT_NAMESPACE) ?? new Map<string, Instance>();
      const mine = [...seen.values()].filter(
        (i) => i.spec.app === app.metadata.name && (!app.metadata.uid || i.spec.appUid === app.metadata.uid),
      );
      const running = mine.filter((i) => i.status?.state === "Running").length;
      const want = app.spec.instances;
      const progress = `${refOf("App", app.metadata.name)}: ${running}/${want} running`;
      if (running === want) {
        deps.out(progress);
        waiting.delete(key);
        continue;
      }
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
    return waiting.size === 0;
  };
  const timedOut = () => {
    const summary = [...waiting.entries()].map(([key, app]) => {
      const blocker = blockers.get(key);
      return `${refOf("App", app.metadata.name)}${blocker ? `: ${blocker}` : ""}`;
    });
    return new Error(`timed out after ${timeoutMs / 1000}s waiting for ${summary.join("; ")}`);
  };

  // One deadline for the whole wait; aborted when the wait ends so no timer outlives it.
  const stop = new AbortController();
  let expired = false;
  const deadline = deps.sleep(timeoutMs, stop.signal).then(() => {
    if (!stop.signal.aborted) expired = true;
  });
  try {
    for (;;) {
      const revisions = new Map<string, string>();
      for (const namespace of namespaces) {
        const list = await client.list("Instance", { namespace });
        instances.set(namespace, new Map(list.items.map((i) => [i.metadata.name, i])));
        revisions.set(namespace, list.metadata.resourceVersion);
      }
      if (report()) return;
      if (expired) throw timedOut();
      const streams = await Promise.all(
        namespaces.map(async (namespace) => ({
          namespace,
          stream: await client.watch("Instance", { namespace, resourceVersion: revisions.get(namespace) }),
        })),
      );
      const outcome = await follow(streams, deadline, (namespace, event) => {
        const seen = instances.get(namespace) as Map<string, Instance>;
        if (event.type === "DELETED") seen.delete(event.object.metadata.name);
        else seen.set(event.object.metadata.name, event.object);
        return report();
      });
      if (outcome === "done") return;
      if (outcome === "timeout" || expired) throw timedOut();
      await Promise.race([deps.sleep(REWATCH_MS, stop.signal), deadline]);
      if (expired) throw timedOut();
    }
  } finally {
    stop.abort();
  }
}

/** Feeds the events of every stream to `onEvent` until it says done, a stream ends, or the deadline passes. */
function follow(
  streams: readonly { namespace: string; stream: WatchStream<Instance> }[],
  deadline: Promise<void>,
  onEvent: (namespace: string, event: WatchEvent<Instance>) => boolean,
): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      for (const s of streams) s.stream.close();
      resolve(outcome);
    };
    void deadline.then(() => finish("timeout"));
    for (const { namespace, stream } of streams) {
      void (async () => {
        try {
          for await (const event of stream) {
            if (settled) return;
            if (event.type === "ERROR") return finish("relist");
            // Anything else (a bookmark or heartbeat line) carries no instance.
            if (event.type !== "ADDED" && event.type !== "MODIFIED" && event.type !== "DELETED") continue;
            if (onEvent(namespace, event)) return finish("done");
          }
          finish("relist");
        } catch {
          finish("relist");
        }
      })();
    }
  });
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
