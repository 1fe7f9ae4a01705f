// The Secret kind and the API's identities (tokens bound to roles). Kept out
// of schemas.ts, which is over its size budget.
import { Type, type Static } from "@sinclair/typebox";
import { API_VERSION, ObjectMeta } from "./schemas";
import { MAX_SECRET_KEYS } from "./string-rules";

export const SECRET_KEY_PATTERN = "^[A-Za-z0-9._-]+$";

export const Secret = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal("Secret"),
    metadata: ObjectMeta,
    /** Key -> value. Absent when the caller may not read values (list, role view). */
    data: Type.Optional(
      Type.Record(Type.String({ pattern: SECRET_KEY_PATTERN, maxLength: 253 }), Type.String({ maxLength: 65536 }), {
        maxProperties: MAX_SECRET_KEYS,
        additionalProperties: false,
      }),
    ),
    /** The keys, always shown (values only in data). */
    keys: Type.Optional(Type.Array(Type.String({ maxLength: 253 }), { maxItems: MAX_SECRET_KEYS })),
  },
  { additionalProperties: false, $id: "Secret" },
);
export type Secret = Static<typeof Secret>;

export const ROLES = ["cluster-admin", "namespace-admin", "edit", "view"] as const;
export type Role = (typeof ROLES)[number];
export const VERBS = ["get", "list", "watch", "create", "update", "delete", "exec", "logs", "stats"] as const;
export type Verb = (typeof VERBS)[number];

/** Further namespaces one token may be bound to (besides its home namespace). */
export const MAX_TOKEN_NAMESPACES = 16;

export const TokenRequest = Type.Object(
  {
    name: Type.String({ pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", minLength: 1, maxLength: 63 }),
    role: Type.Union(ROLES.map((r) => Type.Literal(r))),
    namespaces: Type.Optional(
      Type.Array(Type.String({ pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", minLength: 1, maxLength: 63 }), {
        minItems: 1,
        maxItems: MAX_TOKEN_NAMESPACES,
        uniqueItems: true,
        description:
          "further namespaces the role holds in, besides the one the token is created in (its home); the caller must be allowed to create tokens in each",
      }),
    ),
  },
  { additionalProperties: false, $id: "TokenRequest" },
);
export type TokenRequest = Static<typeof TokenRequest>;

/** A token as the API shows it: never the token itself, except once in the answer to its creation. */
export const TokenInfo = Type.Object(
  {
    name: Type.String(),
    namespace: Type.Optional(Type.String()),
    /** The further namespaces its role holds in (besides namespace, its home). */
    namespaces: Type.Optional(Type.Array(Type.String())),
    role: Type.String(),
    createdAt: Type.String(),
    token: Type.Optional(Type.String({ description: "only in the answer to the creation; not stored" })),
  },
  { $id: "TokenInfo" },
);
export type TokenInfo = Static<typeof TokenInfo>;
