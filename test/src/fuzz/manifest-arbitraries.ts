// fast-check arbitraries for manifests: valid ones drawn from the TypeBox schemas
// themselves (api/src/schemas.ts, task-schema.ts), and mutations of them that no
// reading of the schemas can accept (wrong types, missing and unknown fields,
// out-of-range numbers, huge strings, deep nesting, duplicate keys, odd YAML tags,
// alias bombs, bytes that are not UTF-8). Used by test/src/manifest-fuzz.test.ts.
import fc from "fast-check";
import { stringify } from "yaml";
import {
  App,
  AppSpec,
  MAX_ARG_LENGTH,
  MAX_ARGS,
  MAX_ENV_VARS,
  MAX_LABELS,
  NAME_PATTERN,
  stringProblems,
  Task,
} from "@grove/api";
import { validEgressRule, validResources } from "./semantic-arbitraries";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface JsonSchema {
  const?: unknown;
  anyOf?: JsonSchema[];
  type?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  patternProperties?: Record<string, JsonSchema>;
}
/** The schemas' plain JSON Schema view (TypeBox schemas are JSON Schema objects). */
const schema = (s: unknown): JsonSchema => s as JsonSchema;

/** Any value the JSON Schema accepts (small: at most 3 items and keys, strings of any code points). */
export function fromSchema(s: JsonSchema): fc.Arbitrary<Json> {
  if (s.const !== undefined) return fc.constant(s.const as Json);
  if (s.anyOf) return fc.oneof(...s.anyOf.map(fromSchema));
  switch (s.type) {
    case "string": {
      const maxLength = Math.min(s.maxLength ?? 24, 24);
      const minLength = s.minLength ?? 0;
      const base = s.pattern
        ? fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length <= maxLength && v.length >= minLength)
        : fc.string({ unit: "binary", minLength, maxLength });
      return base;
    }
    case "integer":
      return fc.integer({
        min: s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : (s.minimum ?? -(2 ** 31)),
        max: s.maximum ?? 2 ** 31,
      });
    case "number":
      return fc.double({
        min: s.exclusiveMinimum ?? s.minimum ?? -1e6,
        minExcluded: s.exclusiveMinimum !== undefined,
        max: s.maximum ?? 1e6,
        noNaN: true,
        noDefaultInfinity: true,
      });
    case "boolean":
      return fc.boolean();
    case "array":
      return fc.array(fromSchema(s.items ?? {}), {
        minLength: s.minItems ?? 0,
        maxLength: Math.max(s.minItems ?? 0, Math.min(s.maxItems ?? 3, 3)),
      });
    case "object": {
      if (s.patternProperties) {
        const [pattern, value] = Object.entries(s.patternProperties)[0]!;
        const key =
          pattern === "^(.*)$"
            ? fc.string({ minLength: 1, maxLength: 12 })
            : (fromSchema({ type: "string", pattern }) as fc.Arbitrary<string>);
        return fc.dictionary(key, fromSchema(value), { maxKeys: 3 }) as fc.Arbitrary<Json>;
      }
      const props = s.properties ?? {};
      return fc.record(Object.fromEntries(Object.entries(props).map(([k, v]) => [k, fromSchema(v)])), {
        requiredKeys: s.required ?? [],
      }) as fc.Arbitrary<Json>;
    }
    default:
      return fc.constant(null);
  }
}

function pointerPath(pointer: string): string[] {
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/**
 * The value with every string the API refuses for its characters (string-rules.ts: NUL, unpaired
 * surrogates, control characters in labels) made acceptable: those characters removed. Valid
 * manifests are drawn with it; the refused characters are the mutations' business.
 */
export function acceptableStrings(value: Json): Json {
  const v = structuredClone(value);
  for (let round = 0; round < 50; round++) {
    const problems = stringProblems(v);
    if (problems.length === 0) return v;
    for (const p of problems) {
      const path = pointerPath(p.pointer);
      const last = path.pop()!;
      let parent = v as Record<string, Json>;
      for (const seg of path) parent = parent[seg] as Record<string, Json>;
      const clean = (s: string) =>
        s
          .replace(/\u0000/g, "")
          .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "")
          .replace(/[\u0000-\u001f\u007f-\u009f]/g, /control character/.test(p.message) ? "" : "$&");
      if (p.message.startsWith("key ")) {
        const child = parent[last]!;
        delete parent[last];
        const key = clean(last).slice(0, 200) || "k";
        parent[key] = child;
      } else {
        parent[last] = clean(parent[last] as string);
      }
    }
  }
  throw new Error(`acceptableStrings: still refused: ${JSON.stringify(stringProblems(v))}`);
}

