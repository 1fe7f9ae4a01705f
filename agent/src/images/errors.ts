// The image subsystem's error catalogue: stable codes the reconciler and the
// tests match on; the message says what happened in the registry's own words
// where there are any.

export type ImageErrorCode =
  | "INVALID_REFERENCE" // the image reference does not parse
  | "NOT_FOUND" // 404 for the manifest or a blob
  | "UNAUTHORIZED" // 401/403, or the token server refused the credentials
  | "CACHED_IMAGE_UNAUTHORIZED" // cached from a pull with other credentials; the registry refuses this start's
  | "REGISTRY_ERROR" // any other non-success answer, or the connection failed
  | "DIGEST_MISMATCH" // content does not hash to the digest (or diff_id) it was asked for
  | "NO_MATCHING_PLATFORM" // an index without a manifest for this node's os/architecture
  | "UNSUPPORTED" // a media type, compression or layer entry this agent does not handle
  | "UNSAFE_LAYER" // a layer entry would write outside its snapshot
  | "INVALID_IMAGE" // a manifest, config or layout that breaks the spec
  | "MOUNT_FAILED" // the overlay mount or unmount failed
  | "LIMIT_EXCEEDED" // a layer is larger, expands more or holds more entries than the agent's limits allow
  | "INSUFFICIENT_DISK" // the pull would leave less free disk than the agent's reserve
  | "FORBIDDEN_ADDRESS" // a redirect or token realm points at a loopback, link-local or unspecified address
  | "OCI_PATH_REFUSED"; // an oci: path outside the agent's --oci-dir, or through a symlink

export class ImageError extends Error {
  override readonly name = "ImageError";
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isImageError(error: unknown, code?: ImageErrorCode): error is ImageError {
  return error instanceof ImageError && (code === undefined || error.code === code);
}
