// One TypeBox schema per resource. These drive the HTTP API's validation, the
// OpenAPI document, the CLI's client-side validation and the TypeScript types.
import { EnvValue } from "./env-source";
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { CheckResult, HealthChecks } from "./checks";
import { AppCondition, RolloutState, UpdateSpec } from "./update";
import * as L from "./string-rules";

export const API_VERSION = "grove/v1";
// The kinds (KINDS, SCHEMAS, pluralOf, ...) are listed in resource-kinds.ts.

/** DNS-1123 label: lower-case alphanumerics and '-', at most 63 characters. */
export const NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** A CPU quantity: "500m", "2", "0.5", or a number of cores. */
export const CPU_PATTERN = "^([0-9]+m|[0-9]+(\\.[0-9]{1,3})?)$";
/** A byte quantity: 67108864, "64Mi", "1Gi", "500M", "128k". */
export const BYTES_PATTERN = "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|K|M|G|T)?$";

export const Name = Type.String({ pattern: NAME_PATTERN, minLength: 1, maxLength: 63 });
const LabelMap = Type.Record(Type.String({ minLength: 1, maxLength: 253 }), Type.String({ maxLength: 253 }), {
  maxProperties: L.MAX_LABELS,
  additionalProperties: false,
});

export const ObjectMeta = Type.Object(
  {
    name: Name,
    namespace: Type.Optional(Name),
    labels: Type.Optional(LabelMap),
    uid: Type.Optional(Type.String({ maxLength: L.MAX_META_FIELD_LENGTH })),
    resourceVersion: Type.Optional(
      Type.String({ maxLength: L.MAX_META_FIELD_LENGTH, description: "etcd mod revision of the object" }),
    ),
    generation: Type.Optional(Type.Integer()),
    creationTimestamp: Type.Optional(Type.String({ maxLength: L.MAX_META_FIELD_LENGTH })),
  },
  { additionalProperties: false },
);
export type ObjectMeta = Static<typeof ObjectMeta>;

