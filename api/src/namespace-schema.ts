// The Namespace kind: a tenancy boundary with a quota and an admission policy
// (in the spirit of Kubernetes Pod Security: restricted, baseline,
// privileged). Namespaces without a Namespace object (the implicit ones, e.g.
// "default") keep the behaviour they had before namespaces were objects: no
// quota and no admission policy. The checks here are pure, so the CLI and the
// server agree on what a level allows.
import { Type, type Static } from "@sinclair/typebox";
import { API_VERSION, BYTES_PATTERN, CPU_PATTERN, ObjectMeta } from "./schemas";
import { DEFAULT_CAPABILITIES } from "@grove/common";
import { MAX_QUANTITY_LENGTH } from "./string-rules";
import { parseBytes, parseCpuMillis } from "./quantity";

export const POLICY_LEVELS = ["restricted", "baseline", "privileged"] as const;
export type PolicyLevel = (typeof POLICY_LEVELS)[number];
/** What a Namespace object without spec.policy gets. */
export const DEFAULT_POLICY_LEVEL: PolicyLevel = "restricted";

export const NamespaceQuota = Type.Object(
  {
    cpu: Type.Optional(
      Type.Union([Type.String({ pattern: CPU_PATTERN, maxLength: MAX_QUANTITY_LENGTH }), Type.Number({ minimum: 0 })], {
        description: "most CPU all instances of the namespace may ask for together",
      }),
    ),
    memory: Type.Optional(
      Type.Union(
        [Type.String({ pattern: BYTES_PATTERN, maxLength: MAX_QUANTITY_LENGTH }), Type.Integer({ minimum: 0 })],
        {
          description: "most memory all instances of the namespace may ask for together",
        },
      ),
    ),
    instances: Type.Optional(Type.Integer({ minimum: 0, description: "most instances (Apps' and running Tasks')" })),
    hostPorts: Type.Optional(
      Type.Integer({ minimum: 0, description: "most published host ports (one per port per instance)" }),
    ),
  },
  { additionalProperties: false },
);
export type NamespaceQuota = Static<typeof NamespaceQuota>;

export const NamespaceSpec = Type.Object(
  {
    policy: Type.Optional(
      Type.Union(
        POLICY_LEVELS.map((l) => Type.Literal(l)),
        { description: "admission level (default restricted); privileged only by a cluster-admin" },
      ),
    ),
    quota: Type.Optional(NamespaceQuota),
    hostPortRange: Type.Optional(
      Type.Object(
        {
          first: Type.Integer({ minimum: 1, maximum: 65535 }),
          last: Type.Integer({ minimum: 1, maximum: 65535 }),
        },
        {
          additionalProperties: false,
          description: "fixed host ports the namespace's Apps may publish (restricted, baseline); none without it",
        },
      ),
    ),
    pullSecrets: Type.Optional(
      Type.Array(Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$", maxLength: 253 }), {
        maxItems: 64,
        uniqueItems: true,
        description:
          "the agents' pull secrets (image config pullSecrets) this namespace owns: only its Apps and Tasks may " +
          "name them in imagePullSecret, and no other Namespace may list them",
      }),
    ),
  },
  { additionalProperties: false },
);
export type NamespaceSpec = Static<typeof NamespaceSpec>;

/** What a namespace's instances ask for, as the quota counts it. */
export const NamespaceUsage = Type.Object(
  {
    cpuMillis: Type.Integer({ minimum: 0 }),
    memoryBytes: Type.Integer({ minimum: 0 }),
    instances: Type.Integer({ minimum: 0 }),
    hostPorts: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type NamespaceUsage = Static<typeof NamespaceUsage>;

export const Namespace = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal("Namespace"),
    metadata: ObjectMeta,
    spec: Type.Optional(NamespaceSpec),
    status: Type.Optional(
      Type.Object({
        /** Computed on every read from the namespace's Apps and Tasks. */
        used: Type.Optional(NamespaceUsage),
        /** The quota in the same units as used (cpuMillis, memoryBytes). */
        hard: Type.Optional(Type.Partial(NamespaceUsage)),
      }),
    ),
  },
  { additionalProperties: false, $id: "Namespace" },
);
export type Namespace = Static<typeof Namespace>;

/** One refusal of the admission policy: the JSON pointer of the field and why. */
export interface PolicyProblem {
  pointer: string;
  message: string;
}

export { DEFAULT_CAPABILITIES };
const DEFAULT_CAPABILITY_SET: ReadonlySet<string> = new Set(DEFAULT_CAPABILITIES);

