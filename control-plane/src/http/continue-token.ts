// The continue token of a paged list (Kubernetes style): opaque to clients,
// it carries the store revision of the first page and the key the next page
// starts at, relative to the collection's prefix. Every page of one list is
// therefore read at the same revision, a consistent snapshot; once etcd has
// compacted that revision the token has expired (410 Gone) and the client
// lists again from the start.
import { GroveError } from "@grove/api";

export interface ContinuePosition {
  /** The store revision every page of this list is read at. */
  revision: string;
  /** The store key the next page starts at (inclusive). */
  startKey: string;
}

interface TokenBody {
  v: 1;
  /** Revision. */
  rv: string;
  /** Start key relative to the collection prefix. */
  start: string;
  /** The collection prefix the token was issued for. */
  c: string;
}

export function encodeContinue(prefix: string, pos: ContinuePosition): string {
  if (!pos.startKey.startsWith(prefix)) throw new Error(`continue key ${pos.startKey} is not under ${prefix}`);
  const body: TokenBody = { v: 1, rv: pos.revision, start: pos.startKey.slice(prefix.length), c: prefix };
  return Buffer.from(JSON.stringify(body), "utf8").toString("base64url");
}

function badToken(why: string): GroveError {
  return new GroveError(
    "BadRequest",
    `invalid continue token: ${why}; pass the metadata.continue of the previous page unchanged, or list without continue`,
    [{ path: "/continue", message: why }],
  );
}

/** The position a token names; BadRequest naming `continue` when it is malformed or for another list. */
export function decodeContinue(prefix: string, token: string): ContinuePosition {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw badToken("it is not base64url");
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw badToken("it does not decode to a list position");
  }
  if (typeof body !== "object" || body === null) throw badToken("it does not decode to a list position");
  const b = body as Partial<TokenBody>;
  if (b.v !== 1) throw badToken(`unknown version ${JSON.stringify(b.v)}`);
  if (typeof b.rv !== "string" || !/^[1-9][0-9]*$/.test(b.rv)) throw badToken("its revision is not a store revision");
  if (typeof b.start !== "string" || b.start === "") throw badToken("it has no start key");
  if (b.c !== prefix) throw badToken("it was issued for a different list (another kind or namespace)");
  return { revision: b.rv, startKey: prefix + b.start };
}