/** Quantities as users write them. */
export const ResourceRequest = Type.Object(
  {
    cpu: Type.Optional(
      Type.Union(
        [Type.String({ pattern: CPU_PATTERN, maxLength: L.MAX_QUANTITY_LENGTH }), Type.Number({ exclusiveMinimum: 0 })],
        {
          description: 'CPU: "250m" (millicores) or cores ("0.5", 2)',
        },
      ),
    ),
    memory: Type.Optional(
      Type.Union(
        [Type.String({ pattern: BYTES_PATTERN, maxLength: L.MAX_QUANTITY_LENGTH }), Type.Integer({ minimum: 1 })],
        {
          description: 'memory limit: "64Mi", "1Gi" or bytes',
        },
      ),
    ),
    pids: Type.Optional(Type.Integer({ minimum: 1, maximum: 4194304, description: "most processes and threads" })),
    disk: Type.Optional(
      Type.Union(
        [Type.String({ pattern: BYTES_PATTERN, maxLength: L.MAX_QUANTITY_LENGTH }), Type.Integer({ minimum: 1 })],
        {
          description: 'disk space the instance needs on its node: "1Gi" or bytes (scheduled, not enforced)',
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ResourceRequest = Static<typeof ResourceRequest>;

/** Normalized resources as the control plane and agents use them. */
export const Resources = Type.Object(
  {
    cpuMillis: Type.Integer({ minimum: 0 }),
    memoryBytes: Type.Integer({ minimum: 0 }),
    pids: Type.Integer({ minimum: 0 }),
    diskBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type Resources = Static<typeof Resources>;

export const RestartPolicy = Type.Union([Type.Literal("Always"), Type.Literal("OnFailure"), Type.Literal("Never")]);
export type RestartPolicy = Static<typeof RestartPolicy>;

/** Where an App's instances may run and how they spread (see docs/scheduling.md). */
export const LabelConstraint = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 253 }),
    op: Type.Union([
      Type.Literal("="),
      Type.Literal("!="),
      Type.Literal("in"),
      Type.Literal("notin"),
      Type.Literal("exists"),
      Type.Literal("notexists"),
    ]),
    values: Type.Optional(Type.Array(Type.String({ maxLength: 253 }), { maxItems: 64 })),
  },
  { additionalProperties: false },
);
export const TaintEffect = Type.Union([Type.Literal("NoSchedule"), Type.Literal("PreferNoSchedule")]);
export const Taint = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 253 }),
    value: Type.Optional(Type.String({ maxLength: 253 })),
    effect: TaintEffect,
  },
  { additionalProperties: false },
);
export const Toleration = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 253 }),
    op: Type.Optional(Type.Union([Type.Literal("="), Type.Literal("exists")])),
    value: Type.Optional(Type.String({ maxLength: 253 })),
    effect: Type.Optional(TaintEffect),
  },
  { additionalProperties: false },
);
export const Placement = Type.Object(
  {
    nodeSelector: Type.Optional(LabelMap),
    constraints: Type.Optional(Type.Array(LabelConstraint, { maxItems: 32 })),
    tolerations: Type.Optional(Type.Array(Toleration, { maxItems: 32 })),
    spread: Type.Optional(
      Type.Object(
        {
          topologyKey: Type.String({ minLength: 1, maxLength: 253 }),
          maxSkew: Type.Integer({ minimum: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
    antiAffinity: Type.Optional(Type.Boolean({ description: "at most one instance of the App per node" })),
  },
  { additionalProperties: false },
);
export type Placement = Static<typeof Placement>;
export const Priority = Type.Integer({
  minimum: -1000000,
  maximum: 1000000,
  description: "higher is placed first and may preempt lower-priority instances (default 0)",
});

/** A named port of an App's instances; hostPort fixed, or chosen by the scheduler from the dynamic range. */
export const PortSpec = Type.Object(
  {
    name: Type.String({ pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 15 }),
    containerPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    hostPort: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 65535, description: "fixed host port; omitted: one from the dynamic range" }),
    ),
    protocol: Type.Optional(Type.Union([Type.Literal("tcp"), Type.Literal("udp")], { description: "default tcp" })),
  },
  { additionalProperties: false },
);
export type PortSpec = Static<typeof PortSpec>;

/** An egress allow rule (Garden's NetOut): what no rule allows follows the cluster's egress default. */
export const EgressRule = Type.Object(
  {
    cidr: Type.String({
      pattern: "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$",
      description: "IPv4 destination network, e.g. 10.0.0.0/8",
    }),
    protocol: Type.Optional(
      Type.Union([Type.Literal("tcp"), Type.Literal("udp"), Type.Literal("icmp"), Type.Literal("all")], {
        description: "default all",
      }),
    ),
    ports: Type.Optional(
      Type.String({
        pattern: "^[0-9]{1,5}(-[0-9]{1,5})?$",
        description: 'tcp/udp destination ports: "443" or "8000-8999"',
      }),
    ),
  },
  { additionalProperties: false },
);
export type EgressRule = Static<typeof EgressRule>;

/** A Linux capability name, with or without CAP_, or ALL. */
const CapabilityName = Type.String({
  pattern:
    "^(ALL|(CAP_)?(CHOWN|DAC_OVERRIDE|DAC_READ_SEARCH|FOWNER|FSETID|KILL|SETGID|SETUID|SETPCAP|LINUX_IMMUTABLE|NET_BIND_SERVICE|NET_BROADCAST|NET_ADMIN|NET_RAW|IPC_LOCK|IPC_OWNER|SYS_MODULE|SYS_RAWIO|SYS_CHROOT|SYS_PTRACE|SYS_PACCT|SYS_ADMIN|SYS_BOOT|SYS_NICE|SYS_RESOURCE|SYS_TIME|SYS_TTY_CONFIG|MKNOD|LEASE|AUDIT_WRITE|AUDIT_CONTROL|SETFCAP|MAC_OVERRIDE|MAC_ADMIN|SYSLOG|WAKE_ALARM|BLOCK_SUSPEND|AUDIT_READ|PERFMON|BPF|CHECKPOINT_RESTORE))$",
  description: "a Linux capability (NET_ADMIN or CAP_NET_ADMIN) or ALL",
});

/** Default width of a user namespace's id range (container ids 0..65535). */
export const USERNS_DEFAULT_SIZE = 65536;

/**
 * Run in a user namespace: container root is an unprivileged host uid.
 * true: the node's agent picks a free 65536-wide range of its pool
 * (--userns-range); or an explicit range (the operator keeps it apart from others).
 */
export const UserNamespaceSpec = Type.Union(
  [
    Type.Boolean(),
    Type.Object(
      {
        hostUid: Type.Integer({ minimum: 1, maximum: 4294967294, description: "the host uid container root maps to" }),
        hostGid: Type.Integer({ minimum: 1, maximum: 4294967294, description: "the host gid container root maps to" }),
        size: Type.Optional(
          Type.Integer({ minimum: 1, maximum: 4294967295, description: "ids mapped from 0 (default 65536)" }),
        ),
      },
      { additionalProperties: false },
    ),
  ],
  { description: "true (the agent allocates a range) or { hostUid, hostGid, size }" },
);
export type UserNamespaceSpec = Static<typeof UserNamespaceSpec>;

/** How an App's processes run: user, capabilities, seccomp (agent/README.md, Isolation). */
export const SecuritySpec = Type.Object(
  {
    user: Type.Optional(
      Type.String({
        pattern: "^[^:\\s]+(:[^:\\s]+)?$",
        maxLength: L.MAX_USER_LENGTH,
        description: "user[:group], names from the root filesystem's /etc/passwd and /etc/group, or numbers",
      }),
    ),
    capabilities: Type.Optional(
      Type.Object(
        {
          add: Type.Optional(Type.Array(CapabilityName, { maxItems: 64 })),
          drop: Type.Optional(Type.Array(CapabilityName, { maxItems: 64 })),
        },
        { additionalProperties: false, description: "changes to Docker's 14 default capabilities" },
      ),
    ),
    seccomp: Type.Optional(
      Type.Union([Type.Literal("default"), Type.Literal("unconfined")], {
        description: "default: Docker's default profile semantics; unconfined: no filter",
      }),
    ),
    readOnlyRootFilesystem: Type.Optional(Type.Boolean()),
    userNamespace: Type.Optional(UserNamespaceSpec),
  },
  { additionalProperties: false },
);
export type SecuritySpec = Static<typeof SecuritySpec>;

/** A runtime handler of the agents (docs/runtime.md, "Runtime handlers"): a DNS label, like Kubernetes' RuntimeClass. */
export const RuntimeClassName = Type.String({
  pattern: "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
  maxLength: 63,
  description:
    "the agents' OCI runtime handler that runs the instances (runc, crun, grove-runtime or one an operator configured); unset or native: the agent's own runtime",
});

/** How changes to an App reach its running instances (docs/api.md, "Updates"). */
export const ResourcesUpdatePolicy = Type.Union([Type.Literal("InPlace"), Type.Literal("Replace")], {
  description:
    "when only resources (cpu, memory, pids, disk) change: InPlace (default) resizes running instances without a restart when the new size fits on their node; Replace starts new instances",
});
export type ResourcesUpdatePolicy = Static<typeof ResourcesUpdatePolicy>;
export const UpdatePolicy = Type.Object(
  { resources: Type.Optional(ResourcesUpdatePolicy) },
  { additionalProperties: false },
);
export type UpdatePolicy = Static<typeof UpdatePolicy>;

/** A duration: a number and a unit, "500ms", "30s", "5m", "1h" (parseDurationMs). */
function durationString(description = 'a duration: a number and a unit, e.g. "500ms", "30s", "5m", "1h"') {
  return Type.String({ pattern: "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$", maxLength: 32, description });
}
export const Duration = durationString();
export type Duration = Static<typeof Duration>;

/** What happens to an App's instances when their node loses the control plane (docs/api.md, "Disconnect"). */
export const DisconnectPolicy = Type.Object(
  {
    replaceAfter: Type.Optional(
      durationString(
        "how long the control plane waits before it places replacements for instances on a node that stopped answering (default 0s: at once)",
      ),
    ),
    stopAfter: Type.Optional(
      durationString(
        "the agent stops the instances itself once its node has been without contact with the control plane this long (default: never; they keep running)",
      ),
    ),
  },
  { additionalProperties: false },
);
export type DisconnectPolicy = Static<typeof DisconnectPolicy>;

/** A process's argv (command, entrypoint, an exec check): bounded as execve bounds it (string-rules.ts). */
export function Argv(description: string) {
  return Type.Array(Type.String({ maxLength: L.MAX_ARG_LENGTH }), { minItems: 1, maxItems: L.MAX_ARGS, description });
}
/** An env map of variable names to `value` (a literal, or a Secret reference for Apps). */
export function EnvMap<V extends TSchema>(value: V, description?: string) {
  const name = Type.String({ pattern: "^[A-Za-z_][A-Za-z0-9_]*$", maxLength: L.MAX_KEY_LENGTH });
  return Type.Record(name, value, {
    maxProperties: L.MAX_ENV_VARS,
    additionalProperties: false,
    ...(description ? { description } : {}),
  });
}
export const WorkingDir = Type.String({ pattern: "^/", maxLength: L.MAX_PATH_LENGTH });

export const AppSpec = Type.Object(
  {
    rootfs: Type.Optional(
      Type.String({
        pattern: "^[a-z0-9][a-z0-9._-]*$",
        maxLength: 128,
        description: "name of a root filesystem in the agent's rootfs directory (e.g. busybox); or give image",
      }),
    ),
    image: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description:
          'OCI image the agent pulls instead of a rootfs: "registry/repo:tag", "repo@sha256:…", "oci:/path/to/layout:tag"',
      }),
    ),
    imagePullSecret: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$",
        maxLength: 253,
        description: "name of a pull secret in the agents' image config (credentials stay on the nodes)",
      }),
    ),
    entrypoint: Type.Optional(Argv("with an image: replaces its Entrypoint (and its Cmd)")),
    command: Type.Optional(
      Argv("argv of the process; with an image: replaces its Cmd (appended to its Entrypoint), optional"),
    ),
    env: Type.Optional(EnvMap(EnvValue)),
    workingDir: Type.Optional(WorkingDir),
    instances: Type.Integer({ minimum: 0, maximum: 10000 }),
    resources: Type.Optional(ResourceRequest),
    restartPolicy: Type.Optional(RestartPolicy),
    stopGracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    placement: Type.Optional(Placement),
    priority: Type.Optional(Priority),
    ports: Type.Optional(Type.Array(PortSpec, { maxItems: 32 })),
    egress: Type.Optional(Type.Array(EgressRule, { maxItems: 64 })),
    security: Type.Optional(SecuritySpec),
    runtimeClass: Type.Optional(RuntimeClassName),
    updatePolicy: Type.Optional(UpdatePolicy),
    /** How a template change reaches the instances: Rolling (default) or Recreate (docs/api.md, "Updates"). */
    update: Type.Optional(UpdateSpec),
    disconnect: Type.Optional(DisconnectPolicy),
    checks: Type.Optional(HealthChecks),
    maxUnavailable: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          "how many of the App's instances a drain moves at once (default 1); each keeps running until its replacement runs or the drain's timeout passes",
      }),
    ),
  },
  { additionalProperties: false },
);
export type AppSpec = Static<typeof AppSpec>;

