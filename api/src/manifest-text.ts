// The bytes of a manifest before they are a value: UTF-8, YAML or JSON. The CLI
// (`grove apply -f`) and grove-server (application/yaml and application/json bodies)
// both read manifests through these functions, so they agree on what is
// well-formed. Everything here refuses rather than guesses: a byte that is not
// UTF-8, a duplicate key, a tag Grove does not know (!!binary, !!python/object),
// an alias bomb ("billion laughs") and nesting deeper than a manifest needs all
// become a problem with a line and column instead of a quietly changed value,
// a stack overflow or seconds of a blocked event loop.
import {
  isPair,
  isScalar,
  Lexer,
  visit,
  type Document,
  type DocumentOptions,
  type LineCounter,
  type ParseOptions,
  type SchemaOptions,
} from "yaml";

/** Deeper than any manifest needs (an App's deepest field is about 7 levels down). */
export const MAX_MANIFEST_DEPTH = 64;
/** Aliases one document may expand; more is an alias bomb (yaml's own guard, made explicit). */
export const MAX_MANIFEST_ALIASES = 100;

/** A problem with the text itself; 1-based line and column. */
export interface TextProblem {
  line: number;
  col: number;
  message: string;
}

/**
 * The options every manifest is parsed with: YAML 1.2 core schema, keys unique, and
 * no tags beyond the core ones (!!binary, !!set, !!timestamp would make Buffers,
 * Sets and Dates, which are not JSON; they become unresolved tags, refused below).
 */
export const MANIFEST_YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  prettyErrors: false,
  uniqueKeys: true,
  version: "1.2",
  resolveKnownTags: false,
};

/**
 * Why a mapping key may not appear in a manifest, or undefined. `__proto__` (and a
 * `prototype` under `constructor`) names an object's prototype in JavaScript: every
 * assignment of such a key would change what an object inherits instead of
 * holding the value, so the value would be lost quietly. Refused on every path
 * (CLI, JSON and YAML bodies), as the JSON parser's prototype-poisoning guard
 * refuses it, but naming the key and its line.
 */
export function forbiddenKeyProblem(key: string, parentKey: string | undefined): string | undefined {
  if (key === "__proto__") return `key "__proto__" is not allowed (it names an object's prototype)`;
  if (key === "prototype" && parentKey === "constructor") {
    return `key "prototype" under "constructor" is not allowed (it names an object's prototype)`;
  }
  return undefined;
}

/** Line and column (1-based) of a character offset in `text`. */
export function positionOf(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, col: offset - lineStart + 1 };
}

/** Offset of the first byte that is not well-formed UTF-8, or -1. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!;
    let need: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 either.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += need + 1;
  }
  return -1;
}

/** Decodes UTF-8 strictly: a bad byte is a problem at its line and column, not a U+FFFD in a value. */
export function decodeManifestBytes(bytes: Uint8Array): { text: string } | { problem: TextProblem } {
  const bad = firstInvalidUtf8(bytes);
  if (bad === -1) return { text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8") };
  const before = Buffer.from(bytes.buffer, bytes.byteOffset, bad).toString("utf8");
  const pos = positionOf(before, before.length);
  const hex = bytes[bad]!.toString(16).padStart(2, "0");
  return { problem: { ...pos, message: `not valid UTF-8: byte 0x${hex} at byte offset ${bad}` } };
}

/**
 * Where YAML flow collections ([ and {) nest deeper than MAX_MANIFEST_DEPTH, if they do.
 * Uses yaml's lexer, which is iterative, and stops at the first level too deep: the
 * parser proper recurses per level and would overflow the stack on such input.
 */
export function yamlDepthProblem(text: string): TextProblem | undefined {
  let depth = 0;
  let offset = 0;
  let indentDepth = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === "[" || token === "{") {
      if (++depth > MAX_MANIFEST_DEPTH) return tooDeep(text, offset);
    } else if (token === "]" || token === "}") {
      depth = Math.max(0, depth - 1);
    } else if (token === "\n") {
      indentDepth = 0;
    } else if (/^ +$/.test(token) && indentDepth === 0) {
      // Block nesting costs at least one column of indentation per level.
      indentDepth = token.length;
      if (indentDepth > MAX_MANIFEST_DEPTH * 8) return tooDeep(text, offset);
    }
    // Control tokens (document and scalar markers) are not in the text.
    if (token.length > 0 && token.charCodeAt(0) >= 0x20) offset += token.length;
    else if (token === "\n") offset += 1;
  }
  return undefined;
}

function tooDeep(text: string, offset: number): TextProblem {
  return { ...positionOf(text, offset), message: `nested more than ${MAX_MANIFEST_DEPTH} levels deep` };
}

/**
 * Problems of one parsed YAML document beyond yaml's own errors: tags other than
 * the core schema's fall back to a string with only a warning; here they are refused.
 */
export function yamlDocumentProblems(doc: Document, lineCounter: LineCounter): TextProblem[] {
  const problems: TextProblem[] = [];
  for (const e of [...doc.errors, ...doc.warnings.filter((w) => w.code === "TAG_RESOLVE_FAILED")]) {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    const first = (e.message.split("\n")[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, "").trim();
    const message =
      e.code === "TAG_RESOLVE_FAILED"
        ? `${first.replace(/^Unresolved tag: /, "unsupported tag ")} (manifests hold strings, numbers, booleans, null, lists and mappings)`
        : first;
    problems.push({ line, col, message });
  }
  if (problems.length > 0) return problems;
  visit(doc, {
    Pair(_, pair, path) {
      if (!isScalar(pair.key)) return;
      // path ends with the map holding this pair, and before it the pair that map is the value of.
      const parent = path[path.length - 2];
      const parentKey = isPair(parent) ? parent.key : undefined;
      const message = forbiddenKeyProblem(
        String(pair.key.value),
        isScalar(parentKey) ? String(parentKey.value) : undefined,
      );
      if (message) {
        problems.push({ ...lineCounter.linePos(pair.key.range?.[0] ?? 0), message });
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return problems;
}

/** The document's value, or a problem when its aliases expand too far (an alias bomb). */
export function yamlDocumentValue(
  doc: Document,
  lineCounter: LineCounter,
): { value: unknown } | { problem: TextProblem } {
  try {
    return { value: doc.toJS({ maxAliasCount: MAX_MANIFEST_ALIASES }) };
  } catch (err) {
    const { line, col } = lineCounter.linePos(doc.contents?.range?.[0] ?? 0);
    return {
      problem: {
        line,
        col,
        message: `aliases expand too far (more than ${MAX_MANIFEST_ALIASES}; an alias bomb?): ${(err as Error).message}`,
      },
    };
  }
}
