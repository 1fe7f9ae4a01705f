// The shared schemas the routes refer to by $id, so the OpenAPI document names
// them (components.schemas.App, AppList, ErrorBody, ...).
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import { API_VERSION, ERROR_CODES, KINDS, ListMeta, SCHEMAS, type Kind } from "@grove/api";

export const ErrorBodySchema = Type.Object(
  {
    code: Type.Union(Object.keys(ERROR_CODES).map((c) => Type.Literal(c))),
    message: Type.String(),
    details: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String({ description: 'JSON pointer into the submitted object, e.g. "/spec/instances"' }),
          message: Type.String(),
          file: Type.Optional(Type.String()),
          line: Type.Optional(Type.Integer()),
          col: Type.Optional(Type.Integer()),
        }),
      ),
    ),
  },
  { $id: "ErrorBody" },
);

export const ErrorBodyRef = Type.Unsafe({ $ref: "ErrorBody#" });
export const resourceRef = (kind: Kind) => Type.Unsafe({ $ref: `${kind}#` });
export const listRef = (kind: Kind) => Type.Unsafe({ $ref: `${kind}List#` });

export function addSharedSchemas(app: FastifyInstance): void {
  app.addSchema(ErrorBodySchema);
  for (const kind of KINDS) {
    app.addSchema(SCHEMAS[kind]);
    app.addSchema(
      Type.Object(
        {
          apiVersion: Type.Literal(API_VERSION),
          kind: Type.Literal(`${kind}List`),
          metadata: ListMeta,
          items: Type.Array(Type.Unsafe({ $ref: `${kind}#` })),
        },
        { $id: `${kind}List` },
      ),
    );
  }
}