export const AppStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer()),
  instances: Type.Optional(Type.Integer()),
  running: Type.Optional(Type.Integer()),
  pending: Type.Optional(Type.Integer()),
  /** Instances on nodes that stopped answering (not counted in instances or running once replaced). */
  unknown: Type.Optional(Type.Integer()),
  /** Counted instances made from the current template (a rolling update's progress). */
  updated: Type.Optional(Type.Integer()),
  /** Counted instances that are ready (isReady). */
  ready: Type.Optional(Type.Integer()),
  /** Ready ones that have been ready for spec.update.minReadySeconds. */
  available: Type.Optional(Type.Integer()),
  /** Hash of the current template (the grove.io/template-hash of up-to-date instances). */
  revision: Type.Optional(Type.String()),
  /** Progressing: whether the instances are being (or have been) brought to the current template. */
  conditions: Type.Optional(Type.Array(AppCondition)),
  /** The rolling update's revisions, clock, canary promotion and last rollback (docs/api.md, "Revisions"). */
  rollout: Type.Optional(RolloutState),
});
export type AppStatus = Static<typeof AppStatus>;

/** The envelope every kind shares: apiVersion, kind, metadata, spec, status. */
export function resource<K extends string, S extends TSchema, St extends TSchema>(kind: K, spec: S, status: St) {
  return Type.Object(
    {
      apiVersion: Type.Literal(API_VERSION),
      kind: Type.Literal(kind),
      metadata: ObjectMeta,
      spec,
      status: Type.Optional(status),
    },
    { additionalProperties: false, $id: kind },
  );
}

