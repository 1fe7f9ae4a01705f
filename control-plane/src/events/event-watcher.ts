// Turns changes of Instances, Apps and Nodes into Events.
//
// Everything is read off the objects' own changes as the informers deliver
// them (old and new): what an agent reports is the Instance status the
// gateway already writes (state, exit code, last check result), and what the
// controllers decide is in the objects they write. So there is no second
// channel from agents or controllers, and each fact is recorded by one
// replica, the leader (setActive), whichever replica wrote it.
import {
  InstanceReason,
  REPLACES_LABEL,
  ROLLOUT_LABEL,
  isFinished,
  shouldReplace,
  type App,
  type AppCondition,
  type Instance,
  type Node,
  type NodeCondition,
} from "@grove/api";
import type { Informer, InformerEvent } from "../controllers/informer";
import type { EventInput } from "./recorder";

export interface EventSink {
  recordEvent(input: EventInput): void;
}

const SERVER = { component: "grove-server" } as const;
/** Instance reasons that mean the control plane stopped it (not a crash). */
const STOPPED_BY_CONTROL_PLANE = new Set<string>([
  InstanceReason.RolledOut,
  InstanceReason.Superseded,
  InstanceReason.Drained,
  InstanceReason.DrainTimeout,
]);
const CHECK_REASONS: Record<string, string> = {
  startup: "StartupCheckFailed",
  liveness: "LivenessCheckFailed",
  readiness: "ReadinessCheckFailed",
};

export class EventWatcher {
  private active = false;

  constructor(
    private readonly sink: EventSink,
    apps: Informer<App>,
    private readonly instances: Informer<Instance>,
    nodes: Informer<Node>,
  ) {
    instances.on((ev) => this.active && this.onInstance(ev));
    apps.on((ev) => this.active && ev.type === "updated" && this.onApp(ev.old, ev.object));
    nodes.on((ev) => this.active && ev.type === "updated" && this.onNode(ev.old, ev.object));
  }

  /** Only the leader records (server.ts switches it on election and off when the lease is lost). */
  setActive(active: boolean): void {
    this.active = active;
  }

  private onInstance(ev: InformerEvent<Instance>): void {
    if (ev.type === "deleted") return;
    const inst = ev.object;
    const old = ev.type === "updated" && ev.old.metadata.uid === inst.metadata.uid ? ev.old : undefined;
    const previous = ev.type === "updated" && !old ? ev.old : undefined; // same name, new uid: a restart
    const node = inst.spec.nodeName;
    const agent = { component: "grove-agent" as const, ...(node ? { node } : {}) };
    const record = (type: EventInput["type"], reason: string, message: string, source: EventInput["source"]) =>
      this.sink.recordEvent({
        involvedObject: {
          kind: "App",
          namespace: inst.metadata.namespace,
          name: inst.spec.app,
          instance: inst.metadata.name,
        },
        type,
        reason,
        message,
        source,
      });

    if (!old) {
      if (previous && isFinished(previous) && inst.spec.restarts > previous.spec.restarts) {
        const why = endedHow(previous);
        record(
          shouldWarn(previous) ? "Warning" : "Normal",
          "Restarted",
          `${inst.metadata.name} restarted (restart ${inst.spec.restarts}) after ${why}`,
          SERVER,
        );
      }
      const replaces = inst.metadata.labels?.[REPLACES_LABEL];
      if (ev.type === "added" && replaces && !inst.metadata.labels?.[ROLLOUT_LABEL]) {
        const orig = this.instances.list().find((i) => i.metadata.uid === replaces);
        const what = orig ? `${orig.metadata.name} on node ${orig.spec.nodeName ?? "?"}` : `instance ${replaces}`;
        record(
          "Normal",
          "Replaced",
          `${inst.metadata.name} replaces ${what} (${orig?.status?.reason ?? "moved"})`,
          SERVER,
        );
      }
    }
    if (node && !old?.spec.nodeName) {
      record("Normal", "Scheduled", `placed ${inst.metadata.name} on node ${node}`, SERVER);
    }
    const st = inst.status;
    if (st?.state === "Running" && old?.status?.state !== "Running") {
      record("Normal", "Started", `${inst.metadata.name} started on node ${node ?? "?"} (pid ${st.pid ?? "?"})`, agent);
    }
    const check = st?.lastCheck;
    if (check && !check.ok && (check.time !== old?.status?.lastCheck?.time || old.status.lastCheck.ok)) {
      record(
        "Warning",
        CHECK_REASONS[check.check] ?? "CheckFailed",
        `${check.check} check (${check.kind}) failed: ${redactEnv(check.message ?? "no message", inst)}`,
        agent,
      );
    }
    if (isFinished(inst) && old && !isFinished(old)) this.onFinished(inst, record, agent);
  }

