// Who may start an image from this node's cache (Kubernetes' KEP-2535,
// "ensure secret pulled images"). An image one namespace pulled with its
// credentials must not run for another namespace that has none: the record
// keeps which credential identities pulled or re-checked it (a hash of the
// registry, the pull secret's name and the user name, never a password),
// and whether it was pulled with no credentials at all (then anyone may).
// A start whose identity is not recorded asks the registry for the
// manifest with its own credentials first; a refusal fails the start.
import { createHash } from "node:crypto";
import { ImageError, isImageError } from "./errors";
import type { Credentials, RegistryClient } from "./registry";
import type { RegistryReference } from "./reference";
import { RegistrySource } from "./sources";
import type { ContentStore } from "./store";
import type { ImageRecord, PullAuth } from "./types";

/** The identity a start pulls as: "anonymous" without credentials, else a hash naming no secret value. */
export function pullIdentity(registry: string, pullSecret: string | undefined, creds: Credentials | undefined): string {
  if (!creds) return "anonymous";
  const h = createHash("sha256").update(`grove-pull-identity\0${registry}\0${pullSecret ?? ""}\0${creds.username}`);
  return `sha256:${h.digest("hex")}`;
}

/** What a fresh pull by `identity` records. */
export function pulledBy(identity: string): PullAuth {
  return identity === "anonymous" ? { anyone: true, identities: [] } : { identities: [identity] };
}

function allowed(record: ImageRecord, identity: string): boolean {
  return record.pullAuth?.anyone === true || (record.pullAuth?.identities ?? []).includes(identity);
}

/**
 * Resolves when `identity` may start the cached `record`: recorded already,
 * or the registry serves its manifest to these credentials now (recorded
 * then). Otherwise throws CACHED_IMAGE_UNAUTHORIZED naming the image.
 */
export async function authorizeCached(
  deps: { client: RegistryClient; store: ContentStore; retryDelayMs?: number },
  record: ImageRecord,
  ref: RegistryReference,
  pullSecret: string | undefined,
  creds: Credentials | undefined,
): Promise<void> {
  const identity = pullIdentity(ref.registry, pullSecret, creds);
  if (allowed(record, identity)) return;
  const who = pullSecret
    ? `pull secret ${JSON.stringify(pullSecret)}`
    : creds
      ? "the node's credentials"
      : "no credentials";
  const source = new RegistrySource(deps.client, deps.store, ref, creds, deps.retryDelayMs);
  try {
    // By digest: the very manifest the cached image is, nothing else.
    await source.fetchManifest(record.manifestDigest);
  } catch (err) {
    if (isImageError(err, "UNAUTHORIZED") || isImageError(err, "NOT_FOUND")) {
      throw new ImageError(
        "CACHED_IMAGE_UNAUTHORIZED",
        `${record.reference} is in this node's cache from a pull with other credentials, and the registry does not serve it to ${who}: ${err.message}`,
      );
    }
    throw err;
  } finally {
    await source.close();
  }
  // Re-read: another start may have added its identity meanwhile.
  const now = (await deps.store.getImage(record.reference)) ?? record;
  const auth = now.pullAuth ?? { identities: [] };
  if (identity === "anonymous") auth.anyone = true;
  else if (!auth.identities.includes(identity)) auth.identities.push(identity);
  await deps.store.putImage({ ...now, pullAuth: auth });
}