export const App = resource("App", AppSpec, AppStatus);
export type App = Static<typeof App>;

export const InstanceState = Type.Union([
  Type.Literal("Pending"),
  Type.Literal("Starting"),
  Type.Literal("Running"),
  Type.Literal("Exited"),
  Type.Literal("Failed"),
  Type.Literal("OOMKilled"),
  // Its node stopped answering: it may still run there, but it is not counted as running or routed to.
  Type.Literal("Unknown"),
]);
export type InstanceState = Static<typeof InstanceState>;
export const TERMINAL_STATES: readonly InstanceState[] = ["Exited", "Failed", "OOMKilled"];

export const InstanceSpec = Type.Object(
  {
    app: Name,
    appUid: Type.String(),
    index: Type.Integer({ minimum: 0 }),
    rootfs: Type.String(),
    image: Type.Optional(Type.String()),
    imagePullSecret: Type.Optional(Type.String()),
    entrypoint: Type.Optional(Type.Array(Type.String())),
    command: Type.Array(Type.String()),
    env: Type.Optional(Type.Record(Type.String(), EnvValue)),
    workingDir: Type.Optional(Type.String()),
    resources: Resources,
    restartPolicy: RestartPolicy,
    stopGracePeriodSeconds: Type.Integer({ minimum: 0 }),
    /** How many instances of this index ended before this one (replacements). */
    restarts: Type.Integer({ minimum: 0 }),
    /** Consecutive short runs before this one: the crash-loop backoff exponent (back to 0 after a long run). */
    crashLoops: Type.Optional(Type.Integer({ minimum: 0 })),
    /** The node this instance is bound to; set once by the scheduler. */
    nodeName: Type.Optional(Type.String()),
    placement: Type.Optional(Placement),
    priority: Type.Optional(Priority),
    /** The App's ports; a dynamic hostPort is filled in by the scheduler when it binds the instance. */
    ports: Type.Optional(Type.Array(PortSpec)),
    egress: Type.Optional(Type.Array(EgressRule)),
    security: Type.Optional(SecuritySpec),
    runtimeClass: Type.Optional(RuntimeClassName),
    /** The App's spec.disconnect.stopAfter, which the agent enforces. */
    disconnect: Type.Optional(Type.Object({ stopAfter: Type.Optional(Duration) }, { additionalProperties: false })),
    /** The App's health checks, which the agent runs. */
    checks: Type.Optional(HealthChecks),
    /** Set on a Task's attempt (docs/api.md, "Task"): the Task's name; `app` and `appUid` are the Task's too. */
    task: Type.Optional(Name),
  },
  { additionalProperties: false },
);
export type InstanceSpec = Static<typeof InstanceSpec>;

