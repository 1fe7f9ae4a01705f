// `grove diff -f FILE|DIR|-`: what `grove apply` would change, as a unified diff of each
// object's labels and spec (what apply sends and compares) between the live object and the
// manifest. Exit status as kubectl's: 0 nothing would change, 1 something would, 2 an error.
import type { Command } from "commander";
import * as YAML from "yaml";
import { GroveError } from "../errors";
import type { Kind } from "../resource-kinds";
import { connect, type CliDeps } from "./deps";
import { refOf } from "./kinds";
import { ExitStatus } from "./logs-exec-top";
import { loadManifestInput } from "./manifest-input";

const CONTEXT_LINES = 3;

interface Labeled {
  metadata: { labels?: Record<string, string> };
  spec: unknown;
}

/** The part of an object apply owns, as YAML lines. */
function intentLines(o: Labeled): string[] {
  const labels = o.metadata.labels ?? {};
  const view = { ...(Object.keys(labels).length ? { metadata: { labels } } : {}), spec: o.spec };
  return YAML.stringify(view, { sortMapEntries: true }).trimEnd().split("\n");
}

/** Line diff (longest common subsequence; manifests are small) as " ", "-", "+" prefixed lines. */
export function diffLines(a: readonly string[], b: readonly string[]): string[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      (lcs[i] as number[])[j] =
        a[i] === b[j]
          ? ((lcs[i + 1] as number[])[j + 1] as number) + 1
          : Math.max((lcs[i + 1] as number[])[j] as number, (lcs[i] as number[])[j + 1] as number);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push(` ${a[i]}`);
      i++;
      j++;
    } else if (j < m && (i >= n || ((lcs[i] as number[])[j + 1] as number) > ((lcs[i + 1] as number[])[j] as number))) {
      out.push(`+${b[j]}`);
      j++;
    } else {
      out.push(`-${a[i]}`);
      i++;
    }
  }
  return out;
}

/** Keeps changed lines and CONTEXT_LINES around them; "@@" between separate hunks. */
export function hunks(lines: readonly string[]): string[] {
  const keep = lines.map(() => false);
  lines.forEach((l, k) => {
    if (l.startsWith(" ")) return;
    for (let c = Math.max(0, k - CONTEXT_LINES); c <= Math.min(lines.length - 1, k + CONTEXT_LINES); c++)
      keep[c] = true;
  });
  const out: string[] = [];
  let gap = true;
  lines.forEach((l, k) => {
    if (!keep[k]) {
      gap = true;
      return;
    }
    if (gap) out.push("@@");
    gap = false;
    out.push(l);
  });
  return out;
}

export function registerDiffCommand(program: Command, deps: CliDeps): void {
  program
    .command("diff")
    .description("show what apply would change (exit 0: nothing, 1: something would change, 2: an error)")
    .requiredOption("-f, --filename <path...>", "a manifest file, a directory of them, or - for standard input")
    .action(async (opts: { filename: string[] }, cmd: Command) => {
      let changed = 0;
      try {
        const manifests = await loadManifestInput(opts.filename, deps);
        const { config, client } = connect(cmd, deps);
        for (const { object } of manifests) {
          const kind = object.kind as Kind;
          const namespace = kind === "Node" ? undefined : (object.metadata.namespace ?? config.namespace);
          const ref = refOf(kind, object.metadata.name);
          const live = await client.get(kind, object.metadata.name, namespace).catch((err: unknown) => {
            if (err instanceof GroveError && err.code === "NotFound") return undefined;
            throw err;
          });
          const before = live ? intentLines(live) : [];
          const lines = diffLines(before, intentLines(object));
          if (lines.every((l) => l.startsWith(" "))) continue;
          changed++;
          const where = namespace ? ` in namespace ${namespace}` : "";
          deps.out(
            `--- ${ref}${where} (${live ? `live, resourceVersion ${live.metadata.resourceVersion}` : "absent"})`,
          );
          deps.out(`+++ ${ref}${where} (manifest)`);
          for (const l of live ? hunks(lines) : lines) deps.out(l);
        }
      } catch (err) {
        deps.err(`error: ${err instanceof Error ? err.message : String(err)}`);
        throw new ExitStatus(2);
      }
      if (changed > 0) throw new ExitStatus(1);
    });
}
