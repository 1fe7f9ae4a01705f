// A client of the OCI distribution API (GET manifests and blobs) over
// node:http/https: Bearer token auth (the WWW-Authenticate realm/service/
// scope flow) and Basic auth, redirects to blob storage that never carry
// Authorization to another origin, and Range requests for resuming. Unless
// a registry is configured as local, nothing it names (a redirect, a token
// realm) may send the agent to a loopback, link-local or unspecified address,
// and the registry host itself may not be link-local or unspecified
// (address-guard.ts); whatever text a registry answers reaches statuses and
// logs only cleaned of control characters and cut to 512 bytes.
import * as http from "node:http";
import * as https from "node:https";
import { checkLiteralHost, guardedLookup } from "./address-guard";
import { ImageError, type ImageErrorCode } from "./errors";
import { apiHost, isLoopbackHost } from "./reference";

export interface Credentials {
  username: string;
  password: string;
}

/** Per-registry settings from the agent's image config. */
export interface RegistryHostConfig {
  /** Plain HTTP. Default: true for loopback hosts, false elsewhere. */
  insecure?: boolean;
  /** host[:port]s tried before the registry itself, in order. */
  mirrors?: string[];
  /** Credentials used for this registry when the App names no pull secret. */
  auth?: Credentials;
  /**
   * Its redirects and token realms may point at loopback, link-local and
   * unspecified addresses. Default: true for loopback hosts (a registry the
   * operator runs on the node), false elsewhere.
   */
  local?: boolean;
}

export interface RegistryClientOptions {
  hosts?: Record<string, RegistryHostConfig>;
  userAgent?: string;
  /** Per-request idle timeout (no bytes for this long). Default 60 s. */
  timeoutMs?: number;
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

interface Challenge {
  scheme: "bearer" | "basic";
  params: Record<string, string>;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

const MAX_REDIRECTS = 5;
/** The most bytes of a registry's own words that reach a status or a log. */
export const MAX_REASON_BYTES = 512;

export class RegistryClient {
  private readonly hosts: Record<string, RegistryHostConfig>;
  private readonly tokens = new Map<string, CachedToken>();
  /** Hosts that answered a Basic challenge: send Basic up front next time. */
  private readonly basicHosts = new Set<string>();
  /**
   * One connection pool per address policy, so that a kept-alive socket
   * opened under a looser policy (a local registry's, or a named registry's
   * on 127.0.0.1) is never reused for a request under a stricter one (a
   * redirect): reuse skips the lookup the check runs in.
   */
  private readonly pools: Record<AddressPolicy, { http: http.Agent; https: https.Agent }> = {
    any: newPool(),
    named: newPool(),
    remote: newPool(),
  };

  constructor(private readonly options: RegistryClientOptions = {}) {
    this.hosts = options.hosts ?? {};
  }

  close(): void {
    for (const pool of Object.values(this.pools)) {
      pool.http.destroy();
      pool.https.destroy();
    }
  }

  /** Whether a registry (or mirror) host may send the agent to loopback and link-local addresses. */
  isLocal(host: string): boolean {
    return this.hosts[host]?.local ?? isLoopbackHost(host);
  }

  /** host[:port]s to try for a registry, mirrors first. */
  endpointsFor(registry: string): string[] {
    return [...(this.hosts[registry]?.mirrors ?? []), apiHost(registry)];
  }

  baseUrl(host: string): string {
    const cfg = this.hosts[host];
    const insecure = cfg?.insecure ?? isLoopbackHost(host);
    return `${insecure ? "http" : "https"}://${host}`;
  }

  /**
   * GET https://host/v2/<repository>/<kind>/<reference>, authenticating as
   * the registry asks. Resolves with any status < 400 other than 401;
   * throws an ImageError for the rest, carrying the registry's reason.
   */
  async get(
    registry: string,
    host: string,
    repository: string,
    path: string,
    opts: { headers?: Record<string, string>; credentials?: Credentials } = {},
  ): Promise<Response> {
    const creds = opts.credentials ?? this.hosts[registry]?.auth;
    const url = new URL(`${this.baseUrl(host)}/v2/${repository}/${path}`);
    const scope = `repository:${repository}:pull`;
    const tokenKey = `${host}|${scope}|${creds?.username ?? ""}`;
    const headers = { ...opts.headers };

    for (let attempt = 0; ; attempt++) {
      const auth = this.authorizationFor(host, tokenKey, creds);
      const res = await this.follow(url, headers, auth, this.isLocal(host), `registry ${host}`);
      if (res.status !== 401 || attempt > 0) {
        if (res.status >= 400) throw await this.errorOf(res, `${registry}/${repository} ${path}`);
        return res;
      }
      const challenge = parseChallenge(String(res.headers["www-authenticate"] ?? ""));
      const reason = await readError(res.body);
      if (!challenge) throw new ImageError("UNAUTHORIZED", `${host}: 401 without a usable challenge${reason}`);
      if (challenge.scheme === "basic") {
        if (!creds) throw new ImageError("UNAUTHORIZED", `${host} requires credentials (Basic)${reason}`);
        this.basicHosts.add(host);
        continue;
      }
      await this.fetchToken(host, tokenKey, challenge, scope, creds);
    }
  }

