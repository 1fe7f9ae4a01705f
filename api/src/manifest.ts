// Manifests: the YAML or JSON files users apply. Everything is validated before
// anything is sent, and every problem points at file:line:col so it can be fixed
// without guessing.
import * as fs from "node:fs";
import * as path from "node:path";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { ValueErrorType } from "@sinclair/typebox/errors";
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Node as YamlNode } from "yaml";
import { API_VERSION, type App, type Node } from "./schemas";
import { KINDS, SCHEMAS } from "./resource-kinds";
import { Secret } from "./secrets";
import { Namespace, namespaceSpecProblems } from "./namespace-schema";
import type { Task } from "./task-schema";
import { taskProblems } from "./task-rules";
import { parseBytes, parseCpuMillis } from "./quantity";
import { appSourceProblems } from "./app-source";
import { codePoints, MAX_QUANTITY_LENGTH, stringProblems } from "./string-rules";
import { appCheckProblems } from "./checks";
import { updateProblems } from "./update";
import { appNetworkProblems } from "./network-checks";
import {
  decodeManifestBytes,
  MANIFEST_YAML_OPTIONS,
  yamlDepthProblem,
  yamlDocumentProblems,
  yamlDocumentValue,
} from "./manifest-text";

/** One thing wrong with a manifest, positioned in its source file. */
export interface ManifestProblem {
  file: string;
  /** 1-based; absent when the problem concerns the file as a whole. */
  line?: number;
  col?: number;
  /** JSON pointer of the offending field ("/spec/instances"); absent for syntax errors. */
  pointer?: string;
  message: string;
}

/** An accepted object and where it came from. */
export interface ManifestObject<T = App | Node | Task> {
  file: string;
  /** 0-based index of the YAML document within the file. */
  documentIndex: number;
  line: number;
  object: T;
}

export interface ManifestOptions {
  /** Kinds users may submit through this command; others are rejected. Default: App and Node. */
  acceptKinds?: readonly ManifestKind[];
}

const MANIFEST_EXTENSIONS = [".yaml", ".yml", ".json"];
const DEFAULT_ACCEPT: readonly ManifestKind[] = ["App", "Node", "Task"];
/** What a manifest may hold: the API's kinds, and Secrets and Namespaces (which have routes of their own). */
export const MANIFEST_KINDS = [...KINDS, "Secret", "Namespace"] as const;
export type ManifestKind = (typeof MANIFEST_KINDS)[number];
const MANIFEST_SCHEMAS = { ...SCHEMAS, Secret, Namespace } as const;
const CHECKERS = new Map<ManifestKind, TypeCheck<(typeof MANIFEST_SCHEMAS)[ManifestKind]>>();

function checkerFor(kind: ManifestKind): TypeCheck<(typeof MANIFEST_SCHEMAS)[ManifestKind]> {
  let checker = CHECKERS.get(kind);
  if (!checker) {
    checker = TypeCompiler.Compile(MANIFEST_SCHEMAS[kind]);
    CHECKERS.set(kind, checker);
  }
  return checker;
}