const specField = (name: string) => fromSchema(schema(AppSpec).properties![name]!);
export const meta = fc.record(
  {
    name: fromSchema({ type: "string", pattern: NAME_PATTERN, maxLength: 20, minLength: 1 }),
    labels: fromSchema(schema(App).properties!.metadata!.properties!.labels!),
  },
  { requiredKeys: ["name"] },
);

/** Apps that use no Secret or agent-side config (those need objects beyond the manifest). */
export const validApp: fc.Arbitrary<Record<string, Json>> = fc
  .record({
    meta,
    spec: fc.record(
      {
        command: specField("command"),
        env: fc.dictionary(
          fromSchema({ type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }) as fc.Arbitrary<string>,
          fc.string({ unit: "binary", maxLength: 16 }),
          { maxKeys: 3 },
        ),
        workingDir: specField("workingDir"),
        instances: fc.integer({ min: 0, max: 3 }), // more: the controller would write that many Instances
        resources: validResources,
        restartPolicy: specField("restartPolicy"),
        stopGracePeriodSeconds: specField("stopGracePeriodSeconds"),
        placement: specField("placement"),
        priority: specField("priority"),
        egress: fc.array(validEgressRule, { maxLength: 3 }),
        maxUnavailable: specField("maxUnavailable"),
        disconnect: specField("disconnect"),
      },
      { requiredKeys: ["command", "instances"] },
    ),
  })
  .map(
    ({ meta, spec }) =>
      acceptableStrings({
        apiVersion: "grove/v1",
        kind: "App",
        metadata: meta as Json,
        spec: { rootfs: "busybox", ...(spec as Record<string, Json>) },
      }) as Record<string, Json>,
  );

const taskSpecField = (name: string) => fromSchema(schema(Task).properties!.spec!.properties![name]!);
export const validTask: fc.Arbitrary<Record<string, Json>> = fc
  .record({
    meta,
    spec: fc.record(
      {
        command: taskSpecField("command"),
        env: taskSpecField("env"),
        workingDir: taskSpecField("workingDir"),
        resources: validResources,
        priority: taskSpecField("priority"),
        retries: taskSpecField("retries"),
        ttlSecondsAfterFinished: taskSpecField("ttlSecondsAfterFinished"),
      },
      { requiredKeys: ["command"] },
    ),
  })
  .map(
    ({ meta, spec }) =>
      acceptableStrings({
        apiVersion: "grove/v1",
        kind: "Task",
        metadata: meta as Json,
        spec: { rootfs: "busybox", ...(spec as Record<string, Json>) },
      }) as Record<string, Json>,
  );

/** A body on the wire: its bytes, how it is labelled, and what was done to it (for failure messages). */
export interface Body {
  what: string;
  contentType: "application/json" | "application/yaml";
  bytes: Buffer;
}

export const asJson = (what: string, v: unknown): Body => ({
  what,
  contentType: "application/json",
  bytes: Buffer.from(JSON.stringify(v)),
});
export const asYaml = (what: string, v: unknown): Body => ({
  what,
  contentType: "application/yaml",
  bytes: Buffer.from(stringify(v, { lineWidth: 0 })),
});

export function setAt(obj: Record<string, Json>, path: string[], value: Json | undefined): Record<string, Json> {
  const copy = structuredClone(obj);
  let node = copy as Record<string, Json>;
  for (const seg of path.slice(0, -1)) {
    if (typeof node[seg] !== "object" || node[seg] === null) node[seg] = {};
    node = node[seg] as Record<string, Json>;
  }
  const last = path[path.length - 1]!;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

const notAName = fc
  .string({ unit: "binary", maxLength: 80 })
  .filter((s) => !new RegExp(NAME_PATTERN).test(s) || s.length > 63);
const anyButInteger = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);
const notAString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }));

