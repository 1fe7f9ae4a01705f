// API tokens for users and services. etcd holds only the sha256 of a token
// (the token has 256 bits of entropy, so a plain hash is enough: there is
// nothing to guess); the token itself is shown once, in the answer to its
// creation. Lookups use an in-memory map refreshed from the store every
// couple of seconds, so a deleted token stops working within that time.
import { createHash, randomBytes } from "node:crypto";
import { GroveError, type Role, type TokenInfo } from "@grove/api";
import { Keys, type Store } from "../store/store";
import { tokenMatches } from "../http/auth";
import type { Identity } from "./policy";

/** Cluster-wide tokens sit under this pseudo-namespace (not a valid namespace name). */
const CLUSTER = "_cluster";
const REFRESH_MS = 2000;
/** A flood of unknown tokens re-reads the store at most this often. */
const MISS_REFRESH_MS = 500;

export interface StoredToken {
  name: string;
  namespace?: string;
  /** Further namespaces the role holds in (besides namespace, where the token is stored). */
  namespaces?: string[];
  role: Role;
  sha256: string;
  createdAt: string;
}

function hashOf(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export function infoOf(t: StoredToken): TokenInfo {
  return {
    name: t.name,
    ...(t.namespace ? { namespace: t.namespace } : {}),
    ...(t.namespaces?.length ? { namespaces: t.namespaces } : {}),
    role: t.role,
    createdAt: t.createdAt,
  };
}

export class TokenService {
  private byHash = new Map<string, Identity>();
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    /** The bootstrap token (data dir's admin-token): always cluster-admin. */
    private readonly adminToken: string,
  ) {}

  /** Creates a token; the answer carries the token itself, the only time it is shown. */
  async create(name: string, role: Role, namespace: string | undefined, further: string[] = []): Promise<TokenInfo> {
    if (namespace === undefined && further.length > 0) {
      throw new GroveError("BadRequest", "a cluster-admin token holds in every namespace: give no namespaces", [
        { path: "/namespaces", message: "must not be set for a cluster-admin token" },
      ]);
    }
    const namespaces = further.filter((n) => n !== namespace);
    if ((role === "cluster-admin") !== (namespace === undefined)) {
      throw new GroveError(
        "BadRequest",
        namespace === undefined
          ? `role ${role} is bound to a namespace: create it under /v1/namespaces/NS/tokens`
          : `role cluster-admin is not bound to a namespace: create it with POST /v1/tokens`,
        [
          {
            path: "/role",
            message: namespace === undefined ? "must be cluster-admin here" : "must not be cluster-admin here",
          },
        ],
      );
    }
    const token = `grove_${randomBytes(32).toString("base64url")}`;
    const stored: StoredToken = {
      name,
      ...(namespace ? { namespace } : {}),
      ...(namespaces.length > 0 ? { namespaces } : {}),
      role,
      sha256: hashOf(token),
      createdAt: new Date().toISOString(),
    };
    await this.store.create(Keys.object("tokens", namespace ?? CLUSTER, name), stored);
    this.loadedAt = -Infinity;
    return { ...infoOf(stored), token };
  }

  async list(namespace: string | undefined): Promise<TokenInfo[]> {
    const r = await this.store.list<StoredToken>(Keys.collection("tokens", namespace ?? CLUSTER));
    return r.items.map((kv) => infoOf(kv.value));
  }

  async delete(name: string, namespace: string | undefined): Promise<TokenInfo> {
    const key = Keys.object("tokens", namespace ?? CLUSTER, name);
    const kv = await this.store.get<StoredToken>(key);
    if (!kv)
      throw new GroveError("NotFound", `token ${name} not found${namespace ? ` in namespace ${namespace}` : ""}`);
    await this.store.delete(key, kv.modRevision);
    this.loadedAt = -Infinity;
    return infoOf(kv.value);
  }

  /** The identity a bearer token stands for, or undefined. */
  async identify(token: string): Promise<Identity | undefined> {
    if (tokenMatches(token, this.adminToken)) return { name: "admin", role: "cluster-admin" };
    const h = hashOf(token);
    const now = performance.now();
    if (now - this.loadedAt > REFRESH_MS || (!this.byHash.has(h) && now - this.loadedAt > MISS_REFRESH_MS)) {
      await this.reload();
    }
    return this.byHash.get(h);
  }

  private reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const r = await this.store.list<StoredToken>(Keys.collection("tokens"));
        const next = new Map<string, Identity>();
        for (const { value: t } of r.items) {
          next.set(t.sha256, {
            name: t.name,
            role: t.role,
            ...(t.namespace ? { namespace: t.namespace } : {}),
            ...(t.namespaces?.length ? { namespaces: t.namespaces } : {}),
          });
        }
        this.byHash = next;
        this.loadedAt = performance.now();
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}
