// Watch streams: GET <collection>?watch=1 answers newline-delimited JSON
// WatchEvents for as long as the client keeps the connection open.
//
// Without a resourceVersion the stream starts with ADDED for every current
// object, then follows the changes after that list. With one it follows the
// changes after it. When the store cannot resume (the revision was compacted)
// the stream sends one ERROR event with code Gone and ends: the client lists
// again, as with Kubernetes' 410.
//
// With a label selector the stream carries only the objects that match: one
// that stops matching is sent as DELETED, one that starts matching as ADDED
// (as Kubernetes does), so a client's cache stays exactly the selected set.
// With bookmarks asked for, an idle stream gets a BOOKMARK line (the latest
// revision the stream has seen) every bookmarkMs: proxies and browsers keep it
// open, and the client has a revision to resume from that is not far behind.
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { FastifyReply } from "fastify";
import type { ErrorBody, Kind, WatchEvent } from "@grove/api";
import type { Repository, ResourceOf } from "../resources/repository";
import type { Watch } from "../store/store";
import { errorResponse } from "./errors";

/** How long a watch that asked for bookmarks stays silent at most, unless the server says otherwise. */
export const DEFAULT_WATCH_BOOKMARK_MS = 10_000;

/** A client that lets this much output pile up unread is dropped (it relists when it comes back). */
const MAX_BUFFERED_BYTES = 16 * 2 ** 20;

/** Open streams, so that shutdown can end them instead of waiting for clients. */
export class WatchRegistry {
  private readonly open = new Set<() => void>();

  add(end: () => void): void {
    this.open.add(end);
  }

  remove(end: () => void): void {
    this.open.delete(end);
  }

  get size(): number {
    return this.open.size;
  }

  closeAll(): void {
    for (const end of [...this.open]) end();
  }
}

export interface WatchRequest<K extends Kind> {
  repo: Repository;
  registry: WatchRegistry;
  kind: K;
  /** undefined: every namespace (or a cluster-scoped kind). */
  namespace: string | undefined;
  /** Stream the changes after this revision; undefined: list first. */
  resourceVersion: string | undefined;
  /** Only objects this selects (label selector); all without. */
  match?: (obj: ResourceOf<K>) => boolean;
  /** Send a BOOKMARK line after this long without output; none without. */
  bookmarkMs?: number;
}

/** A BOOKMARK carries only the revision the stream has seen up to (resume from it with resourceVersion=). */
export interface WatchBookmark {
  type: "BOOKMARK";
  object: { metadata: { resourceVersion: string } };
}

type StreamEvent<T> = WatchEvent<T> | { type: "ERROR"; object: ErrorBody } | WatchBookmark;

