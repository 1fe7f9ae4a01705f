// Pure rendering for `grove describe`: metadata, spec, status, and the related objects.
import { rolloutLines } from "./rollout";
import { formatLimits } from "@grove/common";
import type { App, Instance, InstanceStatus, Node, ObjectMeta, Resources } from "../../schemas";
import { allocationSummary, formatAge, nodeReadiness, renderObjects } from "./table";
import { describeEnvValue } from "../../env-source";
import { pullProgressBar } from "./pull-progress";

/** Filters that reject a node for lack of a resource; others rule a node out for other reasons. */
const RESOURCE_FILTERS = new Set([
  "cpu",
  "memory",
  "pids",
  "disk",
  "resources",
  "cpu-fit",
  "memory-fit",
  "pids-fit",
  "disk-fit",
]);

/**
 * One line on why an instance sits where it does, from the scheduler's explain record:
 * "Pending: memory: insufficient on 1 of 1 nodes".
 */
export function placementSummary(status: InstanceStatus | undefined): string | undefined {
  const explain = status?.explain;
  if (!explain) return undefined;
  const state = status.state;
  if (explain.nodesConsidered === 0) return `${state}: no nodes to place on`;
  const rejections = Object.entries(explain.rejected)
    .filter(([, n]) => n > 0)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([filter, n]) => {
      const verb = RESOURCE_FILTERS.has(filter.toLowerCase()) ? "insufficient on" : "ruled out";
      return `${filter}: ${verb} ${n} of ${explain.nodesConsidered} nodes`;
    });
  if (explain.chosen) {
    const rejected = rejections.length > 0 ? ` (${rejections.join("; ")})` : "";
    const victims = explain.victims?.length ? `; preempted ${explain.victims.join(", ")}` : "";
    return `${state}: placed on ${explain.chosen} out of ${explain.nodesConsidered} nodes${rejected}${victims}`;
  }
  // The scheduler's own sentence names each reason ("ports: 8080 in use on 3 of 40 nodes").
  if (status.reason === "Unschedulable" && status.message) return `${state}: ${status.message}`;
  return rejections.length > 0 ? `${state}: ${rejections.join("; ")}` : `${state}: no node chosen`;
}

/** sh -c "sleep 1000" */
function shellJoin(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}

function formatLabels(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return entries.length > 0 ? entries.map(([k, v]) => `${k}=${v}`).join(",") : "<none>";
}

function formatResources(r: Resources | undefined): string {
  return r ? formatLimits(r) : "<none>";
}

function when(timestamp: string | undefined, now: number): string {
  return timestamp ? `${timestamp} (${formatAge(timestamp, now)} ago)` : "<unknown>";
}

/** "Key:" columns aligned, like kubectl describe. */
function fields(rows: readonly [string, string | undefined][], indent = ""): string[] {
  const present = rows.filter((r): r is [string, string] => r[1] !== undefined);
  const width = Math.max(0, ...present.map(([k]) => k.length + 1));
  return present.map(([k, v]) => `${indent}${(k + ":").padEnd(width)}  ${v}`);
}

function metadataFields(kind: string, meta: ObjectMeta, now: number): [string, string | undefined][] {
  return [
    ["Name", meta.name],
    ["Namespace", meta.namespace],
    ["Kind", kind],
    ["Labels", formatLabels(meta.labels)],
    ["UID", meta.uid],
    ["Resource version", meta.resourceVersion],
    ["Generation", meta.generation !== undefined ? String(meta.generation) : undefined],
    ["Created", when(meta.creationTimestamp, now)],
  ];
}

function indentTable(lines: string[]): string[] {
  return lines.map((l) => `  ${l}`);
}