/** [JSON pointer segments, a value the schema refuses there]. */
const WRONG_VALUES: Array<fc.Arbitrary<[string[], Json | undefined]>> = [
  anyButInteger.map((v) => [["spec", "instances"], v]),
  fc.oneof(fc.integer({ max: -1 }), fc.integer({ min: 10001 })).map((v) => [["spec", "instances"], v]),
  fc.integer({ min: 1000001 }).map((v) => [["spec", "priority"], v]),
  fc.integer({ min: 3601 }).map((v) => [["spec", "stopGracePeriodSeconds"], v]),
  notAName.map((v) => [["metadata", "name"], v]),
  notAString.map((v) => [["metadata", "name"], v]),
  fc.constantFrom<Json>([], "true", [1], [null], {}).map((v) => [["spec", "command"], v]),
  fc
    .string({ maxLength: 10 })
    .filter((s) => !["Always", "OnFailure", "Never"].includes(s))
    .map((v) => [["spec", "restartPolicy"], v]),
  fc
    .oneof(fc.constantFrom<Json>("0", "0m", "-1", "abc", "1.2345", 0, -1, "", true))
    .map((v) => [["spec", "resources", "cpu"], v]),
  fc.constantFrom<Json>("64Xi", "-1", "", 0, 1.5, [], "1e9").map((v) => [["spec", "resources", "memory"], v]),
  fc
    .string({ maxLength: 12 })
    .filter((s) => s !== "grove/v1")
    .map((v) => [["apiVersion"], v]),
  fc
    .oneof(fc.string({ maxLength: 12 }), notAString)
    .filter((s) => s !== "App")
    .map((v) => [["kind"], v]),
  fc
    .constantFrom(["apiVersion"], ["kind"], ["metadata"], ["metadata", "name"], ["spec"], ["spec", "instances"])
    .map((p) => [[...p], undefined]),
  fc
    .tuple(
      fc.constantFrom([], ["metadata"], ["spec"], ["spec", "resources"]),
      fc.stringMatching(/^[a-z][a-zA-Z]{0,10}$/),
    )
    // "x" + anything: no schema has such a field.
    .map(([p, k]) => [[...p, `x${k}`], 1]),
  // Huge strings where the schema bounds the length (or past the 1 MiB body limit anywhere).
  fc.integer({ min: 64, max: 4096 }).map((n) => [["metadata", "name"], "a".repeat(n)]),
  fc.integer({ min: 254, max: 300_000 }).map((n) => [["metadata", "labels", "k"], "v".repeat(n)]),
  fc.integer({ min: 1_100_000, max: 2_000_000 }).map((n) => [["spec", "command"], ["x".repeat(n)]]),
  // Over the bounds (docs/api.md, "Limits"), within the 1 MiB body.
  fc.integer({ min: MAX_ARG_LENGTH + 1, max: 200_000 }).map((n) => [
    ["spec", "command"],
    ["sh", "x".repeat(n)],
  ]),
  fc.integer({ min: MAX_ARG_LENGTH + 1, max: 200_000 }).map((n) => [["spec", "env", "BIG"], "x".repeat(n)]),
  fc.integer({ min: MAX_ARGS + 1, max: 3000 }).map((n) => [["spec", "command"], Array<Json>(n).fill("x")]),
  fc
    .integer({ min: MAX_ENV_VARS + 1, max: 3000 })
    .map((n) => [["spec", "env"], Object.fromEntries(Array.from({ length: n }, (_, i) => [`V${i}`, ""]))]),
  fc
    .integer({ min: MAX_LABELS + 1, max: 1000 })
    .map((n) => [["metadata", "labels"], Object.fromEntries(Array.from({ length: n }, (_, i) => [`l${i}`, ""]))]),
  fc.integer({ min: 254, max: 5000 }).map((n) => [["metadata", "labels"], { ["k".repeat(n)]: "v" }]),
  fc.integer({ min: 4096, max: 100_000 }).map((n) => [["spec", "workingDir"], "/" + "d".repeat(n)]),
  fc.integer({ min: 33, max: 10_000 }).map((n) => [["spec", "resources", "memory"], "1".repeat(n)]),
  // Deep nesting anywhere.
  fc
    .tuple(
      fc.integer({ min: 65, max: 200 }), // deeper: as text (textMutation), serializers recurse
      fc.constantFrom(["spec", "env"], ["spec", "command"], ["metadata", "labels"]),
      fc.boolean(),
    )
    .map(([depth, p, arrays]) => [[...p], nested(depth, arrays)]),
];

