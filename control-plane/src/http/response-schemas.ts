// Schemas of the answers that have no resource schema of their own (plan,
// capacity, stats, logs, tokens), so /openapi.json types every success answer
// for generated clients. fastify also serializes answers by them, and
// fast-json-stringify drops what a schema does not list: the objects here keep
// additionalProperties open, so a field added to an answer is never lost.
import type { FastifyInstance } from "fastify";
import { Type, type TProperties } from "@sinclair/typebox";
import { API_VERSION, Endpoints, Resources, TokenInfo } from "@grove/api";

const Open = <T extends TProperties>(props: T, id?: string) =>
  Type.Object(props, { additionalProperties: true, ...(id ? { $id: id } : {}) });

const PlanUtilization = Open({
  allocatable: Resources,
  allocated: Resources,
  cpu: Type.Number({ description: "fraction of allocatable cpu allocated (0..1)" }),
  memory: Type.Number({ description: "fraction of allocatable memory allocated (0..1)" }),
});

export const PlanResultSchema = Open(
  {
    instances: Type.Array(
      Open({
        namespace: Type.String(),
        app: Type.String(),
        name: Type.String(),
        change: Type.Union([
          Type.Literal("create"),
          Type.Literal("replace"),
          Type.Literal("place"),
          Type.Literal("resize"),
        ]),
        node: Type.Optional(Type.String()),
        hostPorts: Type.Optional(Type.Array(Type.Integer())),
        reason: Type.Optional(Type.String()),
        victims: Type.Optional(Type.Array(Type.String())),
      }),
    ),
    removed: Type.Array(Type.String()),
    preempted: Type.Array(Type.String()),
    before: PlanUtilization,
    after: PlanUtilization,
    fits: Type.Boolean(),
  },
  "PlanResult",
);

export const CapacityReportSchema = Open(
  {
    nodes: Type.Array(
      Open({
        name: Type.String(),
        schedulable: Type.Boolean(),
        allocatable: Resources,
        allocated: Resources,
        free: Resources,
        fits: Type.Optional(Type.Integer()),
      }),
    ),
    cluster: Open({ allocatable: Resources, allocated: Resources, free: Resources }),
    shape: Type.Optional(Resources),
    fits: Type.Optional(Type.Integer()),
    fitsIfPooled: Type.Optional(
      Type.Integer({ description: "what the free total could hold as one node; more than fits: stranded room" }),
    ),
  },
  "CapacityReport",
);

export const InstanceStatsSchema = Open(
  {
    namespace: Type.String(),
    name: Type.String(),
    app: Type.String(),
    uid: Type.String(),
    nodeName: Type.String(),
    cpuUsageNs: Type.Number(),
    memoryBytes: Type.Number(),
    memoryPeakBytes: Type.Number(),
    pids: Type.Number(),
    oomKills: Type.Number(),
    sampledAt: Type.String(),
    limits: Type.Optional(Open({ cpuMillis: Type.Number(), memoryBytes: Type.Number(), pids: Type.Number() })),
  },
  "InstanceStats",
);

export const StatsListSchema = Open(
  {
    items: Type.Array(Type.Unsafe({ $ref: "InstanceStats#" })),
    unavailable: Type.Array(Open({ nodeName: Type.String(), message: Type.String() })),
  },
  "StatsList",
);

export const TokenListSchema = Open(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal("TokenList"),
    items: Type.Array(Type.Unsafe({ $ref: "TokenInfo#" })),
  },
  "TokenList",
);

/** Secrets as lists show them: names and keys, never values. */
export const SecretListSchema = Open(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal("SecretList"),
    metadata: Open({ resourceVersion: Type.String() }),
    items: Type.Array(Open({ metadata: Open({ name: Type.String() }) })),
  },
  "SecretList",
);

/** A log answers chunked text/plain: the generated type is a string. */
export const LogText = Type.String({ description: "the log's lines (chunked while following)" });

export const ref = (id: string) => Type.Unsafe({ $ref: `${id}#` });

/** Adds the schemas above (and Endpoints, TokenInfo) under their $id. */
export function addResponseSchemas(app: FastifyInstance): void {
  for (const s of [PlanResultSchema, CapacityReportSchema, InstanceStatsSchema, StatsListSchema, Endpoints])
    app.addSchema(s);
  app.addSchema(TokenInfo);
  app.addSchema(TokenListSchema);
  app.addSchema(SecretListSchema);
}