interface WorkloadSpec {
  image?: unknown;
  ports?: unknown;
  security?: {
    capabilities?: { add?: unknown };
    seccomp?: unknown;
    userNamespace?: unknown;
  };
}

/**
 * What the namespace's admission level refuses in an App's or Task's spec,
 * each with the JSON pointer of its field. `hostPortRange` is the namespace's
 * (restricted and baseline: fixed host ports only inside it).
 */
export function policyProblems(
  spec: unknown,
  level: PolicyLevel,
  hostPortRange?: { first: number; last: number },
): PolicyProblem[] {
  if (level === "privileged" || typeof spec !== "object" || spec === null) return [];
  const s = spec as WorkloadSpec;
  const out: PolicyProblem[] = [];
  const why = `not allowed in a ${level} namespace`;
  const add = Array.isArray(s.security?.capabilities?.add) ? (s.security.capabilities.add as unknown[]) : [];
  add.forEach((c, i) => {
    const name = String(c).replace(/^CAP_/, "");
    const ok = level === "restricted" ? name === "NET_BIND_SERVICE" : DEFAULT_CAPABILITY_SET.has(name);
    if (!ok) {
      const allowed = level === "restricted" ? "only NET_BIND_SERVICE" : "only Docker's default capabilities";
      out.push({ pointer: `/spec/security/capabilities/add/${i}`, message: `${String(c)} ${why} (${allowed})` });
    }
  });
  if (s.security?.seccomp === "unconfined") {
    out.push({ pointer: "/spec/security/seccomp", message: `unconfined ${why}: use default` });
  }
  const userns = s.security?.userNamespace;
  if (typeof userns === "object" && userns !== null) {
    out.push({
      pointer: "/spec/security/userNamespace",
      message: `an explicit host uid ${why}: set userNamespace: true (the node picks the range)`,
    });
  } else if (level === "restricted" && userns !== true) {
    out.push({ pointer: "/spec/security/userNamespace", message: `must be true in a restricted namespace` });
  }
  if (typeof s.image === "string" && s.image.startsWith("oci:")) {
    out.push({ pointer: "/spec/image", message: `oci: sources (a path on the node) are ${why}` });
  }
  const ports = Array.isArray(s.ports) ? (s.ports as Array<{ hostPort?: unknown }>) : [];
  ports.forEach((p, i) => {
    if (typeof p?.hostPort !== "number") return;
    const inRange = hostPortRange && p.hostPort >= hostPortRange.first && p.hostPort <= hostPortRange.last;
    if (!inRange) {
      const range = hostPortRange ? `${hostPortRange.first}-${hostPortRange.last}` : "none";
      out.push({
        pointer: `/spec/ports/${i}/hostPort`,
        message: `${p.hostPort} is outside the namespace's host port range (${range})`,
      });
    }
  });
  return out;
}

/** A quota's cpu in millicores; 0 (as a number too) is a quota: nothing may ask for cpu. Throws on what the parser refuses. */
export function quotaCpuMillis(q: string | number): number {
  return q === 0 ? 0 : parseCpuMillis(q);
}

/**
 * What a Namespace's spec breaks beyond its schema: quota quantities the
 * parsers refuse, a host port range that descends. The CLI (`grove apply -f`)
 * and grove-server check the same; whether a pull secret belongs to another
 * Namespace only the server can tell.
 */
export function namespaceSpecProblems(spec: unknown): PolicyProblem[] {
  if (typeof spec !== "object" || spec === null) return [];
  const s = spec as { quota?: Record<string, unknown>; hostPortRange?: { first?: unknown; last?: unknown } };
  const out: PolicyProblem[] = [];
  const quota = typeof s.quota === "object" && s.quota !== null ? s.quota : {};
  for (const [field, parse] of [
    ["cpu", quotaCpuMillis],
    ["memory", parseBytes],
  ] as const) {
    const q = quota[field];
    if (typeof q !== "string" && typeof q !== "number") continue; // the schema names it
    try {
      parse(q);
    } catch (err) {
      out.push({ pointer: `/spec/quota/${field}`, message: (err as Error).message });
    }
  }
  const r = s.hostPortRange;
  if (typeof r === "object" && r !== null && typeof r.first === "number" && typeof r.last === "number") {
    if (r.first > r.last)
      out.push({ pointer: "/spec/hostPortRange/first", message: `must be at most last (${r.last})` });
  }
  return out;
}