/** "/spec/command/0" -> "spec.command[0]"; keys that are not identifiers get brackets. */
export function dottedPath(pointer: string): string {
  if (pointer === "" || pointer === "/") return "(document)";
  let out = "";
  for (const segment of pointerSegments(pointer)) {
    if (/^[0-9]+$/.test(segment)) out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function pointerSegments(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** `examples/hello.yaml:7:14: spec.instances: Expected integer` */
export function formatProblem(p: ManifestProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.col ?? 1}` : p.file;
  const field = p.pointer !== undefined ? `${dottedPath(p.pointer)}: ` : "";
  return `${where}: ${field}${p.message}`;
}

/** Thrown when any document of any manifest file is invalid; carries every problem found. */
export class ManifestError extends Error {
  constructor(readonly problems: readonly ManifestProblem[]) {
    super(
      problems.length === 1
        ? `invalid manifest: ${formatProblem(problems[0] as ManifestProblem)}`
        : `${problems.length} problems in manifests:\n${problems.map(formatProblem).join("\n")}`,
    );
    this.name = "ManifestError";
  }

  /** One line per problem, ready to print. */
  lines(): string[] {
    return this.problems.map(formatProblem);
  }
}

/** The manifest files a path names: the file itself, or a directory's manifests (not recursive), sorted. */
export function manifestFiles(target: string): string[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch (err) {
    throw new ManifestError([{ file: target, message: `cannot read: ${describeFsError(err)}` }]);
  }
  if (!stat.isDirectory()) return [target];
  const files = fs
    .readdirSync(target)
    .filter((name) => MANIFEST_EXTENSIONS.includes(path.extname(name).toLowerCase()))
    .sort()
    .map((name) => path.join(target, name))
    .filter((file) => fs.statSync(file).isFile());
  if (files.length === 0) {
    throw new ManifestError([
      {
        file: target,
        message: `no manifests found (looked for ${MANIFEST_EXTENSIONS.map((e) => "*" + e).join(", ")})`,
      },
    ]);
  }
  return files;
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === "ENOENT") return "no such file or directory";
  if (e.code === "EACCES") return "permission denied";
  return e.message ?? String(err);
}

/**
 * Loads and validates every manifest under the given paths. Returns the objects only when all
 * of them are valid; otherwise throws one ManifestError listing every problem.
 */
export function loadManifests(targets: string | readonly string[], options: ManifestOptions = {}): ManifestObject[] {
  const objects: ManifestObject[] = [];
  const problems: ManifestProblem[] = [];
  for (const target of typeof targets === "string" ? [targets] : targets) {
    let files: string[];
    try {
      files = manifestFiles(target);
    } catch (err) {
      if (err instanceof ManifestError) {
        problems.push(...err.problems);
        continue;
      }
      throw err;
    }
    for (const file of files) {
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(file);
      } catch (err) {
        problems.push({ file, message: `cannot read: ${describeFsError(err)}` });
        continue;
      }
      const decoded = decodeManifestBytes(bytes);
      if ("problem" in decoded) {
        problems.push({ file, ...decoded.problem });
        continue;
      }
      const text = decoded.text;
      const result = parseManifestText(text, file, options);
      objects.push(...result.objects);
      problems.push(...result.problems);
    }
  }
  if (problems.length > 0) throw new ManifestError(problems);
  return objects;
}

/** Parses one file's text (one or more YAML documents, or JSON). Never throws for bad input. */
export function parseManifestText(
  text: string,
  file: string,
  options: ManifestOptions = {},
): { objects: ManifestObject[]; problems: ManifestProblem[] } {
  const accept = options.acceptKinds ?? DEFAULT_ACCEPT;
  const objects: ManifestObject[] = [];
  const problems: ManifestProblem[] = [];
  // Checked before parsing: the parser recurses per level of nesting.
  const tooDeep = yamlDepthProblem(text);
  if (tooDeep) return { objects, problems: [{ file, ...tooDeep }] };
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, ...MANIFEST_YAML_OPTIONS });
  const at = (offset: number | undefined): { line?: number; col?: number } =>
    offset === undefined ? {} : lineCounter.linePos(offset);

  // parseAllDocuments returns an EmptyStream (no documents) for an empty file.
  const documents = Array.isArray(docs) ? docs : [];
  documents.forEach((doc, documentIndex) => {
    const syntax = yamlDocumentProblems(doc, lineCounter);
    if (syntax.length > 0) {
      problems.push(...syntax.map((p) => ({ file, ...p })));
      return;
    }
    const root = doc.contents;
    // An empty document (e.g. a trailing "---") is not an object; skip it.
    if (root === null || (isScalar(root) && root.value === null)) return;
    const docLine = at(root.range[0]);
    if (!isMap(root)) {
      problems.push({
        file,
        ...docLine,
        message: "a manifest document must be a mapping with apiVersion, kind, metadata and spec",
      });
      return;
    }
    const read = yamlDocumentValue(doc, lineCounter);
    if ("problem" in read) {
      problems.push({ file, ...read.problem });
      return;
    }
    const value = read.value;
    const locate = (pointer: string, keyOnly = false) => at(offsetOf(root, pointerSegments(pointer), keyOnly));
    const docProblems = validateDocument(value as Record<string, unknown>, accept).map((p) => ({
      file,
      ...locate(p.pointer, p.atKey),
      pointer: p.pointer,
      message: p.message,
    }));
    if (docProblems.length > 0) {
      problems.push(...docProblems);
      return;
    }
    objects.push({ file, documentIndex, line: docLine.line ?? 1, object: value as App | Node | Task });
  });
  if (documents.length === 0 && text.trim() !== "") {
    problems.push({ file, message: "no YAML documents found" });
  }
  return { objects, problems };
}

export interface FieldProblem {
  pointer: string;
  message: string;
  /** Point at the key rather than the value (unexpected properties). */
  atKey?: boolean;
}

/** The schema and quantity checks of one parsed document. Pure: exported for the server-side tests too. */
export function validateDocument(
  value: Record<string, unknown>,
  accept: readonly ManifestKind[] = DEFAULT_ACCEPT,
): FieldProblem[] {
  const { apiVersion, kind } = value;
  if (apiVersion === undefined) {
    return [{ pointer: "/apiVersion", message: `required (supported: ${API_VERSION})` }];
  }
  if (apiVersion !== API_VERSION) {
    return [
      {
        pointer: "/apiVersion",
        message: `unsupported apiVersion ${JSON.stringify(apiVersion)} (supported: ${API_VERSION})`,
      },
    ];
  }
  if (kind === undefined) {
    return [{ pointer: "/kind", message: `required (known kinds: ${MANIFEST_KINDS.join(", ")})` }];
  }
  if (typeof kind !== "string" || !(MANIFEST_KINDS as readonly string[]).includes(kind)) {
    const known = MANIFEST_KINDS.join(", ");
    return [{ pointer: "/kind", message: `unknown kind ${JSON.stringify(kind)} (known kinds: ${known})` }];
  }
  const k = kind as ManifestKind;
  if (!accept.includes(k)) {
    const why =
      k === "Instance"
        ? "Instances are created by the control plane from an App; write an App manifest instead"
        : `this command accepts ${accept.join(", ")}`;
    return [{ pointer: "/kind", message: `kind ${k} cannot be submitted: ${why}` }];
  }

  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const e of checkerFor(k).Errors(value)) {
    // The server's validator (Ajv) counts a string's length in Unicode characters, TypeBox in
    // UTF-16 code units: count as the server does, so that both accept the same strings.
    if (e.type === ValueErrorType.StringMaxLength && codePoints(String(e.value)) <= (e.schema.maxLength as number))
      continue;
    // TypeBox reports a missing property twice ("required", then the type); keep the first per path.
    if (seen.has(e.path)) continue;
    seen.add(e.path);
    if (isQuantityPointer(e.path)) continue; // explained below, with the quantity parser's words
    if (e.message === "Unexpected property") {
      // A map's key (env, labels, Secret data) that its pattern does not admit; else a field no schema has.
      const keyPattern = Object.keys((e.schema.patternProperties as object | undefined) ?? {})[0];
      const message = keyPattern && keyPattern !== "^(.*)$" ? `key must match ${keyPattern}` : "unknown field";
      problems.push({ pointer: e.path, message, atKey: true });
    } else if (e.message === "Expected required property") {
      problems.push({ pointer: e.path, message: "required field is missing" });
    } else {
      problems.push({ pointer: e.path, message: e.message });
    }
  }
  problems.push(...quantityProblems(value));
  // Characters no process argument, environment variable or label can hold (the server's body parsers refuse them too).
  problems.push(...stringProblems(value));
  if (k === "App")
    problems.push(
      ...appSourceProblems(value.spec),
      ...appCheckProblems(value.spec),
      ...updateProblems(value.spec),
      // Without the server's host port policy (its configuration): the rest of the network checks.
      ...appNetworkProblems(value.spec),
    );
  if (k === "Task") problems.push(...taskProblems(value));
  if (k === "Namespace") {
    problems.push(...namespaceSpecProblems(value.spec));
    const ns = (value.metadata as { namespace?: unknown } | undefined)?.namespace;
    if (ns !== undefined)
      problems.push({ pointer: "/metadata/namespace", message: "must not be set: Namespace is cluster-scoped" });
  }
  return problems;
}

const QUANTITY_POINTERS = ["/spec/resources/cpu", "/spec/resources/memory"];
function isQuantityPointer(pointer: string): boolean {
  return QUANTITY_POINTERS.includes(pointer);
}

function quantityProblems(value: Record<string, unknown>): FieldProblem[] {
  const spec = value.spec as Record<string, unknown> | undefined;
  const resources = spec?.resources as Record<string, unknown> | undefined;
  if (!resources || typeof resources !== "object") return [];
  const problems: FieldProblem[] = [];
  const check = (field: "cpu" | "memory", parse: (q: string | number) => number, unit: string) => {
    const q = resources[field];
    if (q === undefined) return;
    const pointer = `/spec/resources/${field}`;
    if (typeof q !== "string" && typeof q !== "number") {
      problems.push({ pointer, message: `expected a quantity string or a number, got ${typeOf(q)}` });
      return;
    }
    if (typeof q === "string" && codePoints(q) > MAX_QUANTITY_LENGTH) {
      problems.push({ pointer, message: `longer than ${MAX_QUANTITY_LENGTH} characters` });
      return;
    }
    try {
      if (parse(q) <= 0) problems.push({ pointer, message: `must be at least 1${unit}, got ${JSON.stringify(q)}` });
    } catch (err) {
      problems.push({ pointer, message: (err as Error).message });
    }
  };
  check("cpu", parseCpuMillis, "m");
  check("memory", parseBytes, " byte");
  return problems;
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "a mapping" : typeof v;
}

/**
 * Source offset of the node a JSON pointer names; when it does not exist, of the nearest
 * existing parent. Points at the value, or at the key when `keyOnly` (or the value is empty).
 */
function offsetOf(root: YamlNode, segments: string[], keyOnly: boolean): number | undefined {
  let node: YamlNode = root;
  let offset = root.range?.[0];
  for (const [i, segment] of segments.entries()) {
    const last = i === segments.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === segment);
      if (!pair) return offset;
      const key = pair.key as YamlNode;
      const value = pair.value as YamlNode | null;
      if (last && keyOnly) return key.range?.[0] ?? offset;
      if (!value || (isScalar(value) && value.value === null && value.range?.[0] === value.range?.[1])) {
        return key.range?.[0] ?? offset;
      }
      node = value;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)] as YamlNode | undefined;
      if (!item) return offset;
      node = item;
    } else {
      return offset;
    }
    offset = node.range?.[0] ?? offset;
  }
  return offset;
}
