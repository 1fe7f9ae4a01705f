// Cross-field checks of an App's source that a JSON schema cannot say:
// exactly one of rootfs and image; a command is required with a rootfs (an
// image may supply its own); entrypoint and imagePullSecret only with an
// image; and the image reference's syntax (the agent's parser,
// agent/src/images/reference.ts, has the same rules).

export interface SourceProblem {
  /** JSON pointer of the field. */
  pointer: string;
  message: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;

/** Why an image reference is not valid, or undefined when it is. */
export function imageReferenceProblem(ref: string): string | undefined {
  if (ref.startsWith("oci:")) {
    const rest = ref.slice(4);
    if (!rest.startsWith("/")) return "an oci: reference needs an absolute path (oci:/path/to/layout[:tag])";
    if (rest.split("/").includes("..")) return "the path must not contain ..";
    return undefined;
  }
  if (/\s/.test(ref)) return "must not contain white space";
  let rest = ref;
  const at = rest.indexOf("@");
  if (at >= 0) {
    if (!DIGEST.test(rest.slice(at + 1))) return "the digest must be sha256:<64 lower-case hex>";
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    if (!TAG.test(rest.slice(colon + 1))) return `tag ${JSON.stringify(rest.slice(colon + 1))} is not valid`;
    rest = rest.slice(0, colon);
  }
  const parts = rest.split("/");
  const first = parts[0] ?? "";
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    if (!HOST.test(first)) return `registry ${JSON.stringify(first)} is not host[:port]`;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    return "the repository must be lower-case components [a-z0-9] joined by . _ - and /";
  }
  return undefined;
}

export function appSourceProblems(spec: unknown): SourceProblem[] {
  if (typeof spec !== "object" || spec === null) return [];
  const s = spec as Record<string, unknown>;
  const problems: SourceProblem[] = [];
  const hasRootfs = s.rootfs !== undefined;
  const hasImage = s.image !== undefined;
  if (hasRootfs && hasImage) {
    problems.push({ pointer: "/spec/image", message: "give either rootfs or image, not both" });
  } else if (!hasRootfs && !hasImage) {
    problems.push({ pointer: "/spec", message: "one of rootfs or image is required" });
  }
  if (hasRootfs && !hasImage && s.command === undefined) {
    problems.push({ pointer: "/spec/command", message: "required with a rootfs (only an image can supply its own)" });
  }
  if (!hasImage && s.entrypoint !== undefined) {
    problems.push({ pointer: "/spec/entrypoint", message: "only with an image" });
  }
  if (!hasImage && s.imagePullSecret !== undefined) {
    problems.push({ pointer: "/spec/imagePullSecret", message: "only with an image" });
  }
  if (typeof s.image === "string") {
    const why = imageReferenceProblem(s.image);
    if (why) problems.push({ pointer: "/spec/image", message: `invalid image reference: ${why}` });
  }
  problems.push(...userNamespaceProblems(s.security));
  return problems;
}

/** An explicit user namespace range must end at or below 2^32 (the schema checks each number). */
function userNamespaceProblems(security: unknown): SourceProblem[] {
  if (typeof security !== "object" || security === null) return [];
  const u = (security as { userNamespace?: unknown }).userNamespace;
  if (typeof u !== "object" || u === null) return [];
  const { hostUid, hostGid, size } = u as Record<string, unknown>;
  const width = typeof size === "number" ? size : 65536;
  const problems: SourceProblem[] = [];
  for (const [name, id] of [
    ["hostUid", hostUid],
    ["hostGid", hostGid],
  ] as const) {
    if (typeof id === "number" && Number.isInteger(width) && id + width > 2 ** 32) {
      problems.push({
        pointer: `/spec/security/userNamespace/${name}`,
        message: `${name} ${id} + size ${width} runs past the last id (4294967295)`,
      });
    }
  }
  return problems;
}
