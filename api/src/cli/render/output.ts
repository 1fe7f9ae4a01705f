// `-o` of `grove get`: table, wide, yaml, json, name (kind/name per object) or
// jsonpath=TEMPLATE (../jsonpath-template.ts). Parsed once, before any request.
import { InvalidArgumentError } from "commander";
import * as YAML from "yaml";
import type { Kind } from "../../resource-kinds";
import type { CliDeps } from "../deps";
import { refOf } from "../kinds";
import { parseJsonPathTemplate, type JsonPathTemplate } from "../jsonpath-template";
import { formatRow, renderObjects, tableHeaders, tableRow, type TableOptions } from "./table";

export const OUTPUT_CHOICES = ["table", "wide", "yaml", "json", "name", "jsonpath=TEMPLATE"] as const;

export type Output =
  { format: "table" | "wide" | "yaml" | "json" | "name" } | { format: "jsonpath"; template: JsonPathTemplate };

/** commander's parser for -o; an unknown format lists the choices, a bad template says what is wrong. */
export function parseOutput(value: string): Output {
  if (value.startsWith("jsonpath=")) return { format: "jsonpath", template: parseJsonPathTemplate(value.slice(9)) };
  if (value === "jsonpath") throw new InvalidArgumentError("Give the template: -o jsonpath='{.metadata.name}'.");
  if (["table", "wide", "yaml", "json", "name"].includes(value)) return { format: value as "table" };
  throw new InvalidArgumentError(`Allowed choices are ${OUTPUT_CHOICES.join(", ")}.`);
}

export const DEFAULT_OUTPUT: Output = { format: "table" };

interface Named {
  kind: string;
  metadata: { name: string };
}

/** As kubectl: exactly what the template makes, no newline added (write {"\n"} for one). */
export function printJsonPath(deps: CliDeps, text: string): void {
  if (deps.write) deps.write(text);
  else deps.out(text);
}

/** Prints a list (or one object when `single`) in the chosen format. */
export function printObjects(
  deps: CliDeps,
  kind: Kind,
  objects: readonly Named[],
  output: Output,
  table: TableOptions,
  single: boolean,
  widths?: number[],
): void {
  const whole = single ? objects[0] : { items: objects };
  switch (output.format) {
    case "json":
      deps.out(JSON.stringify(whole, null, 2));
      return;
    case "yaml":
      deps.out(YAML.stringify(whole).trimEnd());
      return;
    case "name":
      for (const o of objects) deps.out(refOf(kind, o.metadata.name));
      return;
    case "jsonpath":
      printJsonPath(deps, output.template.render(whole));
      return;
    case "table":
    case "wide":
      if (widths) {
        deps.out(formatRow(tableHeaders(kind, table), widths));
        for (const o of objects) deps.out(formatRow(tableRow(kind, o as never, table), widths));
      } else {
        for (const line of renderObjects(kind, objects as never, table)) deps.out(line);
      }
  }
}

/** One watch event under -w: JSON and YAML print the event, name and jsonpath the object. */
export function printWatchEvent(
  deps: CliDeps,
  kind: Kind,
  event: { type: string; object: Named },
  output: Output,
  row: () => string,
): void {
  switch (output.format) {
    case "json":
      deps.out(JSON.stringify(event));
      return;
    case "yaml":
      deps.out(`---\n${YAML.stringify(event).trimEnd()}`);
      return;
    case "name":
      deps.out(refOf(kind, event.object.metadata.name));
      return;
    case "jsonpath":
      deps.out(output.template.render(event.object)); // one line per event, so events stay apart
      return;
    default:
      deps.out(row());
  }
}