interface Meta {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

/** What a watch stream reads: any collection that lists at a revision and watches from one (Events too). */
export interface WatchSource<T> {
  registry: WatchRegistry;
  /** For the log. */
  what: string;
  resourceVersion: string | undefined;
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  watch(
    fromRevision: string,
    handlers: { onEvent(ev: WatchEvent<T>): void; onRelist(): void; onError(err: Error): void },
  ): Promise<Watch>;
  /** Only objects this selects; all without. */
  match?: (obj: T) => boolean;
  /** Send a BOOKMARK line after this long without output; none without. */
  bookmarkMs?: number;
}

export async function streamWatch<K extends Kind>(reply: FastifyReply, w: WatchRequest<K>): Promise<void> {
  await streamWatchOf<ResourceOf<K>>(reply, {
    registry: w.registry,
    what: w.kind,
    resourceVersion: w.resourceVersion,
    list: () => w.repo.list(w.kind, w.namespace),
    watch: (from, handlers) => w.repo.watch(w.kind, w.namespace, from, handlers),
    ...(w.match ? { match: w.match } : {}),
    ...(w.bookmarkMs !== undefined ? { bookmarkMs: w.bookmarkMs } : {}),
  });
}

const keyOf = (obj: unknown): string => {
  const m = (obj as Meta).metadata;
  return `${m?.namespace ?? ""}/${m?.name ?? ""}`;
};

/**
 * Turns store events into the events of the selected set: the keys that
 * matched last are remembered, so leaving the set is a DELETED and entering
 * it an ADDED. Undefined: the event is not for this stream.
 */
function selectEvent<T>(
  ev: WatchEvent<T>,
  match: (obj: T) => boolean,
  selected: Set<string>,
): WatchEvent<T> | undefined {
  const key = keyOf(ev.object);
  const was = selected.has(key);
  if (ev.type === "DELETED") {
    selected.delete(key);
    return was ? ev : undefined;
  }
  if (match(ev.object)) {
    selected.add(key);
    return was ? { type: "MODIFIED", object: ev.object } : { type: "ADDED", object: ev.object };
  }
  selected.delete(key);
  return was ? { type: "DELETED", object: ev.object } : undefined;
}

export async function streamWatchOf<T>(reply: FastifyReply, w: WatchSource<T>): Promise<void> {
  let initial: T[] = [];
  let after = w.resourceVersion;
  if (after === undefined) {
    const list = await w.list();
    initial = w.match ? list.items.filter(w.match) : list.items;
    after = list.resourceVersion;
  }
  // Keys of the objects the client has (with a selector): resuming from a revision, none yet.
  const selected = new Set(initial.map(keyOf));
  let seenRevision = BigInt(after);
  let lastOutput = performance.now();

  // Both are set once, after handlers that read them already exist.
  const conn: { raw?: ServerResponse; watch?: Watch } = {};
  const pending: string[] = [];
  let ended = false;

  const send = (ev: StreamEvent<T>) => {
    if (ended) return;
    lastOutput = performance.now();
    const line = JSON.stringify(ev) + "\n";
    if (!conn.raw) {
      pending.push(line);
      return;
    }
    conn.raw.write(line);
    if (conn.raw.writableLength > MAX_BUFFERED_BYTES) {
      reply.log.warn({ kind: w.what }, "watch client is not reading; dropping it");
      end();
    }
  };
  let bookmarks: NodeJS.Timeout | undefined;
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(bookmarks);
    w.registry.remove(end);
    void conn.watch?.close().catch((err: unknown) => reply.log.warn({ err }, "closing a store watch failed"));
    conn.raw?.end();
  };

  // Start following before answering, so a store that is down still gets a
  // proper 503 instead of an empty 200 stream. Events that arrive before the
  // headers are out wait in `pending`.
  const watch = await w.watch(String(BigInt(after) + 1n), {
    onEvent: (ev) => {
      const rv = (ev.object as Meta).metadata?.resourceVersion;
      if (rv !== undefined && /^[0-9]+$/.test(rv) && BigInt(rv) > seenRevision) seenRevision = BigInt(rv);
      const out = w.match ? selectEvent(ev, w.match, selected) : ev;
      if (out) send(out);
    },
    onRelist: () => {
      send({
        type: "ERROR",
        object: {
          code: "Gone",
          message: `resourceVersion ${after} is too old (the store compacted its history): list again and watch from the list's resourceVersion`,
        },
      });
      end();
    },
    onError: (err) => {
      send({ type: "ERROR", object: errorResponse(err).body });
      end();
    },
  });
  conn.watch = watch;
  // The stream may have ended before the watch was known to end(); close it now then.
  if (ended) void watch.close().catch(() => undefined);

  reply.hijack();
  const raw = reply.raw;
  conn.raw = raw;
  raw.writeHead(200, {
    // Headers hooks set before the hijack (CORS) still go out.
    ...(reply.getHeaders() as OutgoingHttpHeaders),
    "content-type": "application/x-ndjson",
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  });
  // Send the headers now: a watch of an empty collection writes nothing else for a while.
  raw.flushHeaders();
  for (const object of initial) raw.write(JSON.stringify({ type: "ADDED", object }) + "\n");
  for (const line of pending.splice(0)) raw.write(line);
  if (ended) {
    raw.end();
    return;
  }
  w.registry.add(end);
  raw.on("close", end);
  const every = w.bookmarkMs;
  if (every !== undefined && every > 0) {
    // Checked at a quarter of the period, so an idle stream gets one within 1.25 periods.
    bookmarks = setInterval(
      () => {
        if (performance.now() - lastOutput < every) return;
        send({ type: "BOOKMARK", object: { metadata: { resourceVersion: String(seenRevision) } } });
      },
      Math.max(50, every / 4),
    );
    bookmarks.unref();
  }
}
