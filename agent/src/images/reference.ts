// Image references with Docker's defaults: "busybox" is
// docker.io/library/busybox:latest; "host:5000/team/web:1.4" names a
// registry by its host (a first component with a '.' or ':' or "localhost");
// "name@sha256:<hex>" pins a digest. "oci:PATH[:TAG]" names a local OCI
// image layout directory or oci-archive tarball on the node.
import { ImageError } from "./errors";

export const DEFAULT_REGISTRY = "docker.io";
/** Where docker.io's API actually lives. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

export interface RegistryReference {
  kind: "registry";
  /** host[:port], "docker.io" for Docker Hub. */
  registry: string;
  /** Repository path, e.g. "library/busybox". */
  repository: string;
  tag?: string;
  /** "sha256:<hex>" when pinned. */
  digest?: string;
}

export interface LayoutReference {
  kind: "oci";
  /** Absolute path of an OCI image layout directory or an oci-archive tarball. */
  path: string;
  /** The index.json annotation org.opencontainers.image.ref.name; unset: the only manifest. */
  tag?: string;
}

export type ImageReference = RegistryReference | LayoutReference;

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;

/** Parses an image reference; throws INVALID_REFERENCE naming what is wrong. */
export function parseReference(input: string): ImageReference {
  const fail = (why: string): never => {
    throw new ImageError("INVALID_REFERENCE", `image reference ${JSON.stringify(input)}: ${why}`);
  };
  if (input.startsWith("oci:")) {
    const rest = input.slice(4);
    if (!rest.startsWith("/")) fail("an oci: reference needs an absolute path (oci:/path/to/layout[:tag])");
    const colon = rest.lastIndexOf(":");
    const path = colon > 0 ? rest.slice(0, colon) : rest;
    const tag = colon > 0 ? rest.slice(colon + 1) : undefined;
    if (tag !== undefined && !/^[A-Za-z0-9_.:/-]{1,128}$/.test(tag)) fail(`tag ${JSON.stringify(tag)} is not valid`);
    if (path.split("/").includes("..")) fail("the path must not contain ..");
    return tag === undefined ? { kind: "oci", path } : { kind: "oci", path, tag };
  }
  if (input === "" || input.length > 1024) fail("must be 1..1024 characters");
  if (/\s/.test(input)) fail("must not contain white space");

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail(`digest ${JSON.stringify(digest)} is not sha256:<64 lower-case hex>`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`tag ${JSON.stringify(tag)} is not valid ([A-Za-z0-9_.-], at most 128)`);
  }
  const parts = rest.split("/");
  let registry = DEFAULT_REGISTRY;
  const first = parts[0] ?? "";
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    registry = first;
    parts.shift();
    if (!HOST.test(registry)) fail(`registry ${JSON.stringify(registry)} is not host[:port]`);
  }
  if (registry === "index.docker.io") registry = DEFAULT_REGISTRY;
  if (parts.length === 0 || parts.some((p) => p === "")) fail("the repository name is empty");
  for (const p of parts) {
    if (!COMPONENT.test(p)) fail(`repository component ${JSON.stringify(p)} must be lower-case [a-z0-9] with . _ -`);
  }
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (repository.length > 255) fail("the repository name is longer than 255 characters");
  if (tag === undefined && digest === undefined) tag = "latest";
  const ref: RegistryReference = { kind: "registry", registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** The canonical text of a reference (what the store records images under). */
export function formatReference(ref: ImageReference): string {
  if (ref.kind === "oci") return ref.tag === undefined ? `oci:${ref.path}` : `oci:${ref.path}:${ref.tag}`;
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The host whose /v2/ API serves a registry name. */
export function apiHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_API_HOST : registry;
}

/** Whether host[:port] is a loopback address (plain HTTP is allowed there by default). */
export function isLoopbackHost(hostPort: string): boolean {
  let host = hostPort;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.includes(":")) host = host.slice(0, host.lastIndexOf(":"));
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
