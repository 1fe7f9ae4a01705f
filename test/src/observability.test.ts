// Traces and metrics end to end (docs/observability.md): a real grove-server
// and grove-agent exporting OTLP/HTTP to a receiver in this test (a plain
// http server on 127.0.0.1 decoding the JSON export), one `grove apply`, and
// both /metrics outputs checked by promtool.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { GroveClient } from "@grove/api";
import { runCli, waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "obs-node-1";
const CGROUP_PARENT = `grove-obs-${RUN_TAG}`;

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}
interface Collected extends OtlpSpan {
  service: string;
}

/** An OTLP/HTTP receiver (JSON encoding, what @opentelemetry/exporter-trace-otlp-http sends). */
function otlpReceiver(): Promise<{ url: string; spans: Collected[]; close(): Promise<void> }> {
  const spans: Collected[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
          resourceSpans: Array<{
            resource: { attributes: OtlpSpan["attributes"] };
            scopeSpans: Array<{ spans: OtlpSpan[] }>;
          }>;
        };
        for (const rs of body.resourceSpans) {
          const service = String(
            rs.resource.attributes?.find((a) => a.key === "service.name")?.value.stringValue ?? "",
          );
          for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service });
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        spans,
        close: () => new Promise((r) => server.close(() => r())),
      }),
    ),
  );
}

function attr(s: OtlpSpan, key: string): unknown {
  const v = s.attributes?.find((a) => a.key === key)?.value;
  return v ? Object.values(v)[0] : undefined;
}

