// `grove get events [-w] [-n NS | -A]` and the "Events:" section of `grove describe`.
import * as YAML from "yaml";
import { compareEvents, type Event } from "../events";
import type { CliClient, CliDeps } from "./deps";
import { columnWidths, formatAge, formatRow } from "./render/table";

export const EVENTS_WORDS = ["event", "events", "ev"];
/** How many of an object's latest events `grove describe` shows. */
export const DESCRIBE_EVENTS = 10;

const HEADERS = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"];

/** "app/web/web-0", "node/n1". */
function objectOf(ev: Event): string {
  const o = ev.involvedObject;
  return [o.kind.toLowerCase(), o.name, ...(o.instance ? [o.instance] : [])].join("/");
}

function row(ev: Event, now: number, showNamespace: boolean): string[] {
  const cells = [
    formatAge(ev.lastTimestamp, now),
    ev.type,
    ev.reason,
    objectOf(ev),
    String(ev.count),
    ev.message.replace(/\s+/g, " "),
  ];
  return showNamespace ? [ev.metadata.namespace, ...cells] : cells;
}

export async function getEvents(
  deps: CliDeps,
  client: CliClient,
  opts: { namespace: string; allNamespaces: boolean; output: string; watch: boolean },
): Promise<void> {
  if (!client.events || !client.watchEvents) throw new Error("this client cannot read events");
  const scope = { namespace: opts.namespace, allNamespaces: opts.allNamespaces };
  const list = await client.events(scope);
  const items = [...list.items].sort(compareEvents);
  const headers = opts.allNamespaces ? ["NAMESPACE", ...HEADERS] : HEADERS;
  const print = (ev: Event, widths: number[]) => {
    if (opts.output === "json") deps.out(JSON.stringify(ev, null, opts.watch ? undefined : 2));
    else if (opts.output === "yaml") deps.out(`---\n${YAML.stringify(ev).trimEnd()}`);
    else deps.out(formatRow(row(ev, deps.now(), opts.allNamespaces), widths));
  };
  const widths = columnWidths([headers, ...items.map((e) => row(e, deps.now(), opts.allNamespaces))]);
  if (opts.output === "json" && !opts.watch) deps.out(JSON.stringify({ items }, null, 2));
  else if (opts.output === "yaml" && !opts.watch) deps.out(YAML.stringify({ items }).trimEnd());
  else {
    if (items.length === 0) deps.err(`No events found${opts.allNamespaces ? "" : ` in namespace ${opts.namespace}`}.`);
    if (opts.output === "table" || opts.output === "wide") deps.out(formatRow(headers, widths));
    for (const ev of items) print(ev, widths);
  }
  if (!opts.watch) return;
  const watch = await client.watchEvents(scope, { resourceVersion: list.metadata.resourceVersion });
  for await (const event of watch) {
    if (event.type === "ERROR") {
      watch.close();
      throw new Error(`watch ended by the server: ${JSON.stringify(event.object)}`);
    }
    if (event.type === "DELETED") continue; // expired
    if (event.type !== "ADDED" && event.type !== "MODIFIED") continue; // a bookmark or heartbeat line
    print(event.object, widths);
  }
}

/** The latest events about an object for `grove describe` (an empty list when there are none). */
export async function describeEvents(
  client: CliClient,
  namespace: string | undefined,
  filter: { involvedKind?: string; involvedName?: string; instance?: string },
  now: number,
): Promise<string[]> {
  if (!client.events) return [];
  const list = await client.events({ namespace }, filter);
  const latest = [...list.items].sort(compareEvents).slice(-DESCRIBE_EVENTS);
  if (latest.length === 0) return ["Events: <none>"];
  const rows = latest.map((ev) => [
    "  " + formatAge(ev.lastTimestamp, now),
    ev.type,
    ev.reason,
    objectOf(ev),
    `x${ev.count}`,
    ev.message,
  ]);
  const widths = columnWidths(rows);
  return ["Events:", ...rows.map((r) => formatRow(r, widths))];
}
