// The REST shape shared by every kind: list (and watch), get, create (POST),
// apply (PUT) and delete, with the body checks that JSON Schema cannot express
// (kind, apiVersion, and that the body names the object the URL names).
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type, type TSchema } from "@sinclair/typebox";
import {
  API_VERSION,
  GroveError,
  KINDS,
  NAME_PATTERN,
  isNamespaced,
  pluralOf,
  type HostPortPolicy,
  type Kind,
} from "@grove/api";
import type { HostPortRange } from "../scheduler";
import type { Admission } from "../namespaces/admission";
import { collectionPrefix, isKind, type Repository, type ResourceOf } from "../resources/repository";
import { cachedListJson } from "./cached-list-json";
import { decodeContinue, encodeContinue } from "./continue-token";
import { DEFAULT_WATCH_BOOKMARK_MS, streamWatch, type WatchRegistry } from "./watch-stream";
import { matchesLabels, parseLabelSelector } from "./label-selector";
import { ErrorBodyRef, listRef, resourceRef } from "./schemas";

export interface RouteContext {
  repo: Repository;
  watches: WatchRegistry;
  /** The server's host port policy: fixed host ports it refuses at apply and plan. */
  hostPorts?: HostPortPolicy;
  /** The scheduler loop's range of dynamic host ports (plans hand them out as it does). */
  dynamicHostPorts?: HostPortRange;
  /** Writes users' objects through namespace admission (policy, quota); straight to the repository without. */
  admission?: Admission;
  /** How long a watch that asked for bookmarks may stay silent before it gets one (default 10 s). */
  watchBookmarkMs?: number;
  /** The replica's informer caches, by kind: `?resourceVersion=0` lists are served from them while fresh. */
  listCaches?: Partial<Record<Kind, ListCache>>;
}

/** What a list may be served from instead of etcd (an Informer). */
export interface ListCache {
  readonly isFresh: boolean;
  readonly revision: string;
  list(): Array<{ metadata: { name: string; namespace?: string } }>;
  /** One object by "ns/name" (or "name"): GETs with ?resourceVersion= are served from it when present. */
  get?(key: string): { metadata: { name: string; namespace?: string; resourceVersion?: string } } | undefined;
  /** Resolves once the cache shows `key` at `revision` or later, or deleted since (or after `timeoutMs`). */
  waitFor?(key: string, revision: string, timeoutMs?: number): Promise<void>;
}

/**
 * A whole list from the replica's cache, for `?resourceVersion=0` ("any
 * revision", as Kubernetes reads it) or `?resourceVersion=N` (not older than
 * N: the cache has reached N): in the store's key order, at the revision the
 * cache reflects. Undefined while the cache may be behind etcd or has not
 * reached N (the list is then read from etcd, which is always at N or later).
 */
