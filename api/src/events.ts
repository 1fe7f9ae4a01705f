// The Event kind: what happened to an object, for people (`grove get events`,
// `grove describe`). Written by the control plane only, each with a
// time-to-live (an etcd lease), so events need no clean-up and never pile up.
// Events are not in KINDS: nobody applies, updates or deletes them; the API
// lists and watches them (GET /v1/namespaces/{ns}/events[?watch=1]).
import { Type, type Static } from "@sinclair/typebox";
import { API_VERSION, NAME_PATTERN } from "./schemas";

export const EventType = Type.Union([Type.Literal("Normal"), Type.Literal("Warning")]);
export type EventType = Static<typeof EventType>;

/** Every reason an Event carries, and its one meaning. */
export const EventReason = {
  /** The scheduler bound an instance to a node (the message names it). */
  Scheduled: "Scheduled",
  /** The instance's process runs (its agent reported Running). */
  Started: "Started",
  /** A health check failed; the message has the last result. */
  StartupCheckFailed: "StartupCheckFailed",
  LivenessCheckFailed: "LivenessCheckFailed",
  ReadinessCheckFailed: "ReadinessCheckFailed",
  /** The instance ended and was started again (the message has the exit code or signal). */
  Restarted: "Restarted",
  /** The instance ended with a non-zero exit or a signal and is not restarted. */
  Failed: "Failed",
  /** The kernel's OOM killer ended the instance. */
  OOMKilled: "OOMKilled",
  /** The control plane stopped the instance (rolled out, superseded, drained). */
  Stopped: "Stopped",
  /** Every instance of the App runs its current template. */
  RolledOut: "RolledOut",
  /** The rollout made no progress within progressDeadlineSeconds. */
  ProgressDeadlineExceeded: "ProgressDeadlineExceeded",
  /** The App went back to an earlier revision (automatically or by `grove rollout undo`). */
  RolledBack: "RolledBack",
  /** A node stopped answering. */
  NodeLost: "NodeLost",
  /** A lost node answers again. */
  NodeReady: "NodeReady",
  /** An instance got a replacement on another node (its node was lost or drained). */
  Replaced: "Replaced",
} as const;
export type EventReason = (typeof EventReason)[keyof typeof EventReason];

export const InvolvedObject = Type.Object(
  {
    kind: Type.String({ description: "App, Instance or Node" }),
    namespace: Type.Optional(Type.String()),
    name: Type.String(),
    /** For an App's event about one of its instances: the instance's name. */
    instance: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type InvolvedObject = Static<typeof InvolvedObject>;

export const EventSource = Type.Object(
  {
    /** grove-server (a controller) or grove-agent (derived from what the node's agent reported). */
    component: Type.Union([Type.Literal("grove-server"), Type.Literal("grove-agent")]),
    /** The node the agent runs on (component grove-agent). */
    node: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type EventSource = Static<typeof EventSource>;

export const Event = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal("Event"),
    metadata: Type.Object(
      {
        name: Type.String({ pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", maxLength: 253 }),
        namespace: Type.String({ pattern: NAME_PATTERN }),
        uid: Type.Optional(Type.String()),
        resourceVersion: Type.Optional(Type.String()),
        creationTimestamp: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
    involvedObject: InvolvedObject,
    type: EventType,
    reason: Type.String(),
    message: Type.String({ maxLength: 1024 }),
    /** How many times it happened; repeats update one Event (a crash loop is one Event, count rising). */
    count: Type.Integer({ minimum: 1 }),
    firstTimestamp: Type.String(),
    lastTimestamp: Type.String(),
    source: EventSource,
  },
  { additionalProperties: false, $id: "Event" },
);
export type Event = Static<typeof Event>;

export const EventList = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal("EventList"),
    metadata: Type.Object({ resourceVersion: Type.String() }),
    items: Type.Array(Type.Unsafe<Event>({ $ref: "Event#" })),
  },
  { $id: "EventList" },
);

/** Namespaced: events of Nodes (cluster-scoped) are kept in this namespace. */
export const CLUSTER_EVENTS_NAMESPACE = "default";

/** Newest last, as `grove get events` shows them (ties by name, so the order is stable). */
export function compareEvents(a: Event, b: Event): number {
  const t = Date.parse(a.lastTimestamp) - Date.parse(b.lastTimestamp);
  if (t !== 0) return t;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** Whether the event is about this object (an App's events include those of its instances). */
export function eventConcerns(ev: Event, kind: string, namespace: string | undefined, name: string): boolean {
  const o = ev.involvedObject;
  if (kind === "Instance") return o.instance === name && (namespace === undefined || o.namespace === namespace);
  return o.kind === kind && o.name === name && (namespace === undefined || o.namespace === namespace);
}

/** Which object's events (GET /v1/.../events?involvedKind=&involvedName=&instance=). */
export interface EventFilter {
  involvedKind?: string;
  involvedName?: string;
  instance?: string;
  resourceVersion?: string; // watch: the changes after this revision (a list's), not every event first
}
