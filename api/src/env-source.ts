// An env value is a literal string or a reference to one key of a Secret in
// the App's namespace. Only the reference is stored in Apps and Instances; the
// control plane resolves it when it sends the instance to its node's agent.
import { Type, type Static } from "@sinclair/typebox";
import { MAX_ARG_LENGTH } from "./string-rules";

export const SecretKeyRef = Type.Object(
  {
    name: Type.String({ pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", minLength: 1, maxLength: 63 }),
    key: Type.String({ pattern: "^[A-Za-z0-9._-]+$", minLength: 1, maxLength: 253 }),
  },
  { additionalProperties: false },
);
export type SecretKeyRef = Static<typeof SecretKeyRef>;

export const EnvFromSecret = Type.Object(
  { valueFrom: Type.Object({ secretKeyRef: SecretKeyRef }, { additionalProperties: false }) },
  { additionalProperties: false },
);
export type EnvFromSecret = Static<typeof EnvFromSecret>;

export const EnvValue = Type.Union([Type.String({ maxLength: MAX_ARG_LENGTH }), EnvFromSecret]);
export type EnvValue = Static<typeof EnvValue>;

/** The Secret reference of an env value, or undefined for a literal. */
export function secretRefOf(v: EnvValue): SecretKeyRef | undefined {
  return typeof v === "string" ? undefined : v.valueFrom.secretKeyRef;
}

/** How an env value is shown: literals as they are, references by name and key (never a value). */
export function describeEnvValue(v: EnvValue): string {
  const ref = secretRefOf(v);
  return ref ? `<secret ${ref.name}/${ref.key}>` : (v as string);
}
