// Request bodies as manifests: JSON (every client) and YAML (application/yaml,
// the bytes of a manifest file as they are). Both are read with the CLI's rules
// (api/src/manifest-text.ts), so what `grove apply -f` refuses the API refuses
// too: bytes that are not UTF-8, duplicate keys (JSON.parse would keep the last
// one quietly), nesting deeper than a manifest needs, odd YAML tags and alias
// bombs. Each refusal is 400 BadRequest with the line and column in details.
// A parsed body whose strings hold what no process argument, environment
// variable or label can (NUL, unpaired surrogates; control characters in
// labels) is 400 ValidationFailed naming each field (api/src/string-rules.ts).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { LineCounter, parseAllDocuments } from "yaml";
import {
  decodeManifestBytes,
  forbiddenKeyProblem,
  GroveError,
  MANIFEST_YAML_OPTIONS,
  MAX_MANIFEST_DEPTH,
  positionOf,
  stringProblems,
  yamlDepthProblem,
  yamlDocumentProblems,
  yamlDocumentValue,
  type TextProblem,
} from "@grove/api";

export const YAML_CONTENT_TYPES = ["application/yaml", "application/x-yaml", "text/yaml"];

function refuse(kind: "JSON" | "YAML", p: TextProblem): GroveError {
  return new GroveError("BadRequest", `invalid ${kind} body at line ${p.line}, column ${p.col}: ${p.message}`, [
    { path: "", line: p.line, col: p.col, message: p.message },
  ]);
}

/** The parsed body, or a ValidationFailed naming each string it may not hold. */
export function checkBodyStrings(value: unknown): unknown {
  const problems = stringProblems(value);
  if (problems.length === 0) return value;
  const details = problems.map((p) => ({ path: p.pointer, message: p.message }));
  throw new GroveError("ValidationFailed", details.map((d) => `${d.path}: ${d.message}`).join("; "), details);
}

/**
 * Duplicate keys, keys naming a prototype (forbiddenKeyProblem) and nesting depth
 * of a JSON text, which JSON.parse does not report (Fastify's guard refuses a
 * `__proto__` key as "not valid JSON", naming nothing). A scan without
 * recursion; syntax errors are left to JSON.parse.
 */
export function jsonStructureProblem(text: string): TextProblem | undefined {
  // lastKey: the key most recently read in an object frame (the one a nested frame opens under).
  const frames: Array<{ keys?: Set<string>; expectKey: boolean; lastKey?: string; parentKey?: string }> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      const top = frames[frames.length - 1];
      if (top?.keys && top.expectKey) {
        let key: string;
        try {
          key = JSON.parse(text.slice(start, i + 1)) as string;
        } catch {
          return undefined; // JSON.parse names the bad string
        }
        if (top.keys.has(key)) return { ...positionOf(text, start), message: `duplicate key ${JSON.stringify(key)}` };
        const forbidden = forbiddenKeyProblem(key, top.parentKey);
        if (forbidden) return { ...positionOf(text, start), message: forbidden };
        top.keys.add(key);
        top.lastKey = key;
        top.expectKey = false;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (frames.length >= MAX_MANIFEST_DEPTH) {
        return { ...positionOf(text, i), message: `nested more than ${MAX_MANIFEST_DEPTH} levels deep` };
      }
      const parentKey = frames[frames.length - 1]?.lastKey;
      frames.push(c === 0x7b ? { keys: new Set(), expectKey: true, parentKey } : { expectKey: false });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
    } else if (c === 0x2c /* , */) {
      const top = frames[frames.length - 1];
      if (top?.keys) top.expectKey = true;
    }
  }
  return undefined;
}

/** Replaces the JSON body parser and adds the YAML one (application/yaml: exactly one document). */
export function installManifestBodyParsers(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (req, body, done) => {
    const decoded = decodeManifestBytes(body as Buffer);
    if ("problem" in decoded) return done(refuse("JSON", decoded.problem), undefined);
    const structure = jsonStructureProblem(decoded.text);
    if (structure) return done(refuse("JSON", structure), undefined);
    parseJson(req as FastifyRequest, decoded.text, (err, value) => {
      if (!err) {
        try {
          return done(null, checkBodyStrings(value));
        } catch (refused) {
          return done(refused as Error, undefined);
        }
      }
      // "... in JSON at position 52": the same line and column as the other refusals.
      const at = /position (\d+)/.exec(err.message);
      if (!at) return done(err, undefined);
      const pos = positionOf(decoded.text, Number(at[1]));
      done(refuse("JSON", { ...pos, message: err.message.replace(/ in JSON at position \d+.*$/s, "") }), undefined);
    });
  });
  app.addContentTypeParser(YAML_CONTENT_TYPES, { parseAs: "buffer" }, (_req, body, done) => {
    try {
      done(null, checkBodyStrings(parseYamlBody(body as Buffer)));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}

/** One YAML document's value; throws a 400 GroveError naming the line. */
export function parseYamlBody(bytes: Buffer): unknown {
  const decoded = decodeManifestBytes(bytes);
  if ("problem" in decoded) throw refuse("YAML", decoded.problem);
  const text = decoded.text;
  const tooDeep = yamlDepthProblem(text);
  if (tooDeep) throw refuse("YAML", tooDeep);
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, ...MANIFEST_YAML_OPTIONS });
  const docs = Array.isArray(parsed) ? parsed : [];
  if (docs.length !== 1) {
    const message = `a body holds exactly one YAML document, this one ${docs.length}`;
    throw refuse(
      "YAML",
      docs[1] ? { ...lineCounter.linePos(docs[1].range[0]), message } : { line: 1, col: 1, message },
    );
  }
  const doc = docs[0]!;
  const problems = yamlDocumentProblems(doc, lineCounter);
  if (problems.length > 0) throw refuse("YAML", problems[0]!);
  const read = yamlDocumentValue(doc, lineCounter);
  if ("problem" in read) throw refuse("YAML", read.problem);
  return read.value;
}
