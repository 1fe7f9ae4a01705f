// grove-server's Prometheus metrics (prom-client), one registry per control
// plane (tests start several in one process). Families and labels are listed
// in docs/observability.md; every label takes a bounded set of values (route
// patterns, not URLs; store operations, not keys; collection names).
//
// Counts that a cache already knows (pending instances, nodes by condition)
// are computed when scraped, from the informers, so they cannot drift.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { isFinished, InstanceReason, type Instance, type Node } from "@grove/api";

/** Seconds: 1 ms .. 10 s, for API calls, store calls and scheduler passes. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricSources {
  instances(): Instance[];
  nodes(): Node[];
}

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: "grove_http_request_duration_seconds",
    help: "HTTP API requests by route pattern, method and status code (watches and log follows last as long as they stay open)",
    labelNames: ["route", "method", "code"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly schedulerPass = new Histogram({
    name: "grove_scheduler_pass_duration_seconds",
    help: "One scheduler pass: snapshot, placement and the committing transactions",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly placements = new Counter({
    name: "grove_scheduler_placements_total",
    help: "Placement decisions: placed (bound to a node), unschedulable (no node fits), preempted (evicted to make room)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly etcdDuration = new Histogram({
    name: "grove_etcd_request_duration_seconds",
    help: "Store calls to etcd by operation and outcome (ok, conflict, error)",
    labelNames: ["operation", "outcome"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly watchRelists = new Counter({
    name: "grove_store_watch_relists_total",
    help: "Watches that lost events (their resume revision was compacted) and listed the collection again",
    labelNames: ["collection"] as const,
    registers: [this.registry],
  });
  readonly eventsDropped = new Counter({
    name: "grove_events_dropped_total",
    help: "Events not written: queue_full (more than the recorder's cap waited, in a burst), write_failed (the store refused the write)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "grove_leader",
    help: "1 while this replica is the elected leader (runs the controllers and the scheduler), else 0",
    registers: [this.registry],
  });
  readonly leaderChanges = new Counter({
    name: "grove_leader_transitions_total",
    help: "Times this replica became leader or stopped being it",
    registers: [this.registry],
  });

  /** The informers the scrape-time gauges count (empty until set). */
  private sources: MetricSources = { instances: () => [], nodes: () => [] };

  setSources(sources: MetricSources): void {
    this.sources = sources;
  }

  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
    this.leaderChanges.inc();
  }

  constructor() {
    const sources = () => this.sources;
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
    this.leader.set(0);
    for (const result of ["placed", "unschedulable", "preempted"]) this.placements.inc({ result }, 0);
    new Gauge({
      name: "grove_instances_pending",
      help: "Unfinished instances bound to no node, by reason (Unscheduled: not tried yet; Unschedulable: no node fits)",
      labelNames: ["reason"] as const,
      registers: [this.registry],
      collect() {
        let unscheduled = 0;
        let unschedulable = 0;
        for (const i of sources().instances()) {
          if (i.spec.nodeName || isFinished(i)) continue;
          if (i.status?.reason === InstanceReason.Unschedulable) unschedulable++;
          else unscheduled++;
        }
        this.set({ reason: "Unscheduled" }, unscheduled);
        this.set({ reason: "Unschedulable" }, unschedulable);
      },
    });
    new Gauge({
      name: "grove_nodes",
      help: "Nodes by condition and its status (True, False, Unknown); every node counts once per condition type",
      labelNames: ["condition", "status"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const n of sources().nodes()) {
          const conditions = [...(n.status?.conditions ?? [])];
          if (!conditions.some((c) => c.type === "Ready")) conditions.push({ type: "Ready", status: "Unknown" });
          for (const c of conditions) {
            const k = `${c.type}\u0000${c.status}`;
            counts.set(k, (counts.get(k) ?? 0) + 1);
          }
        }
        for (const status of ["True", "False", "Unknown"]) this.set({ condition: "Ready", status }, 0);
        for (const [k, v] of counts) {
          const [condition, status] = k.split("\u0000") as [string, string];
          this.set({ condition, status }, v);
        }
        const unschedulable = sources()
          .nodes()
          .filter((n) => n.spec?.unschedulable).length;
        this.set({ condition: "Unschedulable", status: "True" }, unschedulable);
      },
    });
  }

  /** Times an async call into a histogram by outcome. */
  async timeStore<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const end = this.etcdDuration.startTimer({ operation });
    try {
      const out = await fn();
      end({ outcome: "ok" });
      return out;
    } catch (err) {
      const code = (err as { code?: string }).code;
      end({ outcome: code === "Conflict" || code === "AlreadyExists" || code === "NotFound" ? "conflict" : "error" });
      throw err;
    }
  }

  /** The exposition text (text/plain; version=0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
