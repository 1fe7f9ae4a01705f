// Health checks of an App's instances (spec.checks): a startup, a liveness
// and a readiness check, each an http GET, a tcp connect or a command run in
// the instance. The agent runs them (agent/src/health); their schema and the
// rules JSON Schema cannot express (one kind per check, named ports the App
// has, an ascending status range) live here, apart from schemas.ts.
import { Type, type Static } from "@sinclair/typebox";
import { MAX_ARG_LENGTH, MAX_ARGS } from "./string-rules";

const PortRef = Type.Union(
  [
    Type.Integer({ minimum: 1, maximum: 65535 }),
    Type.String({ pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 15 }),
  ],
  { description: "a containerPort number, or the name of one of the App's ports" },
);

export const HttpCheck = Type.Object(
  {
    path: Type.Optional(Type.String({ pattern: "^/", maxLength: 2048, description: "default /" })),
    port: PortRef,
    status: Type.Optional(
      Type.String({
        pattern: "^[1-5][0-9][0-9](-[1-5][0-9][0-9])?$",
        description: 'expected status: "200" or a range "200-399" (the default)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type HttpCheck = Static<typeof HttpCheck>;

export const TcpCheck = Type.Object({ port: PortRef }, { additionalProperties: false });
export type TcpCheck = Static<typeof TcpCheck>;

export const ExecCheck = Type.Object(
  {
    command: Type.Array(Type.String({ maxLength: MAX_ARG_LENGTH }), {
      minItems: 1,
      maxItems: MAX_ARGS,
      description: "argv run in the instance; exit 0 passes",
    }),
  },
  { additionalProperties: false },
);
export type ExecCheck = Static<typeof ExecCheck>;

export const HealthCheck = Type.Object(
  {
    http: Type.Optional(HttpCheck),
    tcp: Type.Optional(TcpCheck),
    exec: Type.Optional(ExecCheck),
    initialDelaySeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: "default 0" })),
    periodSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: "default 10" })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: "default 1" })),
    successThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: "default 1" })),
    failureThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: "default 3" })),
  },
  { additionalProperties: false },
);
export type HealthCheck = Static<typeof HealthCheck>;

export const CHECK_ROLES = ["startup", "liveness", "readiness"] as const;
export type CheckRole = (typeof CHECK_ROLES)[number];

export const HealthChecks = Type.Object(
  {
    startup: Type.Optional(HealthCheck),
    liveness: Type.Optional(HealthCheck),
    readiness: Type.Optional(HealthCheck),
  },
  { additionalProperties: false },
);
export type HealthChecks = Static<typeof HealthChecks>;

/** The last result of one of an instance's checks (status.lastCheck). */
export const CheckResult = Type.Object({
  /** startup, liveness or readiness. */
  check: Type.String(),
  /** http, tcp or exec. */
  kind: Type.String(),
  ok: Type.Boolean(),
  message: Type.Optional(Type.String()),
  /** When it ended (RFC 3339, the node's clock). */
  time: Type.String(),
});
export type CheckResult = Static<typeof CheckResult>;

export const CHECK_DEFAULTS = {
  initialDelaySeconds: 0,
  periodSeconds: 10,
  timeoutSeconds: 1,
  successThreshold: 1,
  failureThreshold: 3,
} as const;
export const DEFAULT_HTTP_STATUS = "200-399";

export interface CheckProblem {
  pointer: string;
  message: string;
}

/** [min, max] of an http check's expected status ("200" or "200-399"). */
export function statusRange(status: string | undefined): [number, number] {
  const m = /^(\d{3})(?:-(\d{3}))?$/.exec(status ?? DEFAULT_HTTP_STATUS);
  if (!m) return [200, 399];
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

/**
 * What is wrong with an App spec's checks beyond their schema: each check has
 * exactly one of http, tcp, exec; a port given by name is one of spec.ports;
 * a status range ascends. Each problem names its field as a JSON pointer.
 */
export function appCheckProblems(spec: unknown): CheckProblem[] {
  const out: CheckProblem[] = [];
  if (typeof spec !== "object" || spec === null) return out;
  const { checks, ports } = spec as { checks?: unknown; ports?: unknown };
  if (typeof checks !== "object" || checks === null) return out;
  const portNames = new Set<string>();
  if (Array.isArray(ports)) {
    for (const p of ports as unknown[]) {
      const name = (p as { name?: unknown } | null)?.name;
      if (typeof name === "string") portNames.add(name);
    }
  }
  for (const role of CHECK_ROLES) {
    const check = (checks as Record<string, unknown>)[role];
    if (typeof check !== "object" || check === null) continue;
    const base = `/spec/checks/${role}`;
    const c = check as Record<string, unknown>;
    const kinds = (["http", "tcp", "exec"] as const).filter((k) => c[k] !== undefined);
    if (kinds.length !== 1) {
      out.push({
        pointer: base,
        message:
          kinds.length === 0
            ? "needs one of http, tcp, exec"
            : `has ${kinds.join(" and ")}: give exactly one of http, tcp, exec`,
      });
    }
    for (const kind of ["http", "tcp"] as const) {
      const probe = c[kind] as Record<string, unknown> | undefined;
      if (typeof probe !== "object" || probe === null) continue;
      if (typeof probe.port === "string" && !portNames.has(probe.port)) {
        const known = portNames.size > 0 ? `the App's ports are ${[...portNames].join(", ")}` : "the App has no ports";
        out.push({
          pointer: `${base}/${kind}/port`,
          message: `no port named ${JSON.stringify(probe.port)} (${known})`,
        });
      }
      if (kind === "http" && typeof probe.status === "string" && /^\d{3}-\d{3}$/.test(probe.status)) {
        const [lo, hi] = statusRange(probe.status);
        if (lo > hi) {
          out.push({ pointer: `${base}/http/status`, message: `${JSON.stringify(probe.status)} is not ascending` });
        }
      }
    }
  }
  return out;
}

/** The container port a check's port reference means (a name resolves through the App's ports). */
export function resolveCheckPort(
  port: number | string,
  ports: readonly { name: string; containerPort: number }[] | undefined,
): number | undefined {
  if (typeof port === "number") return port;
  return ports?.find((p) => p.name === port)?.containerPort;
}