export const PlacementExplain = Type.Object({
  nodesConsidered: Type.Integer(),
  rejected: Type.Record(Type.String(), Type.Integer(), { description: "filter name -> nodes it rejected" }),
  scores: Type.Optional(Type.Record(Type.String(), Type.Number())),
  chosen: Type.Optional(Type.String()),
  victims: Type.Optional(Type.Array(Type.String(), { description: "instances preempted to make room" })),
});
export type PlacementExplain = Static<typeof PlacementExplain>;

export const PublishedPort = Type.Object({
  name: Type.String(),
  protocol: Type.String(),
  containerPort: Type.Integer(),
  hostPort: Type.Integer(),
  /** The node's address the port is published on. */
  hostIP: Type.Optional(Type.String()),
});
export type PublishedPort = Static<typeof PublishedPort>;

export const ImagePullProgress = Type.Object({
  image: Type.String(),
  layersDone: Type.Integer({ minimum: 0 }),
  layersTotal: Type.Integer({ minimum: 0 }),
  bytesDone: Type.Integer({ minimum: 0 }),
  bytesTotal: Type.Integer({ minimum: 0 }),
});
export type ImagePullProgress = Static<typeof ImagePullProgress>;

export const InstanceStatus = Type.Object({
  state: InstanceState,
  reason: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
  nodeName: Type.Optional(Type.String()),
  exitCode: Type.Optional(Type.Integer()),
  signal: Type.Optional(Type.Integer()),
  pid: Type.Optional(Type.Integer()),
  scheduledAt: Type.Optional(Type.String()),
  startedAt: Type.Optional(Type.String()),
  finishedAt: Type.Optional(Type.String()),
  explain: Type.Optional(PlacementExplain),
  /** The instance's address on its node's subnet. */
  ip: Type.Optional(Type.String()),
  /** Published ports: hostIP:hostPort -> ip:containerPort. */
  ports: Type.Optional(Type.Array(PublishedPort)),
  /** While the agent pulls the instance's image (state Starting, reason PullingImage). */
  pull: Type.Optional(ImagePullProgress),
  /**
   * The cpu, memory and pids limits the running container has, as its agent
   * reports them: spec.resources once a live resize was applied, the old
   * limits while it is under way or after it failed (reason ResizeFailed).
   */
  appliedResources: Type.Optional(Resources),
  /**
   * Whether the instance passes its readiness check (set by its agent). Absent
   * while the App has no readiness check: a Running instance then counts as
   * ready (isReady in instance-rules.ts).
   */
  ready: Type.Optional(Type.Boolean()),
  /** The last result of one of its health checks, as its agent reports it. */
  lastCheck: Type.Optional(CheckResult),
  /**
   * When the agent of a finished instance reported its container gone and
   * everything its start set up (network, host ports and their DNAT rules)
   * released. Until then the scheduler keeps its host ports in use on its node.
   */
  releasedAt: Type.Optional(Type.String()),
});
export type InstanceStatus = Static<typeof InstanceStatus>;

