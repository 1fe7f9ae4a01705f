// The API's error catalogue: every error body the HTTP API returns has one of
// these stable codes. Clients and tests match on `code`, never on the message.

export const ERROR_CODES = {
  ValidationFailed: 400,
  UnknownKind: 400,
  BadRequest: 400,
  Unauthorized: 401,
  /** Authenticated, but the identity's role does not allow this verb on this resource. */
  Forbidden: 403,
  /** A namespace's quota (cpu, memory, instances, host ports) would be exceeded; the message names it and the amounts. */
  QuotaExceeded: 403,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Gone: 410,
  /** The namespace's admission policy (restricted, baseline) refuses a field; details name each JSON pointer. */
  AdmissionDenied: 422,
  /** A per-identity limit (concurrent watches, log follows, exec sessions, request rate). */
  TooManyRequests: 429,
  StoreUnavailable: 503,
  /** etcd is out of space (its NOSPACE alarm is raised): writes are refused, reads and deletes work. */
  StoreOutOfSpace: 503,
  /** The instance's node has no agent connected to this control plane (logs, exec, stats). */
  NodeUnavailable: 503,
  Internal: 500,
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export interface FieldError {
  /** JSON pointer into the submitted object, e.g. "/spec/instances". */
  path: string;
  message: string;
  /** Position in the source file when the object came from YAML. */
  file?: string;
  line?: number;
  col?: number;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: FieldError[];
}

/** An error with a catalogued code; the HTTP layer maps it to a status once. */
export class GroveError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: FieldError[],
  ) {
    super(message);
    this.name = "GroveError";
  }

  get status(): number {
    return ERROR_CODES[this.code];
  }

  toBody(): ErrorBody {
    return this.details?.length
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }
}