export function describeApp(app: App, instances: readonly Instance[], now: number): string[] {
  const spec = app.spec;
  const res = spec.resources;
  const lines = fields(metadataFields("App", app.metadata, now));
  lines.push("Spec:");
  lines.push(
    ...fields(
      [
        ["Rootfs", spec.rootfs],
        ["Image", spec.image],
        ["Entrypoint", spec.entrypoint ? shellJoin(spec.entrypoint) : undefined],
        ["Command", spec.command ? shellJoin(spec.command) : undefined],
        ["Working dir", spec.workingDir],
        ["Instances", String(spec.instances)],
        [
          "Resources",
          res
            ? [
                res.cpu !== undefined ? `cpu ${res.cpu}` : undefined,
                res.memory !== undefined ? `memory ${res.memory}` : undefined,
                res.pids !== undefined ? `pids ${res.pids}` : undefined,
              ]
                .filter((s) => s !== undefined)
                .join(", ") || "<defaults>"
            : "<defaults>",
        ],
        ["Restart policy", spec.restartPolicy ?? "Always"],
        ["Stop grace", spec.stopGracePeriodSeconds !== undefined ? `${spec.stopGracePeriodSeconds}s` : undefined],
        ["Resize policy", spec.updatePolicy?.resources],
        ["Stop after disconnect", spec.disconnect?.stopAfter],
      ],
      "  ",
    ),
  );
  const env = Object.entries(spec.env ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (env.length > 0) {
    lines.push("  Env:");
    lines.push(...env.map(([k, v]) => `    ${k}=${describeEnvValue(v)}`));
  }
  const status = app.status;
  lines.push("Status:");
  lines.push(
    ...fields(
      [
        ["Running", `${status?.running ?? 0} of ${spec.instances}`],
        ["Pending", status?.pending !== undefined ? String(status.pending) : undefined],
        [
          "Observed generation",
          status?.observedGeneration !== undefined ? String(status.observedGeneration) : undefined,
        ],
      ],
      "  ",
    ),
  );
  lines.push(...rolloutLines(app));
  lines.push("Instances:");
  if (instances.length === 0) {
    lines.push("  <none>");
  } else {
    const sorted = [...instances].sort(
      (a, b) => a.spec.index - b.spec.index || a.metadata.name.localeCompare(b.metadata.name),
    );
    lines.push(...indentTable(renderObjects("Instance", sorted, { now })));
    const why = sorted
      .map((i) => [i.metadata.name, placementSummary(i.status)] as const)
      .filter(([, s]) => s !== undefined && !s.startsWith("Running"));
    if (why.length > 0) {
      lines.push("Placement:");
      lines.push(...why.map(([name, s]) => `  ${name}: ${s}`));
    }
  }
  return lines;
}

/** The limits the running container has, and the resize under way (or refused) when they differ from the spec. */
function appliedLimits(want: Resources, status: InstanceStatus | undefined): string | undefined {
  const have = status?.appliedResources;
  if (!have) return undefined;
  const text = formatResources(have);
  const same = have.cpuMillis === want.cpuMillis && have.memoryBytes === want.memoryBytes && have.pids === want.pids;
  if (same) return text;
  const pending = status?.reason === "ResizeFailed" ? "resize refused" : "resizing";
  return `${text} (${pending}; spec asks for ${formatResources(want)})`;
}

export function describeInstance(inst: Instance, now: number): string[] {
  const spec = inst.spec;
  const status = inst.status;
  const lines = fields(metadataFields("Instance", inst.metadata, now));
  lines.push("Spec:");
  lines.push(
    ...fields(
      [
        ["App", `${spec.app} (uid ${spec.appUid})`],
        ["Index", String(spec.index)],
        ["Node", spec.nodeName ?? "<unscheduled>"],
        ["Rootfs", spec.rootfs || undefined],
        ["Image", spec.image],
        ["Entrypoint", spec.entrypoint?.length ? shellJoin(spec.entrypoint) : undefined],
        ["Command", shellJoin(spec.command)],
        ["Working dir", spec.workingDir],
        ["Resources", formatResources(spec.resources)],
        ["Restart policy", spec.restartPolicy],
        ["Stop grace", `${spec.stopGracePeriodSeconds}s`],
        ["Restarts", String(spec.restarts)],
      ],
      "  ",
    ),
  );
  lines.push("Status:");
  lines.push(
    ...fields(
      [
        ["State", status?.state ?? "Pending"],
        ["Reason", status?.reason],
        ["Message", status?.message],
        ["Pull", status?.pull ? pullProgressBar(status.pull) : undefined],
        ["Node", status?.nodeName],
        ["PID", status?.pid !== undefined ? String(status.pid) : undefined],
        ["Limits", appliedLimits(spec.resources, status)],
        ["Exit code", status?.exitCode !== undefined ? String(status.exitCode) : undefined],
        ["Signal", status?.signal !== undefined ? String(status.signal) : undefined],
        ["Scheduled", status?.scheduledAt ? when(status.scheduledAt, now) : undefined],
        ["Started", status?.startedAt ? when(status.startedAt, now) : undefined],
        ["Finished", status?.finishedAt ? when(status.finishedAt, now) : undefined],
      ],
      "  ",
    ),
  );
  const explain = status?.explain;
  if (explain) {
    lines.push("Placement:");
    lines.push(`  ${placementSummary(status)}`);
    lines.push(`  Nodes considered: ${explain.nodesConsidered}`);
    const rejected = Object.entries(explain.rejected).filter(([, n]) => n > 0);
    for (const [filter, n] of rejected) lines.push(`  Rejected by ${filter}: ${n}`);
    const scores = Object.entries(explain.scores ?? {});
    if (scores.length > 0) lines.push(`  Scores: ${scores.map(([k, v]) => `${k}=${v.toFixed(3)}`).join(", ")}`);
  }
  return lines;
}

export function describeNode(node: Node, instances: readonly Instance[], now: number): string[] {
  const status = node.status;
  const lines = fields(metadataFields("Node", node.metadata, now));
  lines.push(
    ...fields([
      ["Ready", nodeReadiness(node)],
      ["Unschedulable", node.spec.unschedulable ? "true" : "false"],
      ["Addresses", status?.addresses?.join(", ") || "<none>"],
      ["Last heartbeat", when(status?.lastHeartbeatTime, now)],
      ["Agent version", status?.agentVersion],
      ["Kernel", status?.kernel],
      ["Cgroup mode", status?.cgroupMode],
    ]),
  );
  lines.push("Resources:");
  lines.push(
    ...fields(
      [
        ["Capacity", formatResources(status?.capacity)],
        ["Allocatable", formatResources(status?.allocatable)],
        [
          "Allocated",
          `${formatResources(status?.allocated)} (${allocationSummary(status?.allocated, status?.allocatable)})`,
        ],
      ],
      "  ",
    ),
  );
  lines.push("Conditions:");
  const conditions = status?.conditions ?? [];
  if (conditions.length === 0) lines.push("  <none>");
  for (const c of conditions) {
    const extra = [c.reason, c.message].filter((s) => s).join(": ");
    const since = c.lastTransitionTime ? ` since ${c.lastTransitionTime}` : "";
    lines.push(`  ${c.type}=${c.status}${since}${extra ? ` (${extra})` : ""}`);
  }
  lines.push("Instances:");
  if (instances.length === 0) lines.push("  <none>");
  else lines.push(...indentTable(renderObjects("Instance", instances, { now, showNamespace: true })));
  return lines;
}
