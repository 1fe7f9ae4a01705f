// Errors become HTTP answers here, once, at the edge: a GroveError answers with
// its catalogued status and body; schema failures become ValidationFailed with
// one detail per field; anything else is a logged 500 Internal.
import type { IncomingMessage } from "node:http";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GroveError, type ErrorBody, type FieldError } from "@grove/api";

/** The subset of an Ajv error object that we read. */
interface SchemaError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Ajv errors as a ValidationFailed GroveError with JSON-pointer paths. */
export function formatSchemaErrors(errors: SchemaError[], dataVar: string): GroveError {
  const details = schemaDetails(errors);
  const where = dataVar === "body" ? "" : `${dataVar} `;
  const summary = details.map((d) => `${where}${d.path || "/"}: ${d.message}`).join("; ");
  return new GroveError("ValidationFailed", `invalid ${dataVar}: ${summary}`, details);
}

function schemaDetails(errors: SchemaError[]): FieldError[] {
  // A value that matched no branch of a union yields one error per branch and
  // one for the union; keep only the union's, which names the field once.
  const unionPaths = new Set(errors.filter((e) => e.keyword === "anyOf").map((e) => e.instancePath));
  const details: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== "anyOf" && unionPaths.has(e.instancePath)) continue;
    let path = e.instancePath;
    let message = e.message ?? "is invalid";
    if (e.keyword === "required") {
      path += `/${String(e.params.missingProperty)}`;
      message = "is required";
    } else if (e.keyword === "additionalProperties") {
      path += `/${String(e.params.additionalProperty)}`;
      message = "is not a known field";
    } else if (e.keyword === "anyOf") {
      message = "matches none of the allowed forms";
    } else if (e.keyword === "const" && e.params.allowedValue !== undefined) {
      message = `must be ${JSON.stringify(e.params.allowedValue)}`;
    }
    const id = `${path}\u0000${message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    details.push({ path, message });
  }
  return details;
}

/** Retry-After (seconds) of a 503 StoreUnavailable. */
export const STORE_RETRY_AFTER_S = "1";

/** The status and body an error answers with. */
export function errorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof GroveError) {
    if (err.code === "StoreUnavailable") {
      return {
        status: err.status,
        body: { code: "StoreUnavailable", message: `the control plane's store is unreachable: ${err.message}` },
      };
    }
    return { status: err.status, body: err.toBody() };
  }
  const fe = err as Partial<FastifyError>;
  // Fastify's own client errors: malformed JSON, wrong content type, body too large.
  if (typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, body: { code: "BadRequest", message: fe.message ?? "bad request" } };
  }
  return { status: 500, body: { code: "Internal", message: "internal error; the server log has the details" } };
}

/** What is read and thrown away of a refused body before the answer (see drainBody). */
export const DRAIN_MAX_BYTES = 16 * 1024 * 1024;
export const DRAIN_MAX_MS = 10_000;

/**
 * Reads and discards what is left of a refused request's body. Fastify refuses a body over the
 * limit as soon as it knows (from Content-Length, or once the limit is passed) and closes the
 * connection after its answer; a client still sending then meets a reset (EPIPE) and never reads
 * the 413. Bounded: past DRAIN_MAX_BYTES or DRAIN_MAX_MS the answer goes anyway and the
 * connection is closed under the sender.
 */
export function drainBody(raw: IncomingMessage, maxBytes = DRAIN_MAX_BYTES, maxMs = DRAIN_MAX_MS): Promise<void> {
  if (raw.readableEnded || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let read = 0;
    const done = (): void => {
      clearTimeout(timer);
      raw.off("data", onData).off("end", done).off("error", done).off("close", done);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      read += chunk.length;
      if (read > maxBytes) done();
    };
    const timer = setTimeout(done, maxMs);
    raw.on("data", onData).on("end", done).on("error", done).on("close", done);
    raw.resume();
  });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setSchemaErrorFormatter((errors, dataVar) => formatSchemaErrors(errors as SchemaError[], dataVar));
  app.setErrorHandler(async (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    if ((err as Partial<FastifyError>).code === "FST_ERR_CTP_BODY_TOO_LARGE") await drainBody(req.raw);
    const { status, body } = errorResponse(err);
    if (status >= 500) req.log.error({ err }, "request failed");
    else req.log.debug({ err }, "request rejected");
    // The store's health is probed every 0.5 s while it is down (store/store-health.ts).
    if (body.code === "StoreUnavailable") void reply.header("retry-after", STORE_RETRY_AFTER_S);
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ code: "NotFound", message: `no route ${req.method} ${req.url.split("?")[0]}` }),
  );
}