  private authorizationFor(host: string, tokenKey: string, creds: Credentials | undefined): string | undefined {
    const token = this.tokens.get(tokenKey);
    if (token && token.expiresAt > Date.now()) return `Bearer ${token.token}`;
    if (creds && this.basicHosts.has(host)) return basic(creds);
    return undefined;
  }

  /** The token flow: GET realm?service=&scope= (with Basic credentials if any). */
  private async fetchToken(
    host: string,
    tokenKey: string,
    challenge: Challenge,
    scope: string,
    creds: Credentials | undefined,
  ): Promise<void> {
    const realm = challenge.params.realm;
    if (!realm) throw new ImageError("UNAUTHORIZED", `${host}: Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new ImageError("UNAUTHORIZED", `${host}: Bearer realm ${JSON.stringify(cleanText(realm))} is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ImageError("UNAUTHORIZED", `${host}: Bearer realm ${cleanText(realm)} is not http or https`);
    }
    if (url.protocol === "http:" && !isLoopbackHost(url.host) && !this.hosts[host]?.insecure) {
      throw new ImageError("UNAUTHORIZED", `${host}: refusing a plain-HTTP token realm ${cleanText(realm)}`);
    }
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    url.searchParams.set("scope", challenge.params.scope ?? scope);
    const res = await this.follow(
      url,
      {},
      creds ? basic(creds) : undefined,
      this.isLocal(host),
      `token realm ${cleanText(url.origin)} of ${host}`,
      "remote",
    );
    const text = await readText(res.body, 1 << 20);
    if (res.status !== 200) {
      const code: ImageErrorCode = res.status === 401 || res.status === 403 ? "UNAUTHORIZED" : "REGISTRY_ERROR";
      throw new ImageError(code, `token server ${url.origin} answered ${res.status}${reasonOf(text)}`);
    }
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new ImageError("UNAUTHORIZED", `token server ${url.origin} did not answer JSON`);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new ImageError("UNAUTHORIZED", `token server ${url.origin} answered without a token`);
    const ttl = Math.max(10, Number(body.expires_in ?? 60));
    this.tokens.set(tokenKey, { token, expiresAt: Date.now() + (ttl - 5) * 1000 });
  }

  /**
   * One GET, following redirects; Authorization only goes to the first
   * origin, never from https down to http. Unless `local`, every hop's
   * addresses are checked: the first under `firstHop` ("named" for the
   * registry host itself, "remote" for a realm the registry chose), every
   * redirect under "remote". `why` names the first hop in refusals.
   */
  private async follow(
    url: URL,
    headers: Record<string, string>,
    authorization: string | undefined,
    local: boolean,
    why: string,
    firstHop: "named" | "remote" = "named",
  ): Promise<Response> {
    const origin = url.origin;
    let current = url;
    let purpose = why;
    let policy: AddressPolicy = local ? "any" : firstHop;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const h: Record<string, string> = { ...headers, "user-agent": this.options.userAgent ?? "grove-agent" };
      if (authorization && current.origin === origin) h.authorization = authorization;
      const res = await this.request(current, h, policy, purpose);
      if (res.status >= 300 && res.status < 400 && res.headers.location) {
        res.body.resume();
        const previous = current;
        try {
          current = new URL(res.headers.location, current);
        } catch {
          throw new ImageError("REGISTRY_ERROR", `redirect to a malformed URL ${cleanText(res.headers.location)}`);
        }
        if (current.protocol !== "http:" && current.protocol !== "https:") {
          throw new ImageError("REGISTRY_ERROR", `redirect to unsupported URL ${cleanText(current.href)}`);
        }
        if (previous.protocol === "https:" && current.protocol === "http:") {
          throw new ImageError("REGISTRY_ERROR", `refusing a redirect from https to ${cleanText(current.href)}`);
        }
        purpose = `redirect to ${cleanText(current.href)}`;
        if (!local) policy = "remote";
        continue;
      }
      return res;
    }
    throw new ImageError("REGISTRY_ERROR", `more than ${MAX_REDIRECTS} redirects from ${cleanText(url.href)}`);
  }

