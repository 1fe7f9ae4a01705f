// OpenTelemetry tracing for grove-server and grove-agent (docs/observability.md).
//
// Off by default, at almost no cost: code everywhere calls `withSpan`, which
// only runs its function while no tracer provider was started. The SDK and the
// OTLP/HTTP exporter are loaded (require) only when the standard OTEL_*
// variables ask for traces, so a process without them never even loads them.
//
// Context crosses processes as W3C trace context: the `traceparent` header of
// HTTP requests, and a map carried in the desired set the control plane sends
// an agent over gRPC (a stream message has no per-message metadata).
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from "@opentelemetry/api";

export { SpanKind, SpanStatusCode, type Attributes, type Context, type Span };

let tracer: Tracer | undefined;

/** Whether the OTEL_* environment asks for traces (an OTLP endpoint or exporter, and the SDK not disabled). */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? "").toLowerCase() === "true") return false;
  const exporter = (env.OTEL_TRACES_EXPORTER ?? "").toLowerCase();
  if (exporter === "none") return false;
  return exporter === "otlp" || !!env.OTEL_EXPORTER_OTLP_ENDPOINT || !!env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
}

export interface TracingHandle {
  /** Sends what is buffered (for at most 2 s) and stops the exporter; never rejects. */
  shutdown(): Promise<void>;
}

/** The sampler OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG name (default parentbased_always_on). */
function samplerFromEnv(sdk: typeof import("@opentelemetry/sdk-trace"), env: NodeJS.ProcessEnv) {
  const name = (env.OTEL_TRACES_SAMPLER ?? "parentbased_always_on").toLowerCase();
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG ?? "1");
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1;
  const root = name.endsWith("always_off")
    ? new sdk.AlwaysOffSampler()
    : name.endsWith("traceidratio")
      ? new sdk.TraceIdRatioBasedSampler(ratio)
      : new sdk.AlwaysOnSampler();
  return name.startsWith("parentbased_") ? new sdk.ParentBasedSampler({ root }) : root;
}

/**
 * Starts tracing when the environment asks for it (tracingRequested): a tracer
 * provider with a batch processor and the OTLP/HTTP exporter (endpoint,
 * headers, timeouts from OTEL_EXPORTER_OTLP_*; batching from OTEL_BSP_*),
 * service.name from OTEL_SERVICE_NAME or `serviceName`, OTEL_RESOURCE_ATTRIBUTES
 * added. Returns undefined (and loads nothing) otherwise.
 */
export function startTracing(
  serviceName: string,
  extraAttributes: Attributes = {},
  env: NodeJS.ProcessEnv = process.env,
): TracingHandle | undefined {
  if (!tracingRequested(env)) return undefined;
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded only when tracing is on */
  const sdk = require("@opentelemetry/sdk-trace") as typeof import("@opentelemetry/sdk-trace");
  const { OTLPTraceExporter } =
    require("@opentelemetry/exporter-trace-otlp-http") as typeof import("@opentelemetry/exporter-trace-otlp-http");
  const resources = require("@opentelemetry/resources") as typeof import("@opentelemetry/resources");
  const { AsyncLocalStorageContextManager } =
    require("@opentelemetry/context-async-hooks") as typeof import("@opentelemetry/context-async-hooks");
  const { W3CTraceContextPropagator } = require("@opentelemetry/core") as typeof import("@opentelemetry/core");
  /* eslint-enable @typescript-eslint/no-require-imports */
  const resource = resources
    .resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME || serviceName, ...extraAttributes })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new sdk.TracerProvider({
    resource,
    sampler: samplerFromEnv(sdk, env),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter: new OTLPTraceExporter() })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  tracer = provider.getTracer("grove");
  return {
    // At most 2 s: an unreachable collector must not hold a process that is stopping.
    shutdown: async () => {
      tracer = undefined;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        provider.shutdown().catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000))),
      ]);
      clearTimeout(timer);
    },
  };
}

/** Whether spans are being made at all (tracing started). */
export function tracingOn(): boolean {
  return tracer !== undefined;
}

/**
 * Runs `fn` in a new span named `name` (child of `parent`, by default the
 * active context's span); the span ends when fn settles, with an error status
 * when it throws. Without a parent it starts a trace, unless `childOnly`
 * (store calls: a background watch or heartbeat write starts no trace).
 */
export async function withSpan<T>(
  name: string,
  fn: (span: Span | undefined) => Promise<T> | T,
  opts: { attributes?: Attributes; parent?: Context; kind?: SpanKind; childOnly?: boolean } = {},
): Promise<T> {
  const t = tracer;
  if (!t) return fn(undefined);
  const parent = opts.parent ?? context.active();
  // A remote parent (extracted from a message) is valid but not recording here.
  const parentContext = trace.getSpanContext(parent);
  if (opts.childOnly && !(parentContext && trace.isSpanContextValid(parentContext))) return fn(undefined);
  return t.startActiveSpan(
    name,
    { ...(opts.attributes ? { attributes: opts.attributes } : {}), ...(opts.kind ? { kind: opts.kind } : {}) },
    parent,
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/** Starts a span the caller ends (an HTTP request spanning hooks); undefined while tracing is off. */
export function startSpan(name: string, parent: Context, attributes?: Attributes, kind?: SpanKind): Span | undefined {
  return tracer?.startSpan(name, { ...(attributes ? { attributes } : {}), ...(kind ? { kind } : {}) }, parent);
}

/** Runs fn with `span` active (undefined: as it is). */
export function runInSpan<T>(span: Span | undefined, fn: () => T): T {
  if (!span) return fn();
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** The active context when it holds a recording span (something worth linking to), else undefined. */
export function activeTraceContext(): Context | undefined {
  if (!tracer) return undefined;
  const ctx = context.active();
  return trace.getSpan(ctx)?.isRecording() ? ctx : undefined;
}

/** W3C trace context of `ctx` (default: the active one) as string pairs (traceparent, tracestate). */
export function injectTraceContext(ctx?: Context): Record<string, string> {
  const carrier: Record<string, string> = {};
  if (tracer) propagation.inject(ctx ?? context.active(), carrier);
  return carrier;
}

/** The context a W3C carrier (HTTP headers, a message's map) names; ROOT_CONTEXT when none. */
export function extractTraceContext(carrier: Record<string, string | string[] | undefined>): Context {
  if (!tracer) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier);
}

/** A pino mixin: trace_id and span_id of the active span on every log line written inside one. */
export function traceLogFields(): Record<string, string> {
  if (!tracer) return {};
  const sc = trace.getSpan(context.active())?.spanContext();
  if (!sc || !trace.isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

/** `parent` with `span` as its active span (to inject a span that is not active). */
export function contextWith(parent: Context, span: Span): Context {
  return trace.setSpan(parent, span);
}