function nested(depth: number, arrays: boolean): Json {
  let v: Json = 1;
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { a: v };
  return v;
}

const BAD_UTF8 = [[0xff], [0xfe], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf5, 0x80, 0x80, 0x80], [0x80]];
const ODD_TAGS = [
  "!!binary aGVsbG8=",
  "!!python/object/apply:os.system ['true']",
  "!foo x",
  "!!set {a}",
  "!!timestamp 2001-12-14",
  "!<tag:example.com,2000:x> y",
];

/**
 * [JSON pointer segments, a string with a character no process argument, environment variable or
 * label can hold] (string-rules.ts): a branch of mutatedBody of its own, so every run of 40 meets some.
 */
const CHARACTER_VALUES: Array<fc.Arbitrary<[string[], Json | undefined]>> = [
  fc
    .tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), fc.constantFrom("\u0000", "\ud800", "\udfff"))
    .chain(([a, b, bad]) =>
      fc.constantFrom<[string[], Json]>(
        [
          ["spec", "command"],
          ["sh", a + bad + b],
        ],
        [["spec", "env", "A"], a + bad + b],
        [["spec", "workingDir"], "/" + a + bad + b],
        [["metadata", "labels", "team"], a + bad + b],
        [["metadata", "labels", a + bad + b], "v"],
        [["spec", "env"], { [`A${bad}`]: "v" }],
      ),
    ),
  fc
    .tuple(
      fc.integer({ min: 1, max: 0x1f }),
      fc.constantFrom(["metadata", "labels", "k"], ["spec", "placement", "nodeSelector", "zone"]),
    )
    .map(([c, p]) => [[...p], `a${String.fromCharCode(c)}b`]),
];

/** A valid App changed so that no reading of the schemas accepts it, as JSON or YAML. */
export const mutatedBody: fc.Arbitrary<Body> = fc.oneof(
  fc.tuple(validApp, fc.oneof(...WRONG_VALUES), fc.boolean()).map(([app, [p, v], yaml]) => {
    const what = `${p.join(".")} := ${JSON.stringify(v)?.slice(0, 60)}`;
    return (yaml ? asYaml : asJson)(what, setAt(app, p, v));
  }),
  fc.tuple(validApp, fc.oneof(...CHARACTER_VALUES), fc.boolean()).map(([app, [p, v], yaml]) => {
    const what = `${p.join(".")} := ${JSON.stringify(v)?.slice(0, 60)}`;
    return (yaml ? asYaml : asJson)(what, setAt(app, p, v));
  }),
  fc.tuple(validApp, textMutation()).map(([app, mutate]) => mutate(app)),
);

