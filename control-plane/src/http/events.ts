// Events (read-only): GET /v1/events, GET /v1/namespaces/{ns}/events, each
// with ?watch=1 for a stream of WatchEvents, and ?involvedKind=&involvedName=
// (and &instance=) to keep only those about one object. The control plane
// writes them (events/recorder.ts); they expire by themselves.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { API_VERSION, Event, EventList, NAME_PATTERN, compareEvents, type WatchEvent } from "@grove/api";
import { eventsPrefix } from "../events/recorder";
import type { Store } from "../store/store";
import { ErrorBodyRef } from "./schemas";
import { DEFAULT_WATCH_BOOKMARK_MS, streamWatchOf, type WatchRegistry } from "./watch-stream";

interface EventsQuery {
  watch?: string;
  resourceVersion?: string;
  involvedKind?: string;
  involvedName?: string;
  instance?: string;
  allowWatchBookmarks?: string;
}

const Query = Type.Object({
  watch: Type.Optional(Type.String({ enum: ["1", "true", "0", "false"], description: "stream WatchEvents as NDJSON" })),
  resourceVersion: Type.Optional(Type.String({ pattern: "^[0-9]+$", description: "watch the changes after it" })),
  involvedKind: Type.Optional(Type.String({ description: "only events about objects of this kind (App, Node)" })),
  involvedName: Type.Optional(Type.String({ description: "only events about the object of this name" })),
  instance: Type.Optional(Type.String({ description: "only events about this instance of an App" })),
  allowWatchBookmarks: Type.Optional(
    Type.String({
      enum: ["1", "true", "0", "false"],
      description: "with watch: BOOKMARK lines on an idle stream (docs/api.md)",
    }),
  ),
});

export function addEventSchemas(app: FastifyInstance): void {
  app.addSchema(Event);
  app.addSchema(EventList);
}

export function registerEventRoutes(
  app: FastifyInstance,
  deps: {
    store: Store;
    watches: WatchRegistry;
    /** BOOKMARK period of watches that ask (default 10 s) */ bookmarkMs?: number;
  },
): void {
  const errors = { "4xx": ErrorBodyRef, "5xx": ErrorBodyRef };
  const list = Type.Unsafe({ $ref: "EventList#" });
  const summary =
    "List events, oldest first (sorted by lastTimestamp), or watch them with ?watch=1 (application/x-ndjson WatchEvents). " +
    "Events expire after the server's --event-ttl";

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const ns = (req.params as { namespace?: string }).namespace;
    const q = req.query as EventsQuery;
    const keep = (ev: Event) =>
      (q.involvedKind === undefined || ev.involvedObject.kind === q.involvedKind) &&
      (q.involvedName === undefined || ev.involvedObject.name === q.involvedName) &&
      (q.instance === undefined || ev.involvedObject.instance === q.instance);
    const listEvents = async () => {
      const res = await deps.store.list<Event>(eventsPrefix(ns));
      const items = res.items
        .map((kv) => withVersion(kv.value, kv.modRevision))
        .filter(keep)
        .sort(compareEvents);
      return { items, resourceVersion: res.revision };
    };
    if (q.watch === "1" || q.watch === "true") {
      await streamWatchOf<Event>(reply, {
        registry: deps.watches,
        what: "Event",
        resourceVersion: q.resourceVersion,
        ...(q.allowWatchBookmarks === "1" || q.allowWatchBookmarks === "true"
          ? { bookmarkMs: deps.bookmarkMs ?? DEFAULT_WATCH_BOOKMARK_MS }
          : {}),
        list: listEvents,
        watch: (from, h) =>
          deps.store.watch<Event>(eventsPrefix(ns), from, {
            onEvent: (ev) => {
              // An expired event (its lease ended) is a delete; etcd gives its last value.
              const value = ev.type === "put" ? ev.value : ev.prevValue;
              if (!value || !keep(value)) return;
              const type: WatchEvent<Event>["type"] =
                ev.type === "delete" ? "DELETED" : ev.created ? "ADDED" : "MODIFIED";
              h.onEvent({ type, object: withVersion(value, ev.modRevision) });
            },
            onRelist: () => h.onRelist(),
            onError: (err) => h.onError(err),
          }),
      });
      return reply;
    }
    const res = await listEvents();
    return {
      apiVersion: API_VERSION,
      kind: "EventList",
      metadata: { resourceVersion: res.resourceVersion },
      items: res.items,
    };
  };

  app.get(
    "/v1/events",
    {
      schema: {
        tags: ["events"],
        operationId: "listEventsAllNamespaces",
        summary,
        querystring: Query,
        response: { 200: list, ...errors },
      },
    },
    handler,
  );
  app.get(
    "/v1/namespaces/:namespace/events",
    {
      schema: {
        tags: ["events"],
        operationId: "listEvents",
        summary,
        params: Type.Object({ namespace: Type.String({ pattern: NAME_PATTERN, maxLength: 63 }) }),
        querystring: Query,
        response: { 200: list, ...errors },
      },
    },
    handler,
  );
}

function withVersion(ev: Event, revision: string): Event {
  return { ...ev, metadata: { ...ev.metadata, resourceVersion: revision } };
}
