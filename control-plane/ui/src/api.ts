// The dashboard's side of the HTTP API: the token (sessionStorage only, never
// in a URL), JSON reads, and live collections kept by watches that resume from
// the last revision seen (BOOKMARK lines included) and relist on Gone.

const TOKEN_KEY = "grove.token";

export function token(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}
export function signIn(t: string): void {
  sessionStorage.setItem(TOKEN_KEY, t);
}
export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the server refuses the token (401): the page goes back to sign-in. */
export let onUnauthorized: () => void = () => undefined;
export function setOnUnauthorized(f: () => void): void {
  onUnauthorized = f;
}

export async function call(path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(path, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token() ?? ""}` },
  });
  if (res.ok) return res;
  let message = `${res.status} ${res.statusText}`;
  try {
    message = ((await res.json()) as { message?: string }).message ?? message;
  } catch {
    // not an API error body
  }
  if (res.status === 401) onUnauthorized();
  throw new ApiError(res.status, message);
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await call(path)).json()) as T;
}

/** Reads a streamed body line by line until it ends or signal aborts. */
export async function readLines(res: Response, onLine: (line: string) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  }
  if (buf) onLine(buf);
}

export interface Meta {
  name: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
}
export interface Obj {
  metadata: Meta;
}
interface WatchLine {
  type: "ADDED" | "MODIFIED" | "DELETED" | "ERROR" | "BOOKMARK";
  object: Obj & { code?: string; message?: string };
}

/**
 * A collection kept live by ?watch=1: the objects by namespace/name, and a
 * callback after every change. Reconnects after a broken stream from the last
 * revision seen; after Gone (history compacted) it starts over with a list.
 */
export class LiveCollection<T extends Obj> {
  readonly items = new Map<string, T>();
  private revision: string | undefined;
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(
    private readonly path: string,
    private readonly onChange: () => void,
    private readonly onError: (message: string) => void = () => undefined,
  ) {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const q = new URLSearchParams({ watch: "1", allowWatchBookmarks: "1" });
        if (this.revision !== undefined) q.set("resourceVersion", this.revision);
        else this.items.clear();
        const sep = this.path.includes("?") ? "&" : "?";
        const res = await call(`${this.path}${sep}${q.toString()}`, { signal: this.abort.signal });
        await readLines(res, (line) => this.apply(JSON.parse(line) as WatchLine));
      } catch (err) {
        if (this.stopped) return;
        this.onError(err instanceof Error ? err.message : String(err));
        if (err instanceof ApiError && err.status === 401) return;
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  private apply(ev: WatchLine): void {
    if (ev.type === "ERROR") {
      // Gone: list again from scratch; anything else: reconnect from where we were.
      if (ev.object.code === "Gone") this.revision = undefined;
      return;
    }
    this.revision = ev.object.metadata.resourceVersion ?? this.revision;
    if (ev.type === "BOOKMARK") return;
    const key = `${ev.object.metadata.namespace ?? ""}/${ev.object.metadata.name}`;
    if (ev.type === "DELETED") this.items.delete(key);
    else this.items.set(key, ev.object as unknown as T);
    this.onChange();
  }
}
