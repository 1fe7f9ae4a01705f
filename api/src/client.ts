// The typed HTTP client of the /v1 API. Error bodies become GroveErrors with the server's
// stable code; failures to reach the server at all become ClientErrors.
import { ERROR_CODES, GroveError, type ErrorBody, type ErrorCode, type FieldError } from "./errors";
import { type App, type Instance, type List, type Node } from "./schemas";
import { isNamespaced, pluralOf, type Kind } from "./resource-kinds";
import type { Task } from "./task-schema";
import { DEFAULT_NAMESPACE } from "./defaults";
import type { Endpoints } from "./endpoints";
import type { Event, EventFilter } from "./events";
import { ByteStream, ClientError, NdjsonWatch, type WatchStream } from "./client-streams";

export { ByteStream, ClientError, type ClientErrorCode, type WatchStream } from "./client-streams";
import type { CapacityReport, PlanResult } from "./scheduling";
import type { InstanceStats, LogsOptions, StatsList } from "./exec-and-stats";
import { Agent as UndiciAgent, type Dispatcher } from "undici";
import { openExec, type ExecRequest, type ExecSession } from "./exec-client";
import type { Role, TokenInfo } from "./secrets";

/** The object type of each kind. */
export type ResourceOf<K extends Kind> = K extends "App"
  ? App
  : K extends "Instance"
    ? Instance
    : K extends "Task"
      ? Task
      : Node;

export interface GroveClientOptions {
  /** Base URL, e.g. http://127.0.0.1:7443 */
  server: string;
  token: string;
  /** Per-request timeout (not applied to the body of a watch). Default 30 s. */
  timeoutMs?: number;
  /** The cluster CA (PEM) the server's certificate must chain to; default: the system's CAs. */
  caPem?: string;
}

/** What POST /v1/join-tokens answers. */
export interface JoinToken {
  token: string;
  expiresAt: string;
  node?: string;
  /** The cluster CA's pin for grove-agent --ca-hash. */
  caHash: string;
}

export interface ApplyResult<T> {
  object: T;
  /** True when the server created the object (201), false when it replaced it (200). */
  created: boolean;
}

export interface Health {
  healthy: boolean;
  ready: boolean;
}

export interface ListOptions {
  /** The namespace of a namespaced kind; `allNamespaces` lists them all. Ignored for nodes. */
  namespace?: string;
  allNamespaces?: boolean;
  /** ?labelSelector= ("app=web,tier!=db"): only objects whose labels match (server-side). */
  labelSelector?: string;
}

export interface ListAllOptions extends ListOptions {
  /**
   * How many objects to ask for per request; list() follows the server's
   * continue tokens until the last page. Default 500.
   */
  pageSize?: number;
}

export interface ListPageOptions extends ListOptions {
  /** At most this many objects; metadata.continue is set when more remain. */
  limit?: number;
  /** metadata.continue of the previous page: the next page, at the same revision. */
  continue?: string;
}

export const DEFAULT_LIST_PAGE_SIZE = 500;
/** How many times list() starts over when its snapshot expired (410 Gone) between pages. */
const LIST_RESTARTS = 3;

export interface WatchOptions extends ListOptions {
  /** Stream changes after this revision; without it the server first sends ADDED for every object. */
  resourceVersion?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** The longest a kept-alive connection to the server stays idle before the client drops it. */
const IDLE_CONNECTION_MS = 30_000;

export class GroveClient {
  readonly server: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly caPem: string | undefined;
  private readonly dispatcher: Dispatcher;

  constructor(options: GroveClientOptions) {
    this.server = options.server.replace(/\/+$/, "");
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.caPem = options.caPem;
    // node's fetch takes no CA option: a dispatcher of its own undici carries
    // it. Idle connections are given up after at most 30 s, well before the
    // server closes them (fastify: 72 s): trusting the server's keep-alive
    // hint to within a second or two lost the race on a busy machine, where a
    // request sent on a connection the server was closing failed with
    // UND_ERR_SOCKET ("other side closed").
    this.dispatcher = new UndiciAgent({
      keepAliveMaxTimeout: IDLE_CONNECTION_MS,
      ...(options.caPem ? { connect: { ca: options.caPem } } : {}),
    });
  }

