// fast-check arbitraries for Secret and Namespace manifests: valid ones drawn from
// their TypeBox schemas (api/src/secrets.ts, namespace-schema.ts), and mutations no
// reading of the schemas (and of namespaceSpecProblems) accepts. Used by
// test/src/manifest-fuzz.test.ts next to the App and Task ones (manifest-arbitraries.ts).
import fc from "fast-check";
import { MAX_SECRET_KEYS, Namespace, Secret } from "@grove/api";
import {
  acceptableStrings,
  asJson,
  asYaml,
  fromSchema,
  meta,
  setAt,
  type Body,
  type Json,
} from "./manifest-arbitraries";

const schema = (s: unknown) => s as Parameters<typeof fromSchema>[0];

/** Secrets with 0 to 3 keys of any values (the values' characters made acceptable). */
export const validSecret: fc.Arbitrary<Record<string, Json>> = fc
  .record({ meta, data: fromSchema(schema(Secret).properties!.data!) }, { requiredKeys: ["meta"] })
  .map(
    ({ meta, data }) =>
      acceptableStrings({
        apiVersion: "grove/v1",
        kind: "Secret",
        metadata: meta as Json,
        ...(data !== undefined ? { data } : {}),
      }) as Record<string, Json>,
  );

/**
 * Namespaces named "fz-..." (no other test's namespace gets a policy from them), with any
 * spec the schema allows; the host port range ascends (a descending one is a mutation).
 */
export const validNamespace: fc.Arbitrary<Record<string, Json>> = fc
  .record({ meta, spec: fromSchema(schema(Namespace).properties!.spec!) }, { requiredKeys: ["meta"] })
  .map(({ meta, spec }) => {
    const m = meta as { name: string; labels?: Json };
    const s = spec as { hostPortRange?: { first: number; last: number } } | undefined;
    if (s?.hostPortRange && s.hostPortRange.first > s.hostPortRange.last) {
      s.hostPortRange = { first: s.hostPortRange.last, last: s.hostPortRange.first };
    }
    return acceptableStrings({
      apiVersion: "grove/v1",
      kind: "Namespace",
      metadata: { ...m, name: `fz-${m.name}`.slice(0, 63).replace(/-+$/, "") },
      ...(s !== undefined ? { spec: s as Json } : {}),
    }) as Record<string, Json>;
  });

const notAString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }));

/** [JSON pointer segments, a value no reading of the Secret schema accepts there]. */
const SECRET_WRONG: Array<fc.Arbitrary<[string[], Json | undefined]>> = [
  notAString.map((v) => [["data", "k"], v]),
  fc.constantFrom<Json>("x", 1, [], null).map((v) => [["data"], v]),
  fc.string({ minLength: 1, maxLength: 8 }).map((k) => [["data", `${k}!`], "v"]), // keys: [A-Za-z0-9._-]
  fc.constantFrom("\u0000", "\ud800", "\udc00").map((bad) => [["data", "password"], `hunter${bad}2`]),
  fc.integer({ min: 65_537, max: 300_000 }).map((n) => [["data", "big"], "x".repeat(n)]),
  fc
    .integer({ min: MAX_SECRET_KEYS + 1, max: 1000 })
    .map((n) => [["data"], Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, ""]))]),
  fc.constantFrom(["xdata"], ["metadata", "xname"], ["spec"]).map((p) => [[...p], 1]),
  fc.constantFrom(["metadata"], ["metadata", "name"], ["apiVersion"]).map((p) => [[...p], undefined]),
];

/** [JSON pointer segments, a value no reading of the Namespace schema accepts there]. */
const NAMESPACE_WRONG: Array<fc.Arbitrary<[string[], Json | undefined]>> = [
  fc.string({ maxLength: 12 }).map((v) => [["spec", "policy"], `x${v}`]),
  fc.constantFrom<Json>("-1", "abc", "1.2345", -1, "", true, "1".repeat(40)).map((v) => [["spec", "quota", "cpu"], v]),
  fc.constantFrom<Json>("64Xi", "-1", "", 1.5, -3, [], "9".repeat(40)).map((v) => [["spec", "quota", "memory"], v]),
  fc.oneof(fc.integer({ max: -1 }), fc.constant(0.5)).map((v) => [["spec", "quota", "instances"], v]),
  fc
    .tuple(fc.integer({ min: 2, max: 65535 }), fc.integer({ min: 1, max: 65534 }))
    .filter(([a, b]) => a > b)
    .map(([first, last]) => [["spec", "hostPortRange"], { first, last }]),
  fc.integer({ min: 65536 }).map((v) => [["spec", "hostPortRange"], { first: 1, last: v }]),
  fc.constantFrom<Json>(["a", "a"], ["-bad"], Array<Json>(65).fill("s"), [1]).map((v) => [["spec", "pullSecrets"], v]),
  fc.constant<[string[], Json]>([["metadata", "namespace"], "team-a"]),
  fc.constantFrom("\u0000", "\ud800", "\u001b").map((bad) => [["metadata", "labels", "team"], `a${bad}`]),
  fc.constantFrom(["xspec"], ["spec", "xquota"], ["spec", "quota", "xcpu"]).map((p) => [[...p], 1]),
];

/** A valid Secret or Namespace changed so that no reading of the schemas accepts it, as JSON or YAML. */
export const mutatedTenantBody: fc.Arbitrary<Body> = fc.oneof(
  fc.tuple(validSecret, fc.oneof(...SECRET_WRONG), fc.boolean()).map(([secret, [p, v], yaml]) => {
    const what = `Secret ${p.join(".")} := ${JSON.stringify(v)?.slice(0, 60)}`;
    return (yaml ? asYaml : asJson)(what, setAt(secret, p, v));
  }),
  fc.tuple(validNamespace, fc.oneof(...NAMESPACE_WRONG), fc.boolean()).map(([ns, [p, v], yaml]) => {
    const what = `Namespace ${p.join(".")} := ${JSON.stringify(v)?.slice(0, 60)}`;
    return (yaml ? asYaml : asJson)(what, setAt(ns, p, v));
  }),
);
