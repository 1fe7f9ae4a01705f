// The manifests of `-f`: files, directories, and "-" for standard input (named "<stdin>" in
// problems: `<stdin>:7:14: spec.instances: Expected integer`). Every one is validated before
// the caller sends anything.
import {
  loadManifests,
  ManifestError,
  parseManifestText,
  type ManifestObject,
  type ManifestOptions,
  type ManifestProblem,
} from "../manifest";
import { decodeManifestBytes } from "../manifest-text";
import type { CliDeps } from "./deps";
import { UsageError } from "./kinds";

export const STDIN_NAME = "<stdin>";

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

export async function loadManifestInput(
  paths: readonly string[],
  deps: CliDeps,
  options: ManifestOptions = {},
): Promise<ManifestObject[]> {
  if (paths.filter((p) => p === "-").length > 1) throw new UsageError("-f -: standard input can be read only once");
  const objects: ManifestObject[] = [];
  const problems: ManifestProblem[] = [];
  for (const p of paths) {
    if (p === "-") {
      if (!deps.stdin) throw new UsageError("-f -: this command has no standard input");
      const decoded = decodeManifestBytes(await readAll(deps.stdin));
      if ("problem" in decoded) {
        problems.push({ file: STDIN_NAME, ...decoded.problem });
        continue;
      }
      const result = parseManifestText(decoded.text, STDIN_NAME, options);
      if (result.objects.length === 0 && result.problems.length === 0) {
        problems.push({ file: STDIN_NAME, message: "no manifests: standard input was empty" });
      }
      objects.push(...result.objects);
      problems.push(...result.problems);
      continue;
    }
    try {
      objects.push(...loadManifests(p, options));
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      problems.push(...err.problems);
    }
  }
  if (problems.length > 0) throw new ManifestError(problems);
  return objects;
}