/** The value of a sample line `name{...} value` (no labels) in exposition text; 0 when absent. */
function sample(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

function promtool(text: string): { status: number | null; out: string } {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("observability: one apply is one trace across grove-server and grove-agent; metrics pass promtool", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started;
  let client: GroveClient;
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let metricsToken: string;

  const scrape = async (url: string, token = metricsToken) => {
    const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, text: await res.text() };
  };

  beforeAll(async () => {
    receiver = await otlpReceiver();
    // Standard OTEL_* configuration; a short batch delay so spans arrive within the test.
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: "100" };
    m = await startMachine("grove-obs", { env: otel });
    ({ dir, server, client } = m);
    agent = await m.startAgent({ nodeName: NODE, cgroupParent: CGROUP_PARENT, env: otel });
    metricsToken = fs.readFileSync(path.join(dir, "server", "metrics-token"), "utf8").trim();
    await waitNodeReady(client, NODE);
  });

  afterAll(async () => {
    await agent?.stop();
    await server?.stop();
    await receiver?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("metrics need the metrics token or a cluster-admin token; the metrics token is no API identity", async () => {
    expect((await scrape(`${server.url}/metrics`, "")).status).toBe(401);
    expect((await scrape(`${server.url}/metrics`, "not-a-token")).status).toBe(401);
    expect((await scrape(`${server.url}/v1/nodes/${NODE}/metrics`, "")).status).toBe(401);
    // Authentication comes before validation: a bad node name tells an unauthenticated caller nothing.
    expect((await scrape(`${server.url}/v1/nodes/Not_A_Name/metrics`, "")).status).toBe(401);
    expect((await scrape(`${server.url}/v1/nodes/Not_A_Name/metrics`)).status).toBe(400);
    expect((await scrape(`${server.url}/metrics`)).status).toBe(200);
    expect((await scrape(`${server.url}/metrics`, server.adminToken)).status).toBe(200);
    expect((await scrape(`${server.url}/v1/apps`)).status).toBe(401);
    // Prometheus HTTP service discovery: the node's metrics, through this server.
    expect((await scrape(`${server.url}/v1/metrics/targets`, "")).status).toBe(401);
    const targets = await scrape(`${server.url}/v1/metrics/targets`);
    expect(JSON.parse(targets.text)).toEqual([
      { targets: [new URL(server.url).host], labels: { __metrics_path__: `/v1/nodes/${NODE}/metrics`, node: NODE } },
    ]);
  });

  test("grove apply: one trace from the HTTP request to the container start; histograms move; promtool accepts both", async () => {
    const before = {
      server: (await scrape(`${server.url}/metrics`)).text,
      agent: (await scrape(`${server.url}/v1/nodes/${NODE}/metrics`)).text,
    };
    const file = path.join(dir, "obs-app.yaml");
    fs.writeFileSync(
      file,
      "apiVersion: grove/v1\nkind: App\nmetadata: { name: obs-app }\nspec:\n" +
        '  rootfs: busybox\n  command: ["/bin/sh", "-c", "while true; do sleep 5; done"]\n' +
        "  instances: 1\n  stopGracePeriodSeconds: 1\n  resources: { cpu: 100m, memory: 32Mi, pids: 16 }\n",
    );
    const env = { GROVE_SERVER: server.url, GROVE_TOKEN: server.adminToken, HOME: dir, GROVE_CONFIG: "" };
    const applied = await runCli(["apply", "-f", file], env);
    expect(applied.code).toBe(0);
    await waitFor(
      "obs-app-0 Running",
      async () => (await client.get("Instance", "obs-app-0", "default")).status?.state === "Running",
      60_000,
    );

    // The agent's container step, and the chain of parents from it to the root.
    const seen = () => [...new Set(receiver.spans.map((s) => `${s.service}: ${s.name}`))].join(", ");
    const put = await waitFor(
      "the span of the apply's PUT",
      async () =>
        receiver.spans.find(
          (s) => s.name === "PUT /v1/namespaces/:namespace/apps/:name" && s.service === "grove-server",
        ),
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; spans received: ${seen()}`);
    });
    const container = await waitFor(
      "the agent's container start span in the apply's trace",
      async () =>
        receiver.spans.find(
          (s) => s.traceId === put.traceId && s.service === "grove-agent" && s.name === "start step container",
        ),
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; spans received: ${seen()}`);
    });
    // Parents end after their children (a controller's sync ends after its writes): wait for the whole chain.
    let missing = "";
    const chain = await waitFor(
      "every span from the container start up to the trace's root",
      async () => {
        const byId = new Map(receiver.spans.filter((s) => s.traceId === put.traceId).map((s) => [s.spanId, s]));
        const found: Collected[] = [container];
        for (let s: Collected | undefined = container; s?.parentSpanId;) {
          s = byId.get(s.parentSpanId);
          if (!s) {
            missing = found.map((c) => c.name).join(" <- ");
            return undefined;
          }
          found.push(s);
        }
        return found;
      },
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; a parent is missing above: ${missing}`);
    });
    const byId = new Map(receiver.spans.filter((s) => s.traceId === put.traceId).map((s) => [s.spanId, s]));
    const names = chain.map((s) => `${s.service}: ${s.name}`).reverse();
    // Root first: the request, the App's write, the controller, the scheduler, the desired set, the agent.
    // Root first: the request and its write of the App, the App controller creating the Instance, the
    // scheduler pass binding it, the desired set sent to the agent, the agent starting it.
    expect(names).toEqual([
      "grove-server: PUT /v1/namespaces/:namespace/apps/:name",
      // The App's write: a transaction when namespace admission guards it (a quota), else a create.
      expect.stringMatching(/^grove-server: store (create|txn)$/),
      "grove-server: apps controller sync",
      "grove-server: store txn",
      "grove-server: scheduler pass",
      "grove-server: store txn",
      "grove-server: send desired set",
      "grove-agent: agent desired set",
      "grove-agent: agent start instance",
      "grove-agent: start step container",
    ]);
    // The other start steps are the container step's siblings (this agent has no CNI network: no network step).
    const start = chain.find((s) => s.name === "agent start instance")!;
    const steps = receiver.spans.filter((s) => s.parentSpanId === start.spanId).map((s) => s.name);
    expect(steps).toEqual(expect.arrayContaining(["start step private root", "start step container"]));
    const pass = chain.find((s) => s.name === "scheduler pass")!;
    expect(attr(pass, "grove.node")).toBe(NODE);
    expect(typeof attr(pass, "grove.score")).toBe("number");
    // Agent spans nest under server spans of the same trace (remote parent from the desired set).
    const agentRoot = chain.find((s) => s.name === "agent desired set")!;
    expect(byId.get(agentRoot.parentSpanId!)?.service).toBe("grove-server");

    // Trace ids in the log lines written inside the trace's spans.
    await waitFor(
      "a grove-agent log line with the apply's trace id",
      async () => agent.output.some((l) => l.includes(`"trace_id":"${put.traceId}"`)),
      10_000,
    );
    expect(server.output.some((l) => l.includes(`"trace_id":"${put.traceId}"`))).toBe(true);

    const after = {
      server: (await scrape(`${server.url}/metrics`)).text,
      agent: (await scrape(`${server.url}/v1/nodes/${NODE}/metrics`)).text,
    };
    expect(sample(after.server, "grove_scheduler_pass_duration_seconds_count")).toBeGreaterThan(
      sample(before.server, "grove_scheduler_pass_duration_seconds_count"),
    );
    expect(sample(after.agent, "grove_agent_instance_start_duration_seconds_count")).toBeGreaterThan(
      sample(before.agent, "grove_agent_instance_start_duration_seconds_count"),
    );
    expect(after.server).toMatch(/^grove_scheduler_placements_total\{result="placed"\} [1-9]/m);
    expect(after.server).toMatch(/^grove_nodes\{condition="Ready",status="True"\} 1$/m);
    expect(after.server).toMatch(/^grove_leader 1$/m);
    expect(after.server).toMatch(
      /^grove_http_request_duration_seconds_count\{route="\/v1\/namespaces\/:namespace\/apps\/:name",method="PUT",code="20[01]"\} /m,
    );
    expect(after.agent).toMatch(/^grove_agent_instances\{state="RUNNING"\} 1$/m);
    expect(after.agent).toMatch(
      /^grove_instance_memory_bytes\{namespace="default",app="obs-app",instance="obs-app-0"\} [1-9]/m,
    );
    for (const [what, text] of Object.entries(after)) {
      const r = promtool(text);
      if (r.status !== 0) throw new Error(`promtool check metrics failed on the ${what}'s metrics:\n${r.out}`);
    }

    await client.delete("App", "obs-app", "default");
  }, 120_000);
});