/** Mutations of the text itself: what a serializer never writes. */
function textMutation(): fc.Arbitrary<(app: Record<string, Json>) => Body> {
  return fc.oneof(
    // Duplicate keys.
    fc.boolean().map((yaml) => (app: Record<string, Json>): Body => {
      if (!yaml) {
        const text = JSON.stringify(app).replace('"spec":{', '"spec":{"instances":1,');
        return { what: "duplicate spec.instances (JSON)", contentType: "application/json", bytes: Buffer.from(text) };
      }
      const text = stringify(app, { lineWidth: 0 }).replace(/^spec:\n/m, "spec:\n  instances: 1\n");
      return { what: "duplicate spec.instances (YAML)", contentType: "application/yaml", bytes: Buffer.from(text) };
    }),
    // Odd tags on a field's value.
    fc.constantFrom(...ODD_TAGS).map((tag) => (app: Record<string, Json>): Body => {
      const text = stringify(setAt(app, ["spec", "workingDir"], "@@TAG@@"), { lineWidth: 0 })
        .replace('"@@TAG@@"', tag)
        .replace("@@TAG@@", tag);
      return { what: `tag ${tag}`, contentType: "application/yaml", bytes: Buffer.from(text) };
    }),
    // Alias bombs: each level refers to the previous one `fan` times.
    fc
      .tuple(fc.integer({ min: 4, max: 9 }), fc.integer({ min: 4, max: 12 }))
      .map(([levels, fan]) => (app: Record<string, Json>): Body => {
        let bomb = `x0: &a0 ["lol"]\n`;
        for (let i = 1; i <= levels; i++)
          bomb += `x${i}: &a${i} [${Array(fan)
            .fill(`*a${i - 1}`)
            .join(", ")}]\n`;
        const text =
          bomb +
          stringify(setAt(app, ["spec", "command"], ["@@BOMB@@"]), { lineWidth: 0 }).replace(
            /- "?@@BOMB@@"?/,
            `- *a${levels}`,
          );
        return { what: `alias bomb ${fan}^${levels}`, contentType: "application/yaml", bytes: Buffer.from(text) };
      }),
    // Bytes that are not UTF-8, inside a string value.
    fc.tuple(fc.constantFrom(...BAD_UTF8), fc.boolean()).map(([bad, yaml]) => (app: Record<string, Json>): Body => {
      const text = (yaml ? stringify(app, { lineWidth: 0 }) : JSON.stringify(app)).replace("busybox", "busy@@box");
      const [a, b] = text.split("@@");
      return {
        what: `bytes ${bad.map((x) => x.toString(16)).join(" ")} (${yaml ? "YAML" : "JSON"})`,
        contentType: yaml ? "application/yaml" : "application/json",
        bytes: Buffer.concat([Buffer.from(a!), Buffer.from(bad), Buffer.from(b!)]),
      };
    }),
    // Nesting far deeper than a serializer (or a recursive parser) copes with: written as text.
    fc
      .tuple(fc.integer({ min: 1000, max: 300_000 }), fc.boolean(), fc.boolean())
      .map(([depth, arrays, yaml]) => (app: Record<string, Json>): Body => {
        const deep = arrays ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
        const text = (yaml ? stringify(app, { lineWidth: 0 }) : JSON.stringify(app)).replace(/"busybox"|busybox/, deep);
        return {
          what: `${depth} levels of ${arrays ? "[" : "{"} (${yaml ? "YAML" : "JSON"})`,
          contentType: yaml ? "application/yaml" : "application/json",
          bytes: Buffer.from(text),
        };
      }),
    // Huge scalars: numbers no integer field can hold.
    fc
      .tuple(fc.integer({ min: 20, max: 20_000 }), fc.boolean())
      .map(([digits, yaml]) => (app: Record<string, Json>): Body => {
        const big = "9".repeat(digits);
        const text = (yaml ? stringify(app, { lineWidth: 0 }) : JSON.stringify(app)).replace(
          /("?instances"?:) ?[0-9]+/,
          `$1 ${big}`,
        );
        return {
          what: `instances: ${digits} digits`,
          contentType: yaml ? "application/yaml" : "application/json",
          bytes: Buffer.from(text),
        };
      }),
  );
}

function pathsOf(v: Json, prefix: string[] = []): string[][] {
  if (typeof v !== "object" || v === null) return [prefix];
  const children = Array.isArray(v)
    ? v.flatMap((c, i) => pathsOf(c, [...prefix, String(i)]))
    : Object.entries(v).flatMap(([k, c]) => pathsOf(c, [...prefix, k]));
  return prefix.length > 0 ? [prefix, ...children] : children;
}

/** A valid object of `valid` with one value anywhere in it replaced by any JSON value, or removed: valid or not. */
export function anyEdited(valid: fc.Arbitrary<Record<string, Json>>): fc.Arbitrary<Body> {
  return fc
    .tuple(valid, fc.nat(), fc.option(fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>), fc.boolean())
    .map(([obj, pick, value, yaml]) => {
      const paths = pathsOf(obj);
      const p = paths[pick % paths.length]!;
      const what = `${String(obj.kind)} ${p.join(".")} := ${value === null ? "(removed)" : JSON.stringify(value)}`;
      return (yaml ? asYaml : asJson)(what, setAt(obj, p, value === null ? undefined : value));
    });
}
export const anyEditedApp: fc.Arbitrary<Body> = anyEdited(validApp);