  /** One GET to an address `policy` allows (`why` says what the request is for, in refusals). */
  private request(url: URL, headers: Record<string, string>, policy: AddressPolicy, why: string): Promise<Response> {
    const mod = url.protocol === "https:" ? https : http;
    const pool = this.pools[policy];
    const agent = url.protocol === "https:" ? pool.https : pool.http;
    let lookup = {};
    if (policy !== "any") {
      const allowLoopback = policy === "named";
      // IP literals are never looked up, so they are checked here; names in the socket's own lookup.
      checkLiteralHost(url.hostname, why, allowLoopback);
      lookup = { lookup: guardedLookup(why, allowLoopback) };
    }
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method: "GET", headers, agent, ...lookup }, (res) => {
        res.setTimeout(this.options.timeoutMs ?? 60_000, () =>
          res.destroy(
            new ImageError("REGISTRY_ERROR", `${url.host}: no data for ${this.options.timeoutMs ?? 60_000} ms`),
          ),
        );
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
      });
      req.setTimeout(this.options.timeoutMs ?? 60_000, () =>
        req.destroy(new ImageError("REGISTRY_ERROR", `${url.host}: request timed out`)),
      );
      req.on("error", (err) =>
        reject(err instanceof ImageError ? err : new ImageError("REGISTRY_ERROR", `${url.host}: ${err.message}`)),
      );
      req.end();
    });
  }

  private async errorOf(res: Response, what: string): Promise<ImageError> {
    const reason = await readError(res.body);
    const code: ImageErrorCode =
      res.status === 404 ? "NOT_FOUND" : res.status === 401 || res.status === 403 ? "UNAUTHORIZED" : "REGISTRY_ERROR";
    const label = res.status === 404 ? "not found" : res.status === 401 ? "unauthorized" : `HTTP ${res.status}`;
    return new ImageError(code, `${what}: ${label} (${res.status})${reason}`);
  }
}

/**
 * Which addresses a request may connect to: "any" (a local registry),
 * "named" (the registry or mirror host a reference or the operator names:
 * not link-local or unspecified; loopback is where a node's own registry
 * lives), "remote" (what a registry chose: a redirect, a token realm; not
 * loopback either).
 */
type AddressPolicy = "any" | "named" | "remote";

function newPool(): { http: http.Agent; https: https.Agent } {
  return { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
}

function basic(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
}

/** Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "bearer" && scheme !== "basic") return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) {
    params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? "").replace(/\\(.)/g, "$1");
  }
  return { scheme, params };
}

async function readText(body: http.IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function readBody(body: http.IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new ImageError("INVALID_IMAGE", `${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readError(body: http.IncomingMessage): Promise<string> {
  try {
    return reasonOf(await readText(body, 64 * 1024));
  } catch {
    return "";
  }
}

/**
 * ": CODE: message" from a distribution error body, or its first line;
 * cleaned and cut to MAX_REASON_BYTES (a registry's words go into statuses).
 */
function reasonOf(text: string): string {
  let reason = "";
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[]; details?: unknown };
    const errs = Array.isArray(parsed.errors) ? parsed.errors : [];
    reason = errs
      .map((e) => [e?.code, e?.message].filter((v) => typeof v === "string" && v !== "").join(": "))
      .join("; ");
    if (!reason && typeof parsed.details === "string") reason = parsed.details;
  } catch {
    /* not JSON */
  }
  if (!reason) reason = text.trim().split("\n")[0] ?? "";
  const cleaned = cleanText(reason);
  return cleaned ? `: ${cleaned}` : "";
}

/**
 * Text from outside (a registry's error body, a Location or realm header)
 * made safe for a status line and a log: control characters (C0, DEL, C1,
 * Unicode line separators and bidi overrides) become spaces, and anything
 * past `maxBytes` of UTF-8 is cut and marked.
 */
export function cleanText(text: string, maxBytes = MAX_REASON_BYTES): string {
  const s = text
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g, " ")
    .replace(/ {2,}/g, " ")
    .trim();
  const bytes = Buffer.from(s, "utf8");
  if (bytes.length <= maxBytes) return s;
  // Cut on a character boundary (a partial UTF-8 sequence decodes to U+FFFD).
  const cut = bytes
    .subarray(0, maxBytes)
    .toString("utf8")
    .replace(/\uFFFD+$/, "");
  return `${cut}… (${bytes.length - Buffer.byteLength(cut)} more bytes cut)`;
}