function listFromCache(cache: ListCache | undefined, namespace: string | undefined, atLeast: string) {
  if (!cache?.isFresh || BigInt(cache.revision) < BigInt(atLeast)) return undefined;
  const key = (o: { metadata: { name: string; namespace?: string } }) =>
    o.metadata.namespace !== undefined ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
  const items = cache
    .list()
    .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
    .map((o) => ({ key: key(o), o }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((e) => e.o);
  return { items, resourceVersion: cache.revision };
}

export interface ResourceRouteOptions<K extends Kind> {
  kind: K;
  /** POST on the collection (users create objects of this kind). */
  create: boolean;
  /** PUT on an object (users apply objects of this kind). */
  apply: boolean;
  /** Checks beyond the schema, run on every submitted object before it is validated (may look objects up). */
  check?: (body: Record<string, unknown>) => void | Promise<void>;
  /** Fills in what is kept apart from the objects (a node's last heartbeat) on get and list. */
  decorate?: (items: ResourceOf<K>[]) => Promise<ResourceOf<K>[]>;
}

interface Params {
  namespace?: string;
  name?: string;
}

interface CollectionQuery {
  watch?: string;
  resourceVersion?: string;
  limit?: string;
  continue?: string;
  labelSelector?: string;
  allowWatchBookmarks?: string;
}

const NameParam = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
const Revision = Type.String({ pattern: "^[0-9]+$", description: "a store revision (decimal)" });

/**
 * One object from the replica's cache for `?resourceVersion=N` on a get: the
 * object as the cache shows it when that is revision N or later, or when the
 * whole cache has reached N (N=0: any revision). Undefined (read etcd) while
 * the cache may be behind etcd, has not reached N, or does not hold the object
 * (a miss is answered by etcd, never a 404 from the cache).
 */
function getFromCache(cache: ListCache | undefined, key: string, atLeast: string) {
  if (!cache?.isFresh || !cache.get) return undefined;
  const obj = cache.get(key);
  if (!obj) return undefined;
  const want = BigInt(atLeast);
  if (BigInt(cache.revision) >= want || BigInt(obj.metadata.resourceVersion ?? "0") >= want) return obj;
  return undefined;
}

/** URLs of a kind: the collection in one namespace, across namespaces, and one object. */
export function resourceUrls(kind: Kind): { collection: string; all: string; object: string } {
  const plural = pluralOf(kind);
  if (!isNamespaced(kind)) return { collection: `/v1/${plural}`, all: `/v1/${plural}`, object: `/v1/${plural}/:name` };
  return {
    collection: `/v1/namespaces/:namespace/${plural}`,
    all: `/v1/${plural}`,
    object: `/v1/namespaces/:namespace/${plural}/:name`,
  };
}

export function registerResourceRoutes<K extends Kind>(
  app: FastifyInstance,
  ctx: RouteContext,
  opts: ResourceRouteOptions<K>,
): void {
  const { kind } = opts;
  const urls = resourceUrls(kind);
  const decorate = opts.decorate ?? ((items: ResourceOf<K>[]) => Promise.resolve(items));
  const namespaced = isNamespaced(kind);
  const tags = [pluralOf(kind)];
  // OpenAPI operation ids: listApps, listAppsAllNamespaces, getApp, createApp, applyApp, deleteApp.
  const plural = kind + "s";
  const errors = { "4xx": ErrorBodyRef, "5xx": ErrorBodyRef };
  const nsParams = Type.Object({ namespace: NameParam });
  const objParams = namespaced
    ? Type.Object({ namespace: NameParam, name: NameParam })
    : Type.Object({ name: NameParam });
  const listQuery = Type.Object({
    watch: Type.Optional(
      Type.String({ enum: ["1", "true", "0", "false"], description: "stream WatchEvents as NDJSON" }),
    ),
    resourceVersion: Type.Optional(Revision),
    limit: Type.Optional(
      Type.String({
        pattern: "^[1-9][0-9]{0,8}$",
        description: "page size (a positive integer): at most this many items, and metadata.continue when more",
      }),
    ),
    continue: Type.Optional(
      Type.String({ minLength: 1, description: "the metadata.continue of the previous page (same revision)" }),
    ),
    labelSelector: Type.Optional(
      Type.String({
        description:
          "only objects whose labels match: comma-separated k=v, k==v, k!=v, k (set), !k (not set); " +
          "a watch sends an object that stops matching as DELETED",
      }),
    ),
    allowWatchBookmarks: Type.Optional(
      Type.String({
        enum: ["1", "true", "0", "false"],
        description: "with watch: a BOOKMARK line (metadata.resourceVersion only) whenever the stream was idle a while",
      }),
    ),
  });

  const listOrWatch = async (req: FastifyRequest, reply: FastifyReply) => {
    const ns = (req.params as Params).namespace;
    const q = req.query as CollectionQuery;
    const selector = q.labelSelector !== undefined ? parseLabelSelector(q.labelSelector) : [];
    const match = (o: ResourceOf<K>) => matchesLabels(selector, o.metadata.labels);
    if (q.watch === "1" || q.watch === "true") {
      const bookmarks = q.allowWatchBookmarks === "1" || q.allowWatchBookmarks === "true";
      await streamWatch(reply, {
        repo: ctx.repo,
        registry: ctx.watches,
        kind,
        namespace: ns,
        resourceVersion: q.resourceVersion,
        ...(selector.length > 0 ? { match } : {}),
        ...(bookmarks ? { bookmarkMs: ctx.watchBookmarkMs ?? DEFAULT_WATCH_BOOKMARK_MS } : {}),
      });
      return reply;
    }
    if (q.limit === undefined && q.continue === undefined) {
      // The whole collection: from etcd (read in pages at one revision), or
      // with ?resourceVersion= from this replica's cache while it is fresh and that far.
      const cached =
        q.resourceVersion !== undefined ? listFromCache(ctx.listCaches?.[kind], ns, q.resourceVersion) : undefined;
      const list = cached ?? (await ctx.repo.list(kind, ns));
      const head = {
        apiVersion: API_VERSION,
        kind: `${kind}List`,
        metadata: { resourceVersion: list.resourceVersion },
      };
      const items = (list.items as ResourceOf<K>[]).filter(match);
      if (cached !== undefined && opts.decorate === undefined) {
        const json = cachedListJson(reply, kind, head, items);
        if (json !== undefined) return reply.type("application/json; charset=utf-8").send(json);
      }
      return { ...head, items: await decorate(items) };
    }
    return listPage(req, ns, q, selector.length > 0 ? match : undefined);
  };

  /**
   * ?limit= and ?continue=: one page, every page of a list at the first page's revision.
   * A label selector filters each page after it is read, so a page may hold fewer than limit
   * items while metadata.continue says there are more (remainingItemCount is left out then: it
   * would count what the selector drops).
   */
  const listPage = async (
    req: FastifyRequest,
    ns: string | undefined,
    q: CollectionQuery,
    match: ((o: ResourceOf<K>) => boolean) | undefined,
  ) => {
    const prefix = collectionPrefix(kind, ns);
    if (q.continue !== undefined && q.resourceVersion !== undefined) {
      throw new GroveError("BadRequest", "continue and resourceVersion cannot be used together: the token has one", [
        { path: "/resourceVersion", message: "must not be set with continue" },
      ]);
    }
    const pos = q.continue !== undefined ? decodeContinue(prefix, q.continue) : undefined;
    let page;
    try {
      page = await ctx.repo.listPage(kind, ns, {
        limit: q.limit !== undefined ? Number(q.limit) : undefined,
        startKey: pos?.startKey,
        revision: pos?.revision,
      });
    } catch (err) {
      if (pos && err instanceof GroveError && err.code === "Gone") {
        req.log.debug({ err }, "continue token expired");
        throw new GroveError(
          "Gone",
          `the continue token has expired: revision ${pos.revision} of this list has been compacted. ` +
            "List again without continue to start a new snapshot",
          [{ path: "/continue", message: "expired (its revision was compacted)" }],
        );
      }
      throw err;
    }
    const metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number } = {
      resourceVersion: page.resourceVersion,
    };
    if (page.nextKey !== undefined) {
      metadata.continue = encodeContinue(prefix, { revision: page.resourceVersion, startKey: page.nextKey });
      if (!match) metadata.remainingItemCount = page.remaining;
    }
    return {
      apiVersion: API_VERSION,
      kind: `${kind}List`,
      metadata,
      items: await decorate(match ? (page.items as ResourceOf<K>[]).filter(match) : (page.items as ResourceOf<K>[])),
    };
  };
  const listSchema = (params?: TSchema) => ({
    tags,
    operationId: `list${plural}${namespaced && !params ? "AllNamespaces" : ""}`,
    summary:
      `List ${pluralOf(kind)} (all of them, or pages with ?limit= and ?continue=), ` +
      "or watch them with ?watch=1 (application/x-ndjson WatchEvents)",
    ...(params ? { params } : {}),
    querystring: listQuery,
    response: { 200: listRef(kind), ...errors },
  });

  if (namespaced) app.get(urls.collection, { schema: listSchema(nsParams) }, listOrWatch);
  app.get(urls.all, { schema: listSchema() }, listOrWatch);

  app.get(
    urls.object,
    {
      schema: {
        tags,
        operationId: `get${kind}`,
        summary:
          `Get one ${kind}; with ?resourceVersion=N it may come from the replica's cache ` +
          "at revision N or later (0: any), e.g. the resourceVersion the caller's last write answered",
        params: objParams,
        querystring: Type.Object({ resourceVersion: Type.Optional(Revision) }),
        response: { 200: resourceRef(kind), ...errors },
      },
    },
    async (req) => {
      const p = req.params as Params;
      const q = req.query as { resourceVersion?: string };
      const key = p.namespace !== undefined ? `${p.namespace}/${p.name!}` : p.name!;
      const cached =
        q.resourceVersion !== undefined ? getFromCache(ctx.listCaches?.[kind], key, q.resourceVersion) : undefined;
      const [obj] = await decorate([(cached ?? (await ctx.repo.get(kind, p.namespace, p.name!))) as ResourceOf<K>]);
      return obj;
    },
  );

  app.delete(
    urls.object,
    {
      schema: {
        tags,
        operationId: `delete${kind}`,
        summary: `Delete one ${kind} (only at ?resourceVersion= when given); answers the deleted object`,
        params: objParams,
        querystring: Type.Object({ resourceVersion: Type.Optional(Revision) }),
        response: { 200: resourceRef(kind), ...errors },
      },
    },
    async (req) => {
      const p = req.params as Params;
      const q = req.query as { resourceVersion?: string };
      return ctx.repo.delete(kind, p.namespace, p.name!, q.resourceVersion);
    },
  );

  if (opts.create) {
    if (!namespaced) throw new Error(`POST is only wired for namespaced kinds, not ${kind}`);
    app.post(
      urls.collection,
      {
        schema: {
          tags,
          operationId: `create${kind}`,
          summary: `Create a ${kind} (409 AlreadyExists when it exists)`,
          params: nsParams,
          body: resourceRef(kind),
          response: { 201: resourceRef(kind), ...errors },
        },
        preValidation: async (req) => {
          prepareBody(kind, req, { allowResourceVersion: false });
          await opts.check?.(req.body as Record<string, unknown>);
        },
      },
      async (req, reply) => {
        const created = await (ctx.admission ?? ctx.repo).create(req.body as ResourceOf<K>);
        return reply.code(201).header("x-grove-apply-result", "created").send(created);
      },
    );
  }

  if (opts.apply) {
    app.put(
      urls.object,
      {
        schema: {
          tags,
          operationId: `apply${kind}`,
          summary:
            `Apply a ${kind}: create it (201) or replace its spec and labels (200); ` +
            "a metadata.resourceVersion must be the stored one (409 Conflict). " +
            "The x-grove-apply-result header says created, configured or unchanged.",
          params: objParams,
          body: resourceRef(kind),
          response: { 200: resourceRef(kind), 201: resourceRef(kind), ...errors },
        },
        preValidation: async (req) => {
          prepareBody(kind, req, { allowResourceVersion: true });
          await opts.check?.(req.body as Record<string, unknown>);
        },
      },
      async (req, reply) => {
        const { object, result } = await (ctx.admission ?? ctx.repo).apply(req.body as ResourceOf<K>);
        return reply
          .code(result === "created" ? 201 : 200)
          .header("x-grove-apply-result", result)
          .send(object);
      },
    );
  }
}

/**
 * Checks what the schema cannot (kind, apiVersion, the URL's name and
 * namespace), fills the namespace in from the URL, and drops what only the
 * server sets (uid, generation, creationTimestamp, status).
 */
function prepareBody(kind: Kind, req: FastifyRequest, opts: { allowResourceVersion: boolean }): void {
  const body = req.body;
  if (!isObject(body)) throw new GroveError("BadRequest", `the body must be a ${kind} object in JSON`);
  if (body.kind === undefined)
    throw new GroveError("BadRequest", "kind is required", [{ path: "/kind", message: "is required" }]);
  if (typeof body.kind !== "string" || !isKind(body.kind)) {
    throw new GroveError(
      "UnknownKind",
      `unknown kind ${JSON.stringify(body.kind)}: known kinds are ${KINDS.join(", ")}`,
      [{ path: "/kind", message: `must be one of ${KINDS.join(", ")}` }],
    );
  }
  if (body.kind !== kind) {
    throw new GroveError("BadRequest", `this URL takes a ${kind}, the body is a ${body.kind}`, [
      { path: "/kind", message: `must be ${kind}` },
    ]);
  }
  if (body.apiVersion !== API_VERSION) {
    throw new GroveError("BadRequest", `apiVersion must be ${API_VERSION}, got ${JSON.stringify(body.apiVersion)}`, [
      { path: "/apiVersion", message: `must be ${API_VERSION}` },
    ]);
  }
  const meta = body.metadata;
  if (!isObject(meta)) return; // the schema reports it
  const params = req.params as Params;
  if (params.name !== undefined && meta.name !== params.name) {
    throw new GroveError(
      "BadRequest",
      `metadata.name ${JSON.stringify(meta.name)} does not match the URL's name "${params.name}"`,
      [{ path: "/metadata/name", message: `must be "${params.name}" as in the URL` }],
    );
  }
  if (isNamespaced(kind)) {
    if (meta.namespace === undefined) meta.namespace = params.namespace;
    else if (meta.namespace !== params.namespace) {
      throw new GroveError(
        "BadRequest",
        `metadata.namespace ${JSON.stringify(meta.namespace)} does not match the URL's namespace "${params.namespace}"`,
        [{ path: "/metadata/namespace", message: `must be "${params.namespace}" as in the URL` }],
      );
    }
  } else if (meta.namespace !== undefined) {
    throw new GroveError("BadRequest", `${kind} is cluster-scoped: metadata.namespace must not be set`, [
      { path: "/metadata/namespace", message: "must not be set" },
    ]);
  }
  delete meta.uid;
  delete meta.generation;
  delete meta.creationTimestamp;
  if (!opts.allowResourceVersion) delete meta.resourceVersion;
  delete body.status;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
