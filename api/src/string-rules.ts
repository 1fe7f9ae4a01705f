// The bounds of the API's free-form strings, lists and maps (docs/api.md,
// "Limits"), and the characters no string of a request may hold. Both are
// checked alike by grove-server (its body parsers and schemas) and by the CLI
// (`grove apply -f`: validateDocument), so they agree on what is valid.
// Lengths count Unicode characters (code points), on both sides.

/**
 * One argv entry, env value or health check argument. 32,000 characters are at
 * most 128,000 bytes of UTF-8, under Linux's limit on one execve string
 * (MAX_ARG_STRLEN, 131,072 bytes with its NUL).
 */
export const MAX_ARG_LENGTH = 32000;
/** Entries of a command, entrypoint or exec check. */
export const MAX_ARGS = 1024;
/** Variables of an App's or Task's env. */
export const MAX_ENV_VARS = 1024;
/**
 * Any key of a request's mappings: label keys, env names, Secret keys (JSON
 * Schema's maxLength does not reach the keys of a map; stringProblems checks them).
 */
export const MAX_KEY_LENGTH = 253;
/** workingDir and other paths: PATH_MAX (4096) with its NUL. */
export const MAX_PATH_LENGTH = 4095;
/** Labels of one object (each key and value at most 253 characters). */
export const MAX_LABELS = 256;
/** security.user: user[:group], names or numbers. */
export const MAX_USER_LENGTH = 256;
/** A cpu or memory quantity written as a string ("500m", "64Mi"). */
export const MAX_QUANTITY_LENGTH = 32;
/** Keys of one Secret (each value at most 65,536 characters; the body limit, 1 MiB, bounds the sum). */
export const MAX_SECRET_KEYS = 256;
/** What the server fills in and a client may send back: uid, resourceVersion, creationTimestamp. */
export const MAX_META_FIELD_LENGTH = 128;

/** A character no string of a request may hold, with the JSON pointer of its field. */
export interface StringProblem {
  pointer: string;
  message: string;
}

/** Problems reported at most per document: one bad character repeated is one mistake. */
const MAX_STRING_PROBLEMS = 20;

/**
 * Strings that end up as labels (or are matched against node labels): shown in
 * tables and passed in label selectors, so they may hold no control characters.
 */
const LABEL_LIKE = [
  /^\/metadata\/labels\/[^/]+$/,
  /^\/spec\/placement\/nodeSelector\/[^/]+$/,
  /^\/spec\/placement\/constraints\/\d+\/(key|values\/\d+)$/,
  /^\/spec\/placement\/tolerations\/\d+\/(key|value)$/,
  /^\/spec\/placement\/spread\/topologyKey$/,
  /^\/spec\/taints\/\d+\/(key|value)$/,
];

function escapeSegment(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

function hex(code: number): string {
  return "U+" + code.toString(16).toUpperCase().padStart(4, "0");
}

/** A string's length in Unicode characters (code points), as Ajv and docs/api.md count it. */
export function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Why `s` cannot be passed on (undefined: it can). */
function badCharacter(s: string, labelLike: boolean): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) {
      return `holds a NUL character (U+0000) at character ${i}: no process argument, environment variable or label can hold one`;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++; // a pair: one character beyond U+FFFF
        continue;
      }
      return `holds an unpaired UTF-16 surrogate (${hex(c)}) at character ${i}: not a Unicode character, it has no UTF-8 form`;
    }
    if (labelLike && (c < 0x20 || (c >= 0x7f && c <= 0x9f))) {
      return `holds the control character ${hex(c)} at character ${i}: labels hold printable characters only`;
    }
  }
  return undefined;
}

/**
 * Every string (values and keys) of a request body that holds NUL, an unpaired
 * surrogate, or, where it becomes a label, a control character, and every key
 * longer than MAX_KEY_LENGTH; each with the JSON pointer of its field. A top-level `status` is skipped: a server writes
 * it, and a write ignores it (a `get -o yaml` applied back must pass).
 */
export function stringProblems(value: unknown): StringProblem[] {
  const problems: StringProblem[] = [];
  const stack: Array<[unknown, string]> = [[value, ""]];
  while (stack.length > 0 && problems.length < MAX_STRING_PROBLEMS) {
    const [v, pointer] = stack.pop()!;
    if (typeof v === "string") {
      const why = badCharacter(
        v,
        LABEL_LIKE.some((re) => re.test(pointer)),
      );
      if (why) problems.push({ pointer, message: why });
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${pointer}/${i}`]);
    } else if (typeof v === "object" && v !== null) {
      const entries = Object.entries(v as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        if (pointer === "" && key === "status") continue;
        const at = `${pointer}/${escapeSegment(key)}`;
        const why = badCharacter(
          key,
          LABEL_LIKE.some((re) => re.test(at)),
        );
        if (why) problems.push({ pointer: at, message: `key ${why}` });
        else if (key.length > MAX_KEY_LENGTH && codePoints(key) > MAX_KEY_LENGTH)
          problems.push({ pointer: at, message: `key longer than ${MAX_KEY_LENGTH} characters` });
        stack.push([child, at]);
      }
    }
  }
  return problems.slice(0, MAX_STRING_PROBLEMS);
}
