// What users type for a kind ("apps", "inst", "app/hello") and how kinds are printed.
import { KINDS, type Kind } from "../resource-kinds";

const ALIASES: Record<string, Kind> = {
  app: "App",
  apps: "App",
  instance: "Instance",
  instances: "Instance",
  inst: "Instance",
  node: "Node",
  nodes: "Node",
  no: "Node",
  task: "Task",
  tasks: "Task",
};

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** "apps" -> App; "app/hello" -> App and hello. Throws UsageError naming the known kinds. */
export function parseKindArg(arg: string): { kind: Kind; name?: string } {
  const slash = arg.indexOf("/");
  const word = slash >= 0 ? arg.slice(0, slash) : arg;
  const kind = ALIASES[word.toLowerCase()];
  if (!kind) {
    throw new UsageError(
      `unknown kind "${word}" (known kinds: ${KINDS.join(", ")}; also written app(s), instance(s)/inst, node(s), task(s))`,
    );
  }
  if (slash < 0) return { kind };
  const name = arg.slice(slash + 1);
  if (name === "") throw new UsageError(`"${arg}" names no object: write ${word}/NAME`);
  return { kind, name };
}

/** "app/hello", the way results are reported. */
export function refOf(kind: Kind, name: string): string {
  return `${kind.toLowerCase()}/${name}`;
}

/** "60s", "2m", "1h", "500ms", or a bare number of seconds -> milliseconds. */
export function parseDuration(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`invalid duration "${text}": use e.g. 30s, 2m, 1h or 500ms`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Math.round(Number(m[1]) * factor);
}
