// grove-agent's Prometheus metrics (prom-client). The agent opens no port for
// them: grove-server asks over the agent's own gRPC stream (a METRICS
// sub-stream) and serves them at GET /v1/nodes/{name}/metrics
// (docs/observability.md).
//
// Most of it is read off what the agent already reports: the status stream
// (start latency from STARTING to RUNNING, health check results), the image
// service's pull progress, and, when scraped, the reconciler's instances and
// each running container's cgroup counters. Per-instance series carry
// namespace, app and instance labels and exist only for instances on this node
// now (rebuilt at every scrape), so their number is bounded by the node's size.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { InstanceStatus } from "@grove/proto";
import type { InstanceImages } from "../reconcile/types";
import type { ContainerRuntime } from "../runtime/types";

export interface AgentMetricSources {
  runtime: ContainerRuntime;
  /** The reconciler's statuses of every instance it knows. */
  statuses(): InstanceStatus[];
  /** The App (or Task) an instance uid belongs to. */
  appOf(uid: string): string | undefined;
}

const STATES = ["PENDING", "STARTING", "RUNNING", "EXITED", "FAILED", "UNKNOWN"];

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly starting = new Map<string, number>();
  private readonly lastCheck = new Map<string, number>();
  private readonly startDuration = new Histogram({
    name: "grove_agent_instance_start_duration_seconds",
    help: "From an instance's start (STARTING) to its process running: image pull, root, network, container",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  private readonly startFailures = new Counter({
    name: "grove_agent_instance_start_failures_total",
    help: "Starts that ended FAILED before the process ran",
    registers: [this.registry],
  });
  private readonly checks = new Counter({
    name: "grove_agent_check_results_total",
    help: "Health check results by check (startup, liveness, readiness), kind (http, tcp, exec) and result",
    labelNames: ["check", "kind", "result"] as const,
    registers: [this.registry],
  });
  private readonly pullBytes = new Counter({
    name: "grove_agent_image_pull_bytes_total",
    help: "Bytes of image layers downloaded from registries",
    registers: [this.registry],
  });
  private readonly pullDuration = new Histogram({
    name: "grove_agent_image_pull_duration_seconds",
    help: "Image pulls (those that downloaded something) by result",
    labelNames: ["result"] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });

  constructor(
    private readonly sources: AgentMetricSources,
    private readonly now: () => number = () => performance.now(),
  ) {
    collectDefaultMetrics({ register: this.registry });
    // prom-client's gauges named like counters (*_total), which `promtool check metrics` refuses; their
    // per-type siblings (nodejs_active_handles{type}, ...) stay.
    for (const name of [
      "nodejs_active_handles_total",
      "nodejs_active_requests_total",
      "nodejs_active_resources_total",
    ]) {
      this.registry.removeSingleMetric(name);
    }
    const src = sources;
    new Gauge({
      name: "grove_agent_instances",
      help: "Instances this agent knows, by state",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        const counts = new Map(STATES.map((s) => [s, 0]));
        for (const s of src.statuses()) counts.set(String(s.state), (counts.get(String(s.state)) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    this.perInstance();
  }

  /** Per running instance: cpu, memory, pids, OOM kills, read from its cgroups at scrape time. */
  private perInstance(): void {
    const labelNames = ["namespace", "app", "instance"] as const;
    const registers = [this.registry];
    const cpu = new Counter({
      name: "grove_instance_cpu_seconds_total",
      help: "CPU time the instance's cgroup used",
      labelNames,
      registers,
    });
    const memory = new Gauge({
      name: "grove_instance_memory_bytes",
      help: "Memory the instance's cgroup uses now",
      labelNames,
      registers,
    });
    const pids = new Gauge({ name: "grove_instance_pids", help: "Processes in the instance", labelNames, registers });
    const ooms = new Counter({
      name: "grove_instance_oom_kills_total",
      help: "Processes of the instance the kernel killed for memory (its cgroup's count)",
      labelNames,
      registers,
    });
    const src = this.sources;
    // One read of every container per scrape, shared by the four families (prom-client collects each).
    let sample: Promise<Array<{ labels: Record<(typeof labelNames)[number], string>; s: Stats }>> | undefined;
    const read = () =>
      (sample ??= readAll(src).finally(() => {
        setImmediate(() => (sample = undefined));
      }));
    const fill = <T extends Gauge | Counter>(metric: T, value: (s: Stats) => number) =>
      async function (this: T) {
        metric.reset();
        for (const { labels, s } of await read()) {
          const v = value(s);
          if (v < 0) continue; // not available on this cgroup version
          if (metric instanceof Counter) metric.inc(labels, v);
          else (metric as Gauge).set(labels, v);
        }
      };
    Object.assign(cpu, { collect: fill(cpu, (s) => (s.cpuUsageNs < 0 ? -1 : s.cpuUsageNs / 1e9)) });
    Object.assign(memory, { collect: fill(memory, (s) => s.memoryBytes) });
    Object.assign(pids, { collect: fill(pids, (s) => s.pids) });
    Object.assign(ooms, { collect: fill(ooms, (s) => s.oomKills) });
  }

  /** Every status the reconciler reports passes here (in order per uid). */
  observeStatus(status: InstanceStatus): void {
    const uid = status.uid ?? "";
    if (status.state === "STARTING" && !this.starting.has(uid)) this.starting.set(uid, this.now());
    else if (status.state === "RUNNING" || status.state === "FAILED" || status.state === "EXITED") {
      const since = this.starting.get(uid);
      this.starting.delete(uid);
      if (since !== undefined && status.state === "RUNNING") this.startDuration.observe((this.now() - since) / 1000);
      else if (since !== undefined && status.state === "FAILED") this.startFailures.inc();
    }
    const c = status.lastCheck;
    if (c?.check) {
      const key = `${uid}/${c.check}`;
      const at = Number(c.timeMs ?? 0);
      if (this.lastCheck.get(key) !== at) {
        this.lastCheck.set(key, at);
        this.checks.inc({ check: c.check, kind: c.kind ?? "", result: c.ok ? "success" : "failure" });
      }
    }
    if (status.released) {
      this.starting.delete(uid);
      for (const k of this.lastCheck.keys()) if (k.startsWith(`${uid}/`)) this.lastCheck.delete(k);
    }
  }

  /** The image service as the reconciler uses it, with pulls timed and their bytes counted. */
  instrumentImages(images: InstanceImages): InstanceImages {
    return instrumentImages(images, () => this);
  }

  /** Counts one pull (called by instrumentImages' wrapper when bytes were downloaded). */
  observePull(bytes: number, seconds: number, result: string): void {
    this.pullBytes.inc(bytes);
    this.pullDuration.observe({ result }, seconds);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * The image service with pulls timed and their bytes counted, into the
 * metrics `of()` returns then (the reconciler is built before the metrics,
 * which read its statuses).
 */
export function instrumentImages(images: InstanceImages, of: () => AgentMetrics | undefined): InstanceImages {
  const now = () => performance.now();
  return {
    prepareRootfs: async (id, reference, opts) => {
      const started = now();
      let bytes = 0;
      const onProgress = opts.onProgress;
      const out = {
        ...opts,
        onProgress: (p: Parameters<NonNullable<typeof onProgress>>[0]) => {
          bytes = Math.max(bytes, p.bytesDone);
          onProgress?.(p);
        },
      };
      const done = (result: string) => {
        if (bytes === 0) return; // stored already: nothing was pulled
        of()?.observePull(bytes, (now() - started) / 1000, result);
      };
      try {
        const r = await images.prepareRootfs(id, reference, out);
        done("ok");
        return r;
      } catch (err) {
        done("error");
        throw err;
      }
    },
    unmountRootfs: (id) => images.unmountRootfs(id),
    cleanupContainers: (keep) => images.cleanupContainers(keep),
  };
}

type Stats = { cpuUsageNs: number; memoryBytes: number; pids: number; oomKills: number };

async function readAll(src: AgentMetricSources) {
  const stats = src.runtime.stats?.bind(src.runtime);
  if (!stats) return [];
  const running = src.statuses().filter((s) => s.state === "RUNNING");
  const out = await Promise.all(
    running.map(async (st) => {
      try {
        const uid = st.uid ?? "";
        const s = await stats(uid);
        return { labels: { namespace: st.namespace ?? "", app: src.appOf(uid) ?? "", instance: st.name ?? "" }, s };
      } catch {
        return undefined; // ended between the list and the read
      }
    }),
  );
  return out.filter((x): x is NonNullable<typeof x> => x !== undefined);
}
