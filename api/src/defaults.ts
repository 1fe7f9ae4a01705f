// Defaults applied to what users leave out of a manifest.
import type { ResourceRequest, Resources, ResourcesUpdatePolicy, RestartPolicy } from "./schemas";
import { parseBytes, parseCpuMillis } from "./quantity";

export const DEFAULT_NAMESPACE = "default";
export const DEFAULT_RESOURCES: Resources = { cpuMillis: 100, memoryBytes: 128 * 2 ** 20, pids: 1024 };
export const DEFAULT_RESTART_POLICY: RestartPolicy = "Always";
export const DEFAULT_STOP_GRACE_SECONDS = 10;
/** Resource-only changes resize running instances in place (docs/api.md, "Updates"). */
export const DEFAULT_RESOURCES_UPDATE_POLICY: ResourcesUpdatePolicy = "InPlace";

/** The normalized resources of a request, defaults filled in. */
export function normalizeResources(req: ResourceRequest | undefined): Resources {
  return {
    cpuMillis: req?.cpu !== undefined ? parseCpuMillis(req.cpu) : DEFAULT_RESOURCES.cpuMillis,
    memoryBytes: req?.memory !== undefined ? parseBytes(req.memory) : DEFAULT_RESOURCES.memoryBytes,
    pids: req?.pids ?? DEFAULT_RESOURCES.pids,
    ...(req?.disk !== undefined ? { diskBytes: parseBytes(req.disk) } : {}),
  };
}

/** An App's default spec.disconnect.replaceAfter: replace instances of a lost node at once. */
export const DEFAULT_REPLACE_AFTER_MS = 0;

/** A drain's default per-instance timeout, and an App's default maxUnavailable. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_MAX_UNAVAILABLE = 1;

/** Label of a replacement: the uid of the instance (same index) it stands in for (a lost node's, or a draining one's). */
export const REPLACES_LABEL = "grove.io/replaces";
