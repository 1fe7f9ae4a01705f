// Maps what the etcd3 client throws to the API's error catalogue. Anything that
// means "etcd did not answer" becomes StoreUnavailable (HTTP 503) so callers
// can tell an unreachable store from a bug; everything else stays as it is.
//
// Note that a timed-out write is ambiguous (etcd may have applied it): the
// message says so, callers re-read before retrying.

import { GroveError } from "@grove/api";

/** gRPC status codes that mean the server was not reached or did not answer. */
const UNAVAILABLE_GRPC_CODES = new Set([
  1, // CANCELLED (the channel was torn down under the call)
  4, // DEADLINE_EXCEEDED
  14, // UNAVAILABLE
]);

/** etcd3 error class names that mean the same. */
const UNAVAILABLE_ERROR_NAMES = new Set([
  "GRPCUnavailableError",
  "GRPCDeadlineExceededError",
  "GRPCCancelledError",
  "BrokenCircuitError",
  "TaskCancelledError",
  "EtcdWatchStreamEnded",
]);

const UNAVAILABLE_MESSAGE_PATTERNS = [
  /ECONNREFUSED/,
  /ECONNRESET/,
  /EHOSTUNREACH/,
  /ETIMEDOUT/,
  /No connection established/i,
  /deadline exceeded/i,
  /\bunavailable\b/i,
  /failed to connect/i,
  /etcdserver: (request timed out|leader changed|no leader|too many requests)/,
];

/** True when the error means etcd could not be reached or did not answer in time. */
export function isConnectivityError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof GroveError) return err.code === "StoreUnavailable";
  const code = (err as { code?: unknown }).code;
  if (typeof code === "number" && UNAVAILABLE_GRPC_CODES.has(code)) return true;
  if (UNAVAILABLE_ERROR_NAMES.has(err.constructor.name) || UNAVAILABLE_ERROR_NAMES.has(err.name)) return true;
  return UNAVAILABLE_MESSAGE_PATTERNS.some((re) => re.test(err.message));
}

/**
 * Turns an etcd3 failure into a GroveError: connectivity failures become
 * StoreUnavailable naming the endpoints; GroveErrors pass through; anything
 * else becomes Internal with the etcd message.
 */
export function mapEtcdError(err: unknown, endpoints: readonly string[]): GroveError {
  if (err instanceof GroveError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  if (isConnectivityError(err)) return storeUnavailable(endpoints, detail);
  if (isOutOfSpace(err)) return storeOutOfSpace(endpoints, detail);
  if (/required revision has been compacted/.test(detail)) {
    return new GroveError("Gone", `the requested revision has been compacted (${detail})`);
  }
  if (/required revision is a future revision/.test(detail)) {
    return new GroveError("Gone", `the requested revision is newer than the store's (${detail})`);
  }
  return new GroveError("Internal", `etcd request failed: ${detail}`);
}

/**
 * True when a response was larger than the client accepts (gRPC
 * RESOURCE_EXHAUSTED, "Received message larger than max"): the page was too
 * big and a smaller one will do.
 */
export function isMessageTooLarge(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return code === 8 || /message larger than max|RESOURCE_EXHAUSTED/i.test(err.message);
}

/** etcd's NOSPACE alarm: the backend reached its quota and every write that adds data is refused. */
export function isOutOfSpace(err: unknown): boolean {
  return err instanceof Error && /database space exceeded|NOSPACE/i.test(err.message);
}

export function storeOutOfSpace(endpoints: readonly string[], detail: string): GroveError {
  return new GroveError(
    "StoreOutOfSpace",
    `the control plane's store (etcd at ${endpoints.join(",")}) is out of space and refuses writes until an operator ` +
      `compacts, defragments and disarms it (docs/operations.md, "etcd out of space"); reads and deletes still work: ${detail}`,
  );
}

export function storeUnavailable(endpoints: readonly string[], detail: string): GroveError {
  return new GroveError(
    "StoreUnavailable",
    `the control plane's store (etcd at ${endpoints.join(",")}) is unreachable: ${detail}`,
  );
}

export function conflict(key: string, expected: string, actual: string): GroveError {
  return new GroveError(
    "Conflict",
    `the object at ${key} was modified (resourceVersion ${expected} is stale, current is ${actual}); re-read it and retry`,
  );
}

export function notFound(key: string): GroveError {
  return new GroveError("NotFound", `${key} not found`);
}

export function alreadyExists(key: string): GroveError {
  return new GroveError("AlreadyExists", `${key} already exists`);
}