  private onFinished(
    inst: Instance,
    record: (type: EventInput["type"], reason: string, message: string, source: EventInput["source"]) => void,
    agent: EventInput["source"],
  ): void {
    const st = inst.status!;
    if (st.reason && STOPPED_BY_CONTROL_PLANE.has(st.reason)) {
      record(
        "Normal",
        "Stopped",
        `${inst.metadata.name} stopped: ${st.reason}${st.message ? `: ${redactEnv(st.message, inst)}` : ""}`,
        SERVER,
      );
    } else if (st.state === "OOMKilled") {
      const limit = inst.spec.resources.memoryBytes;
      record(
        "Warning",
        "OOMKilled",
        `${inst.metadata.name} was killed by the OOM killer (memory limit ${limit} bytes)`,
        agent,
      );
    } else if (st.state === "Failed" && !shouldReplace(inst)) {
      record(
        "Warning",
        "Failed",
        `${inst.metadata.name} ended after ${endedHow(inst)}; not restarted (restart policy ${inst.spec.restartPolicy})`,
        agent,
      );
    }
  }

  private onApp(old: App, app: App): void {
    const was = progressing(old);
    const now = progressing(app);
    if (!now || now.reason === was?.reason) return;
    const involvedObject = { kind: "App", namespace: app.metadata.namespace, name: app.metadata.name };
    if (now.reason === "Complete" && was) {
      this.sink.recordEvent({
        involvedObject,
        type: "Normal",
        reason: "RolledOut",
        message: `rolled out revision ${app.status?.revision ?? "?"}: ${now.message ?? "every instance runs the current template"}`,
        source: SERVER,
      });
    } else if (now.reason === "RolledBack") {
      // The rollback code's condition (issue 13's canary/rollback): why it went back is its message.
      this.sink.recordEvent({
        involvedObject,
        type: "Warning",
        reason: "RolledBack",
        message: now.message ?? "rolled back to the previous revision",
        source: SERVER,
      });
    } else if (now.reason === "ProgressDeadlineExceeded") {
      this.sink.recordEvent({
        involvedObject,
        type: "Warning",
        reason: "ProgressDeadlineExceeded",
        message: now.message ?? "the rollout made no progress within progressDeadlineSeconds",
        source: SERVER,
      });
    }
  }

  private onNode(old: Node, node: Node): void {
    const was = readyCondition(old);
    const now = readyCondition(node);
    if (!now || was?.status === now.status) return;
    const involvedObject = { kind: "Node", name: node.metadata.name };
    if (now.status !== "True" && was?.status === "True") {
      this.sink.recordEvent({
        involvedObject,
        type: "Warning",
        reason: "NodeLost",
        message: `node ${node.metadata.name} is not ready: ${now.reason ?? now.status}${now.message ? `: ${now.message}` : ""}`,
        source: SERVER,
      });
    } else if (now.status === "True" && was && was.status !== "True") {
      this.sink.recordEvent({
        involvedObject,
        type: "Normal",
        reason: "NodeReady",
        message: `node ${node.metadata.name} is ready again`,
        source: SERVER,
      });
    }
  }
}

function progressing(app: App): AppCondition | undefined {
  return app.status?.conditions?.find((c) => c.type === "Progressing");
}

function readyCondition(node: Node): NodeCondition | undefined {
  return node.status?.conditions?.find((c) => c.type === "Ready");
}

/** "exit code 1", "signal SIGKILL (LivenessFailed: ...)", "an OOM kill". */
export function endedHow(inst: Instance): string {
  const st = inst.status;
  if (!st) return "an unknown end";
  if (st.state === "OOMKilled") return "an OOM kill";
  const how = st.signal ? `signal ${st.signal}` : `exit code ${st.exitCode ?? "?"}`;
  const why =
    st.reason && !["Exited", "Failed"].includes(st.reason)
      ? ` (${st.reason}${st.message ? `: ${redactEnv(st.message, inst)}` : ""})`
      : "";
  return how + why;
}

function shouldWarn(inst: Instance): boolean {
  const st = inst.status;
  return st?.state !== "Exited" || (st.exitCode ?? 0) !== 0;
}

/**
 * Events never carry env values: any literal one that text from the agent quotes (a start error
 * or a check's output echoing one) is blanked there. Only that text: the names and words the
 * control plane writes itself are kept whole (an env value "hello" must not blank the App hello's
 * name). Secret references carry no value here.
 */
export function redactEnv(message: string, inst: Instance): string {
  let out = message;
  for (const value of Object.values(inst.spec.env ?? {})) {
    if (typeof value === "string" && value.length >= 3) out = out.split(value).join("[redacted]");
  }
  return out;
}
