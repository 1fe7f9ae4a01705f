// `grove apply -f` for the kinds with routes of their own: Secrets
// (/v1/namespaces/{ns}/secrets/{name}) and Namespaces (/v1/namespaces/{name}).
// Validated with the rest before anything is sent (manifest.ts); a Secret's
// values are sent, never printed.
import { GroveError } from "../errors";
import type { ManifestKind } from "../manifest";
import type { Namespace } from "../namespace-schema";
import type { Secret } from "../secrets";
import type { CliClient, CliDeps } from "./deps";
import { UsageError } from "./kinds";

/** What `grove apply -f` accepts (delete -f and diff take App, Node and Task). */
export const APPLY_KINDS: readonly ManifestKind[] = ["App", "Node", "Task", "Secret", "Namespace"];

export function isTenantObject(o: { kind: string }): o is Secret | Namespace {
  return o.kind === "Secret" || o.kind === "Namespace";
}

/** PUTs the Secret (in its namespace, or the configured one) or Namespace and prints created or configured. */
export async function applyTenantObject(
  client: CliClient,
  object: Secret | Namespace,
  namespace: string,
  deps: Pick<CliDeps, "out">,
): Promise<void> {
  if (!client.call) throw new UsageError(`this client cannot apply ${object.kind}s`);
  const name = object.metadata.name;
  const ns = object.metadata.namespace ?? namespace;
  const secret = object.kind === "Secret";
  const p = secret
    ? `/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(name)}`
    : `/v1/namespaces/${encodeURIComponent(name)}`;
  const existed = await client.call("GET", p).then(
    () => true,
    (err: unknown) => {
      if (err instanceof GroveError && err.code === "NotFound") return false;
      throw err;
    },
  );
  const { status: _status, ...rest } = object as (Secret | Namespace) & { status?: unknown };
  const body = secret ? { ...rest, metadata: { ...rest.metadata, namespace: ns } } : rest;
  await client.call("PUT", p, body);
  deps.out(`${object.kind.toLowerCase()}/${name} ${existed ? "configured" : "created"}`);
}
