// `-o jsonpath=TEMPLATE`, kubectl's template syntax over RFC 9535 JSONPath (jsonpath-rfc9535):
//   text outside braces is printed as is;
//   {.items[*].metadata.name}   an expression: a leading "." or "[" means "from the object"
//                               ($ is added), "$..." and "@..." are taken as written;
//                               several results are joined with a space; none prints nothing;
//   {"\n"}                      a JSON string literal (the way to print a newline or a tab);
//   {range .items[*]}...{end}   the inner template once per result, expressions inside
//                               relative to that result.
// Filters use RFC 9535 syntax, which also accepts kubectl's parenthesised form:
//   {.items[?(@.status.state=="Running")].metadata.name}
// Strings print bare, other values as JSON.
import { query, type JsonValue } from "jsonpath-rfc9535";
import { UsageError } from "./kinds";

type Part =
  | { type: "text"; text: string }
  | { type: "expr"; expr: string; source: string }
  | { type: "range"; expr: string; source: string; body: Part[] };

export interface JsonPathTemplate {
  readonly source: string;
  render(value: unknown): string;
}

function fail(template: string, message: string): never {
  throw new UsageError(`-o jsonpath: ${message} (template ${JSON.stringify(template)})`);
}

/** Splits the template into text and {…} pieces; braces inside quoted strings do not count. */
function pieces(template: string): { brace: boolean; text: string; at: number }[] {
  const out: { brace: boolean; text: string; at: number }[] = [];
  let i = 0;
  let text = "";
  while (i < template.length) {
    const c = template[i] as string;
    if (c === "}") fail(template, `"}" at character ${i + 1} closes nothing`);
    if (c !== "{") {
      text += c;
      i++;
      continue;
    }
    if (text) out.push({ brace: false, text, at: i - text.length });
    text = "";
    const start = i;
    let quote: string | undefined;
    let depth = 0;
    for (i++; i < template.length; i++) {
      const d = template[i] as string;
      if (quote) {
        if (d === "\\") i++;
        else if (d === quote) quote = undefined;
      } else if (d === '"' || d === "'") quote = d;
      else if (d === "{") depth++;
      else if (d === "}") {
        if (depth === 0) break;
        depth--;
      }
    }
    if (i >= template.length) fail(template, `"{" at character ${start + 1} is never closed`);
    out.push({ brace: true, text: template.slice(start + 1, i).trim(), at: start });
    i++;
  }
  if (text) out.push({ brace: false, text, at: template.length - text.length });
  return out;
}

/** kubectl writes ".a.b"; RFC 9535 wants "$.a.b". */
function toJsonPath(expr: string): string {
  if (expr.startsWith("$")) return expr;
  if (expr.startsWith("@")) return "$" + expr.slice(1);
  if (expr.startsWith(".") || expr.startsWith("[")) return "$" + expr;
  return "$." + expr;
}

function checkExpr(template: string, expr: string, at: number): void {
  try {
    query({}, toJsonPath(expr));
  } catch (err) {
    fail(template, `invalid expression {${expr}} at character ${at + 1}: ${(err as Error).message}`);
  }
}

/** Parses and checks the template (every expression compiled), so mistakes show before any request. */
export function parseJsonPathTemplate(template: string): JsonPathTemplate {
  if (template === "") fail(template, "the template is empty: write e.g. -o jsonpath='{.items[*].metadata.name}'");
  const stack: Part[][] = [[]];
  const open: { source: string; at: number }[] = [];
  for (const p of pieces(template)) {
    const into = stack[stack.length - 1] as Part[];
    if (!p.brace) {
      into.push({ type: "text", text: p.text });
    } else if (p.text.startsWith('"') || p.text.startsWith("'")) {
      let literal: unknown;
      try {
        literal = JSON.parse(p.text.startsWith("'") ? `"${p.text.slice(1, -1).replace(/"/g, '\\"')}"` : p.text);
      } catch {
        fail(template, `{${p.text}} at character ${p.at + 1} is not a valid quoted string`);
      }
      into.push({ type: "text", text: String(literal) });
    } else if (p.text === "end") {
      if (open.length === 0) fail(template, `{end} at character ${p.at + 1} has no {range ...} to end`);
      open.pop();
      const body = stack.pop() as Part[];
      const range = (stack[stack.length - 1] as Part[]).at(-1) as Extract<Part, { type: "range" }>;
      range.body = body;
    } else if (/^range\s/.test(p.text)) {
      const expr = p.text.slice("range".length).trim();
      checkExpr(template, expr, p.at);
      into.push({ type: "range", expr, source: p.text, body: [] });
      stack.push([]);
      open.push({ source: p.text, at: p.at });
    } else if (p.text === "") {
      fail(template, `empty {} at character ${p.at + 1}`);
    } else {
      checkExpr(template, p.text, p.at);
      into.push({ type: "expr", expr: p.text, source: p.text });
    }
  }
  if (open.length > 0) {
    const last = open[open.length - 1] as { source: string; at: number };
    fail(template, `{${last.source}} at character ${last.at + 1} has no {end}`);
  }
  const parts = stack[0] as Part[];
  return { source: template, render: (value) => renderParts(parts, value as JsonValue) };
}

function show(v: JsonValue): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function renderParts(parts: readonly Part[], value: JsonValue): string {
  let out = "";
  for (const part of parts) {
    if (part.type === "text") out += part.text;
    else if (part.type === "expr") out += query(value, toJsonPath(part.expr)).map(show).join(" ");
    else for (const item of query(value, toJsonPath(part.expr))) out += renderParts(part.body, item);
  }
  return out;
}
