// Trace hand-offs: taken once, bounded, expiring; nothing while tracing is off.
import { context, trace, ROOT_CONTEXT } from "@opentelemetry/api";
import { TraceLinks } from "./trace-links";
import { runInSpan, startSpan, startTracing, tracingOn, tracingRequested, withSpan } from "./tracing";

const CTX = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: "0af7651916cd43dd8448eb211c80319c",
  spanId: "b7ad6b7169203331",
  traceFlags: 1,
});

describe("tracing off (no OTEL_* variables)", () => {
  it("starts nothing and runs functions as they are", async () => {
    expect(tracingRequested({})).toBe(false);
    expect(startTracing("x", {}, {})).toBeUndefined();
    expect(tracingOn()).toBe(false);
    expect(await withSpan("s", (span) => (span === undefined ? 42 : 0))).toBe(42);
  });

  it("reads the standard variables", () => {
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_SDK_DISABLED: "true" })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_TRACES_EXPORTER: "none" })).toBe(false);
  });

  it("hands nothing on", () => {
    const links = new TraceLinks();
    links.remember("k", CTX);
    expect(links.take("k")).toBeUndefined();
  });
});

describe("TraceLinks with tracing on", () => {
  let handle: ReturnType<typeof startTracing>;
  beforeAll(() => {
    // An endpoint nothing listens on: no span is ended in these tests, so nothing is sent.
    handle = startTracing("unit", {}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" });
  });
  afterAll(async () => {
    await handle?.shutdown();
    context.disable();
    trace.disable();
  });

  it("takes a remembered context once", () => {
    const links = new TraceLinks();
    links.remember("a", CTX);
    expect(links.take("a")).toBe(CTX);
    expect(links.take("a")).toBeUndefined();
  });

  it("forgets after a minute", () => {
    let now = 0;
    const links = new TraceLinks(() => now);
    links.remember("a", CTX);
    now = 60_001;
    expect(links.take("a")).toBeUndefined();
  });

  it("keeps at most 4096 entries, dropping the oldest", () => {
    const links = new TraceLinks();
    for (let i = 0; i <= 4096; i++) links.remember(`k${i}`, CTX);
    expect(links.size).toBe(4096);
    expect(links.take("k0")).toBeUndefined();
    expect(links.take("k4096")).toBe(CTX);
  });

  it("takeAny answers the first key's context and takes them all", () => {
    const links = new TraceLinks();
    const other = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: "1".repeat(32),
      spanId: "2".repeat(16),
      traceFlags: 1,
    });
    links.remember("b", other);
    links.remember("a", CTX);
    expect(links.takeAny(["a", "b"])).toBe(CTX);
    expect(links.size).toBe(0);
  });

  it("remembers only inside a recording span", () => {
    const links = new TraceLinks();
    links.remember("outside");
    expect(links.size).toBe(0);
    // A span that is never ended, so nothing is exported.
    runInSpan(startSpan("s", ROOT_CONTEXT), () => links.remember("inside"));
    expect(links.take("inside")).toBeDefined();
  });
});