export const Instance = resource("Instance", InstanceSpec, InstanceStatus);
export type Instance = Static<typeof Instance>;

export const NodeCondition = Type.Object({
  type: Type.String(),
  status: Type.Union([Type.Literal("True"), Type.Literal("False"), Type.Literal("Unknown")]),
  reason: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
  lastTransitionTime: Type.Optional(Type.String()),
});
export type NodeCondition = Static<typeof NodeCondition>;

export const NodeSpec = Type.Object(
  {
    unschedulable: Type.Optional(Type.Boolean({ description: "cordoned: no new instances are placed here" })),
    taints: Type.Optional(Type.Array(Taint, { maxItems: 32 })),
    drain: Type.Optional(
      Type.Object(
        {
          timeout: Type.Optional(
            durationString('how long an instance waits for its replacement before it is stopped anyway (default "5m")'),
          ),
        },
        {
          additionalProperties: false,
          description:
            "draining (grove drain): every instance is moved make-before-break, a replacement elsewhere first; set with unschedulable",
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type NodeSpec = Static<typeof NodeSpec>;

/**
 * Host ports of an instance that was deleted or overwritten (scale down, an App
 * deleted, Recreate, a restart in place) while its container may still run on
 * the node with its ports' DNAT rules: not handed out again until its agent
 * reports it gone (control-plane/src/resources/host-port-holds.ts).
 */
export const HeldHostPorts = Type.Object({
  /** The gone instance's uid: its agent's report names it. */
  uid: Type.String(),
  /** "namespace/name" of the gone instance (for people). */
  instance: Type.String(),
  ports: Type.Array(Type.Integer()),
  /** When the hold was written. */
  since: Type.Optional(Type.String()),
});
export type HeldHostPorts = Static<typeof HeldHostPorts>;

export const NodeStatus = Type.Object({
  capacity: Type.Optional(Resources),
  allocatable: Type.Optional(Resources),
  allocated: Type.Optional(Resources),
  addresses: Type.Optional(Type.Array(Type.String())),
  conditions: Type.Optional(Type.Array(NodeCondition)),
  lastHeartbeatTime: Type.Optional(Type.String()),
  agentVersion: Type.Optional(Type.String()),
  kernel: Type.Optional(Type.String()),
  cgroupMode: Type.Optional(Type.String()),
  /** The node's instance subnet, allocated from the cluster CIDR. */
  subnet: Type.Optional(Type.String()),
  /** Host ports still held for instances gone from the API until the agent reports them released. */
  heldHostPorts: Type.Optional(Type.Array(HeldHostPorts)),
});
export type NodeStatus = Static<typeof NodeStatus>;

export const Node = resource("Node", NodeSpec, NodeStatus);
export type Node = Static<typeof Node>;

/** A list's metadata: its revision, and on a page (?limit=) that is not the last, where to continue. */
export const ListMeta = Type.Object({
  resourceVersion: Type.String({ description: "the store revision every page of this list is read at" }),
  continue: Type.Optional(
    Type.String({ description: "opaque: pass it as ?continue= for the next page; absent on the last page" }),
  ),
  remainingItemCount: Type.Optional(
    Type.Integer({ minimum: 0, description: "how many items the following pages hold (with continue)" }),
  ),
});
export type ListMeta = Static<typeof ListMeta>;

export function listSchema<S extends TSchema>(kind: string, item: S) {
  return Type.Object({
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal(`${kind}List`),
    metadata: ListMeta,
    items: Type.Array(item),
  });
}

export interface List<T> {
  apiVersion: typeof API_VERSION;
  kind: string;
  metadata: ListMeta;
  items: T[];
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "ERROR";
/** One line of a watch stream (newline-delimited JSON). */
export interface WatchEvent<T> {
  type: WatchEventType;
  object: T;
}