  /**
   * Every object of the kind, as one snapshot: read in pages of `pageSize`
   * following the server's continue tokens (all at the first page's
   * revision). When that revision expires between pages (410 Gone) the list
   * starts over.
   */
  async list<K extends Kind>(kind: K, options: ListAllOptions = {}): Promise<List<ResourceOf<K>>> {
    const limit = options.pageSize ?? DEFAULT_LIST_PAGE_SIZE;
    for (let attempt = 0; ; attempt++) {
      try {
        const first = await this.listPage(kind, { ...options, limit });
        const items = [...first.items];
        for (let token = first.metadata.continue; token !== undefined;) {
          const page = await this.listPage(kind, { ...options, limit, continue: token });
          items.push(...page.items);
          token = page.metadata.continue;
        }
        return { ...first, metadata: { resourceVersion: first.metadata.resourceVersion }, items };
      } catch (err) {
        if (!(err instanceof GroveError) || err.code !== "Gone" || attempt >= LIST_RESTARTS) throw err;
      }
    }
  }

  /** One page of a list (?limit=, ?continue=); follow metadata.continue for the next. */
  async listPage<K extends Kind>(kind: K, options: ListPageOptions = {}): Promise<List<ResourceOf<K>>> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.continue !== undefined) query.set("continue", options.continue);
    if (options.labelSelector) query.set("labelSelector", options.labelSelector);
    const q = query.size > 0 ? `?${query.toString()}` : "";
    return (await this.request("GET", this.collectionPath(kind, options) + q)).body as List<ResourceOf<K>>;
  }

  async get<K extends Kind>(kind: K, name: string, namespace?: string): Promise<ResourceOf<K>> {
    return (await this.request("GET", this.objectPath(kind, name, namespace))).body as ResourceOf<K>;
  }

  /** Creates or replaces (PUT). A set metadata.resourceVersion must match the stored one (else Conflict). */
  async apply<T extends App | Node | Task>(object: T): Promise<ApplyResult<T>> {
    const kind = object.kind as Kind;
    const res = await this.request(
      "PUT",
      this.objectPath(kind, object.metadata.name, object.metadata.namespace),
      object,
    );
    return { object: res.body as T, created: res.status === 201 };
  }

  /** Deletes and returns the deleted object. */
  async delete<K extends Kind>(kind: K, name: string, namespace?: string): Promise<ResourceOf<K>> {
    return (await this.request("DELETE", this.objectPath(kind, name, namespace))).body as ResourceOf<K>;
  }

  /** /healthz and /readyz; an unreachable server throws ClientError. */
  async health(): Promise<Health> {
    const probe = async (p: string) => (await this.fetch("GET", p, undefined, false)).ok;
    const [healthy, ready] = await Promise.all([probe("/healthz"), probe("/readyz")]);
    return { healthy, ready };
  }

  async watch<K extends Kind>(kind: K, options: WatchOptions = {}): Promise<WatchStream<ResourceOf<K>>> {
    const query = new URLSearchParams({ watch: "1" });
    if (options.resourceVersion !== undefined) query.set("resourceVersion", options.resourceVersion);
    if (options.labelSelector) query.set("labelSelector", options.labelSelector);
    const controller = new AbortController();
    const url = `${this.collectionPath(kind, options)}?${query.toString()}`;
    const res = await this.fetch("GET", url, undefined, true, controller);
    if (!res.ok) throw await toGroveError(res, this.server + url);
    if (!res.body)
      throw new ClientError("BadResponse", `watch response from ${this.server} has no body`, this.server + url);
    return new NdjsonWatch<ResourceOf<K>>(res.body, controller, this.server + url);
  }

  /** Dry-run apply of these Apps through the real scheduler; nothing is written. */
  async plan(apps: App[]): Promise<PlanResult> {
    return (await this.request("POST", "/v1/plan", { items: apps })).body as PlanResult;
  }

  /** Free capacity per node and cluster-wide; with a shape ("cpu=500m,memory=1Gi"), how many more fit. */
  async capacity(shape?: string): Promise<CapacityReport> {
    const q = shape !== undefined ? `?${new URLSearchParams({ shape }).toString()}` : "";
    return (await this.request("GET", `/v1/capacity${q}`)).body as CapacityReport;
  }

  /** The endpoints of an App: its ready instances' addresses and published ports. */
  async endpoints(app: string, namespace?: string): Promise<Endpoints> {
    return (await this.request("GET", this.endpointsPath(app, namespace))).body as Endpoints;
  }

  /** A stream of the App's whole endpoints list: once now (ADDED), then on every change (MODIFIED). */
  async watchEndpoints(app: string, namespace?: string): Promise<WatchStream<Endpoints>> {
    const controller = new AbortController();
    const url = `${this.endpointsPath(app, namespace)}?watch=1`;
    const res = await this.fetch("GET", url, undefined, true, controller);
    if (!res.ok) throw await toGroveError(res, this.server + url);
    if (!res.body)
      throw new ClientError("BadResponse", `watch response from ${this.server} has no body`, this.server + url);
    return new NdjsonWatch<Endpoints>(res.body, controller, this.server + url);
  }

  /** Events, oldest first; `filter` keeps those about one object (involvedKind, involvedName, instance). */
  async events(options: ListOptions = {}, filter: EventFilter = {}): Promise<List<Event>> {
    return (await this.request("GET", this.eventsPath(options, filter, false))).body as List<Event>;
  }

  /** The events now (ADDED), then every change (an expired event is DELETED). */
  async watchEvents(options: ListOptions = {}, filter: EventFilter = {}): Promise<WatchStream<Event>> {
    const controller = new AbortController();
    const url = this.eventsPath(options, filter, true);
    const res = await this.fetch("GET", url, undefined, true, controller);
    if (!res.ok) throw await toGroveError(res, this.server + url);
    if (!res.body) throw new ClientError("BadResponse", `watch response from ${this.server} has no body`, url);
    return new NdjsonWatch<Event>(res.body, controller, this.server + url);
  }

  private eventsPath(options: ListOptions, filter: EventFilter, watch: boolean): string {
    const q = new URLSearchParams(Object.entries(filter).filter((e): e is [string, string] => e[1] !== undefined));
    if (watch) q.set("watch", "1");
    const ns = options.allNamespaces ? "" : `/namespaces/${encodeURIComponent(options.namespace ?? DEFAULT_NAMESPACE)}`;
    return `/v1${ns}/events${q.size ? `?${q.toString()}` : ""}`;
  }

  endpointsPath(app: string, namespace?: string): string {
    return `${this.objectPath("App", app, namespace)}/endpoints`;
  }

  /**
   * An instance's log (stdout and stderr) as it arrives; with follow it goes
   * on until close(). Iterating throws a ClientError when the stream breaks
   * (the agent or the control plane went away) rather than ending quietly.
   */
  async logs(name: string, namespace?: string, options: LogsOptions = {}): Promise<ByteStream> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(options))
      if (v !== undefined && v !== false) query.set(k, v === true ? "1" : String(v));
    const q = query.toString();
    const url = `${this.objectPath("Instance", name, namespace)}/logs${q ? `?${q}` : ""}`;
    const controller = new AbortController();
    const res = await this.fetch("GET", url, undefined, true, controller);
    if (!res.ok) throw await toGroveError(res, this.server + url);
    if (!res.body) throw new ClientError("BadResponse", `logs response from ${this.server} has no body`, url);
    return new ByteStream(res.body, controller, this.server + url);
  }

  /** Resource usage of a running instance, read by its agent now. */
  async instanceStats(name: string, namespace?: string): Promise<InstanceStats> {
    return (await this.request("GET", `${this.objectPath("Instance", name, namespace)}/stats`)).body as InstanceStats;
  }

  /** Resource usage of every running instance (in one namespace when given), from every node's agent. */
  async stats(namespace?: string): Promise<StatsList> {
    const q = namespace !== undefined ? `?${new URLSearchParams({ namespace }).toString()}` : "";
    return (await this.request("GET", `/v1/stats${q}`)).body as StatsList;
  }

  /** Creates an API token bound to a role (in a namespace, or cluster-admin without one); the answer shows it once. */
  async createToken(name: string, role: Role, namespace?: string, namespaces?: string[]): Promise<TokenInfo> {
    const p = namespace ? `/v1/namespaces/${encodeURIComponent(namespace)}/tokens` : "/v1/tokens";
    const body = { name, role, ...(namespaces?.length ? { namespaces } : {}) };
    return (await this.request("POST", p, body)).body as TokenInfo;
  }

  /** A single-use join token for an agent (grove token create). */
  async createJoinToken(request: { ttl?: string; node?: string }): Promise<JoinToken> {
    return (await this.request("POST", "/v1/join-tokens", request)).body as JoinToken;
  }

  /** Runs a command in a running instance over a WebSocket (exec-client.ts). */
  exec(name: string, namespace: string | undefined, request: ExecRequest): Promise<ExecSession> {
    return openExec(
      `${this.server}${this.objectPath("Instance", name, namespace)}/exec`,
      this.token,
      request,
      this.caPem,
    );
  }

  collectionPath(kind: Kind, options: ListOptions = {}): string {
    if (!isNamespaced(kind) || options.allNamespaces) return `/v1/${pluralOf(kind)}`;
    return `/v1/namespaces/${encodeURIComponent(options.namespace ?? DEFAULT_NAMESPACE)}/${pluralOf(kind)}`;
  }

  objectPath(kind: Kind, name: string, namespace?: string): string {
    const base = isNamespaced(kind)
      ? `/v1/namespaces/${encodeURIComponent(namespace ?? DEFAULT_NAMESPACE)}/${pluralOf(kind)}`
      : `/v1/${pluralOf(kind)}`;
    return `${base}/${encodeURIComponent(name)}`;
  }

  /** A JSON request to a route the typed methods do not cover (rollout-client.ts); GroveError on an error answer. */
  async call<T>(method: "GET" | "POST" | "PUT" | "DELETE", p: string, body?: unknown): Promise<T> {
    return (await this.request(method, p, body)).body as T;
  }

  private async request(method: string, p: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await this.fetch(method, p, body, true);
    if (!res.ok) throw await toGroveError(res, this.server + p);
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) };
    } catch {
      throw new ClientError(
        "BadResponse",
        `${method} ${this.server}${p}: the server answered ${res.status} with a body that is not JSON`,
        this.server + p,
      );
    }
  }

  private async fetch(
    method: string,
    p: string,
    body: unknown,
    auth: boolean,
    controller?: AbortController,
  ): Promise<Response> {
    const url = this.server + p;
    const headers: Record<string, string> = { accept: "application/json" };
    if (auth) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    // Plain requests time out as a whole; a watch only until its headers arrive, since its body
    // streams for as long as the caller keeps it open (close() aborts it).
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    let signal: AbortSignal;
    if (controller) {
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, this.timeoutMs);
      signal = controller.signal;
    } else {
      signal = AbortSignal.timeout(this.timeoutMs);
    }
    try {
      return await fetch(url, {
        method,
        headers,
        signal,
        ...({ dispatcher: this.dispatcher } as object),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw unreachable(
        timedOut ? new DOMException("timed out", "TimeoutError") : err,
        this.server,
        url,
        this.timeoutMs,
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

/** connection refused, DNS, TLS, timeout -> ClientError with the underlying code in the message. */
function unreachable(err: unknown, server: string, url: string, timeoutMs: number): ClientError {
  const e = err as {
    name?: string;
    message?: string;
    cause?: { code?: string; message?: string; errors?: { code?: string }[] };
  };
  if (e.name === "TimeoutError") {
    return new ClientError(
      "Timeout",
      `cannot reach the control plane at ${server}: no answer within ${timeoutMs} ms`,
      url,
      {
        cause: err,
      },
    );
  }
  const code = e.cause?.code ?? e.cause?.errors?.[0]?.code;
  const detail = code ?? e.cause?.message ?? e.message ?? String(err);
  return new ClientError("Unreachable", `cannot reach the control plane at ${server}: ${detail}`, url, { cause: err });
}

const HINTS: Partial<Record<ErrorCode, string>> = {
  StoreUnavailable:
    "the control plane is up but its store (etcd) is unavailable; writes and reads will fail until etcd is back",
  StoreOutOfSpace:
    "etcd is out of space and refuses writes until an operator frees space (docs/operations.md, 'etcd out of space'); " +
    "reads and deletes still work",
  Unauthorized: "the control plane rejected the token; check GROVE_TOKEN or the token in ~/.grove/config.json",
};

const STATUS_CODES: Record<number, ErrorCode> = {
  400: "BadRequest",
  401: "Unauthorized",
  404: "NotFound",
  409: "Conflict",
  410: "Gone",
  503: "StoreUnavailable",
};

/** Maps a non-2xx response to a GroveError: the body's code when it is one of ours, else from the status. */
export async function toGroveError(res: Response, url: string): Promise<GroveError> {
  const text = await res.text().catch(() => "");
  let body: Partial<ErrorBody> | undefined;
  try {
    body = JSON.parse(text) as Partial<ErrorBody>;
  } catch {
    body = undefined;
  }
  const known = typeof body?.code === "string" && Object.prototype.hasOwnProperty.call(ERROR_CODES, body.code);
  const code: ErrorCode = known ? (body?.code as ErrorCode) : (STATUS_CODES[res.status] ?? "Internal");
  const serverMessage =
    typeof body?.message === "string" && body.message !== ""
      ? body.message
      : `HTTP ${res.status} ${res.statusText} from ${url}${text && !body ? `: ${text.slice(0, 200)}` : ""}`;
  const hint = HINTS[code];
  const message = hint ? `${hint} (${serverMessage})` : serverMessage;
  const details = Array.isArray(body?.details) ? (body.details as FieldError[]) : undefined;
  return new GroveError(code, message, details);
}
