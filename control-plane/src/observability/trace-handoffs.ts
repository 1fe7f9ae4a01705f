// Where the control plane's stages pick up the trace the previous one left
// (@grove/common's traceLinks: the store remembers every write made in a span).
import { contextWith, injectTraceContext, SpanKind, startSpan, traceLinks, withSpan } from "@grove/common";
import { Keys } from "../store/store";

/**
 * Runs a controller's sync of `key` ("namespace/name" of `collection`) in a
 * span under the trace that wrote that object, when one did; else as it is.
 */
export function linkedSpan<T>(name: string, collection: string, key: string, fn: () => Promise<T>): Promise<T> {
  const slash = key.indexOf("/");
  const parent = traceLinks.take(
    slash < 0
      ? Keys.object(collection, undefined, key)
      : Keys.object(collection, key.slice(0, slash), key.slice(slash + 1)),
  );
  if (!parent) return fn();
  return withSpan(name, fn, { parent, attributes: { "grove.key": key } });
}

/** A controller's sync(key) of `collection`'s objects, each run as linkedSpan "<collection> controller sync". */
export function syncInTrace(collection: string, sync: (key: string) => Promise<void>): (key: string) => Promise<void> {
  return (key) => linkedSpan(`${collection} controller sync`, collection, key, () => sync(key));
}

/**
 * The trace context a desired set carries to the agent: a short span under the
 * trace that bound or changed one of its instances (the scheduler's commit),
 * injected as W3C trace context. Empty when none did or tracing is off.
 */
export function desiredSetTraceContext(
  node: string,
  instances: ReadonlyArray<{ namespace?: string; name?: string }>,
): Record<string, string> {
  const parent = traceLinks.takeAny(instances.map((i) => Keys.object("instances", i.namespace, i.name ?? "")));
  if (!parent) return {};
  const span = startSpan(
    "send desired set",
    parent,
    { "grove.node": node, "grove.instances": instances.length },
    SpanKind.PRODUCER,
  );
  if (!span) return {};
  const carrier = injectTraceContext(contextWith(parent, span));
  span.end();
  return carrier;
}
