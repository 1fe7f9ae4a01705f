// `grove get KIND -l SELECTOR`: the list sent with ?labelSelector= and filtered here too. A
// server that does not know the parameter either ignores it (the filter here still applies)
// or answers 400 naming it; then the list is read whole and filtered here, and stderr says so.
import { GroveError } from "../errors";
import type { Kind } from "../resource-kinds";
import type { List } from "../schemas";
import type { CliClient, CliDeps } from "./deps";
import { formatSelector, matchesSelector, parseSelector } from "./selector";

export interface Selection {
  namespace: string;
  allNamespaces: boolean;
  selector?: string | undefined;
}

type Labeled = { metadata: { labels?: Record<string, string> } };

export interface SelectedList<T> extends List<T> {
  /** What to send with the watch that follows (absent: no selector, or the server refused it). */
  labelSelector?: string;
  matches(object: Labeled): boolean;
}

function refusedSelector(err: unknown): boolean {
  if (!(err instanceof GroveError) || err.code !== "BadRequest") return false;
  return /labelSelector/i.test(err.message) || (err.details ?? []).some((d) => /labelSelector/i.test(d.path));
}

export async function listSelected<K extends Kind>(
  client: CliClient,
  kind: K,
  selection: Selection,
  pageSize: number,
  deps: CliDeps,
): Promise<SelectedList<Awaited<ReturnType<CliClient["list"]>>["items"][number]>> {
  const reqs = selection.selector === undefined ? [] : parseSelector(selection.selector);
  const labelSelector = reqs.length ? formatSelector(reqs) : undefined;
  const base = { namespace: selection.namespace, allNamespaces: selection.allNamespaces, pageSize };
  const matches = (o: Labeled) => matchesSelector(o.metadata.labels, reqs);
  let list;
  let sent = labelSelector;
  try {
    list = await client.list(kind, { ...base, ...(labelSelector ? { labelSelector } : {}) });
  } catch (err) {
    if (!labelSelector || !refusedSelector(err)) throw err;
    deps.err(`(the server refused ?labelSelector= (${(err as Error).message}); filtering here instead)`);
    sent = undefined;
    list = await client.list(kind, base);
  }
  return {
    ...list,
    items: list.items.filter((o) => matches(o as Labeled)),
    ...(sent ? { labelSelector: sent } : {}),
    matches,
  };
}
