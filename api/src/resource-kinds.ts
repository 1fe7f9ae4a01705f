// The kinds of the API and their schemas, in one list: what the HTTP routes,
// the OpenAPI document, manifest validation and the CLI go by. Apart from
// schemas.ts so a kind can have its own file (task-schema.ts) without an
// import cycle.
import { App, Instance, Node } from "./schemas";
import { Task } from "./task-schema";

export const KINDS = ["App", "Instance", "Node", "Task"] as const;
export type Kind = (typeof KINDS)[number];

export type AnyResource = App | Instance | Node | Task;

export const SCHEMAS = { App, Instance, Node, Task } as const;

/** Which kinds live in a namespace. Nodes are cluster-scoped. */
export function isNamespaced(kind: Kind): boolean {
  return kind !== "Node";
}

/** The URL collection name of a kind ("App" -> "apps"). */
export function pluralOf(kind: Kind): string {
  return kind.toLowerCase() + "s";
}
